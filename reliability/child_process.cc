#include "reliability/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

namespace grpc_shm {
namespace reliability {

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::vector<std::string>& env_overrides,
                           const std::string& stderr_path) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return;
  }
  pid_ = fork();
  if (pid_ == 0) {
    // Only async-signal-safe calls from here on: the harness is single
    // threaded, but keep it that way in spirit.
    dup2(in[0], 0);
    dup2(out[1], 1);
    int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (err >= 0) dup2(err, 2);
    for (const auto& kv : env_overrides) {
      size_t eq = kv.find('=');
      std::string key = kv.substr(0, eq);
      if (eq + 1 == kv.size()) {
        unsetenv(key.c_str());
      } else {
        setenv(key.c_str(), kv.c_str() + eq + 1, 1);
      }
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  to_child_ = in[1];
  from_child_ = out[0];
  if (pid_ < 0) {
    close(to_child_);
    close(from_child_);
    to_child_ = from_child_ = -1;
  }
}

ChildProcess::~ChildProcess() {
  Kill();
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
}

void ChildProcess::Send(const std::string& line) {
  if (to_child_ < 0) return;
  std::string data = line + "\n";
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(to_child_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the child is gone (SIGPIPE is ignored)
    done += static_cast<size_t>(n);
  }
}

bool ChildProcess::ReadLine(std::string* line, std::chrono::milliseconds timeout) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    if (from_child_ < 0) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{from_child_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char chunk[4096];
    ssize_t n = read(from_child_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(from_child_);
      from_child_ = -1;
      continue;  // a last line without newline is dropped
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

bool ChildProcess::ReadUntil(const std::string& prefix, std::string* line,
                             std::chrono::milliseconds timeout, std::vector<std::string>* skipped) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up - std::chrono::steady_clock::now());
    if (left.count() < 0 || !ReadLine(line, left)) return false;
    if (line->rfind(prefix, 0) == 0) return true;
    if (skipped != nullptr) skipped->push_back(*line);
  }
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

bool ChildProcess::Wait(std::chrono::milliseconds timeout, int* status) {
  if (pid_ <= 0) return false;
  auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pid_t r = waitpid(pid_, status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return true;
    }
    if (std::chrono::steady_clock::now() > give_up) return false;
    // No portable way to wait for a child with a timeout but polling (a
    // SIGCHLD handler would interrupt everything else).
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace reliability
}  // namespace grpc_shm
