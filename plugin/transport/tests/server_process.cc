#include "server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>

namespace grpc_shm {
namespace testing {

ServerProcess::ServerProcess(const std::vector<std::string>& args) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  to_child_ = in[1];
  from_child_ = out[0];
  std::string line = ReadLine();
  ready_ = line.rfind("READY", 0) == 0;
  if (ready_ && line.size() > 6) tcp_port_ = std::atoi(line.c_str() + 6);
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill();
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
}

void ServerProcess::Send(const std::string& line) {
  // A server that died must fail the test's next read, not kill the test
  // with SIGPIPE here.
  static const bool ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)ignored;
  std::string data = line + "\n";
  ssize_t r;
  do {
    r = write(to_child_, data.data(), data.size());
  } while (r < 0 && errno == EINTR);
}

std::string ServerProcess::ReadLine() {
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    char chunk[256];
    ssize_t n = read(from_child_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

std::string ServerProcess::ReadLineStartingWith(const std::string& prefix) {
  for (;;) {
    std::string line = ReadLine();
    if (line.empty() || line.rfind(prefix, 0) == 0) return line;
  }
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  Wait();
}

int ServerProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status;
}

}  // namespace testing
}  // namespace grpc_shm
