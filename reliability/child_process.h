// A child process of the harness: this same binary in another mode, talked to
// through its stdin and stdout one line at a time. Every read has a deadline,
// so a peer that hangs fails a trial instead of stalling the run.
#ifndef GRPC_SHM_RELIABILITY_CHILD_PROCESS_H_
#define GRPC_SHM_RELIABILITY_CHILD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace grpc_shm {
namespace reliability {

class ChildProcess {
 public:
  // Runs `argv` (argv[0] a path) with `env_overrides` ("KEY=VALUE", or
  // "KEY=" to unset KEY) on top of this process's environment; its stderr
  // goes to `stderr_path` (appended). pid() is -1 if the start failed.
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env_overrides,
               const std::string& stderr_path);
  // Kills the child (SIGKILL) if it still runs, and reaps it.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Writes one line to the child's stdin (no effect once it is gone).
  void Send(const std::string& line);
  // The next line of the child's stdout, without its newline; false if none
  // came within `timeout` or the child closed its stdout.
  bool ReadLine(std::string* line, std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix` (returned in *line); the
  // lines skipped are appended to *skipped when not null.
  bool ReadUntil(const std::string& prefix, std::string* line, std::chrono::milliseconds timeout,
                 std::vector<std::string>* skipped = nullptr);

  // SIGKILL and reap.
  void Kill();
  // Waits up to `timeout` for the child to exit; its wait status in *status.
  bool Wait(std::chrono::milliseconds timeout, int* status);

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffer_;
};

}  // namespace reliability
}  // namespace grpc_shm

#endif  // GRPC_SHM_RELIABILITY_CHILD_PROCESS_H_
