// Runs echo_test_server as a child process (fork + exec, so the child starts
// with no gRPC state from the test) and talks to it through its stdin and
// stdout.
#ifndef GRPC_SHM_TRANSPORT_TESTS_SERVER_PROCESS_H_
#define GRPC_SHM_TRANSPORT_TESTS_SERVER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace grpc_shm {
namespace testing {

class ServerProcess {
 public:
  // Starts the server with `args` and waits (blocking read, no polling) for
  // its "READY <tcp port>" line. ok() says whether it came.
  explicit ServerProcess(const std::vector<std::string>& args);
  ~ServerProcess();  // kills the child if still running

  bool ok() const { return ready_; }
  int tcp_port() const { return tcp_port_; }
  pid_t pid() const { return pid_; }
  void Send(const std::string& line);
  // Reads the next stdout line (blocking); empty at EOF.
  std::string ReadLine();
  // Reads lines until one starts with `prefix` (returned) or EOF ("").
  std::string ReadLineStartingWith(const std::string& prefix);
  void Kill();  // SIGKILL + reap
  int Wait();   // reap; returns the exit status

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  bool ready_ = false;
  int tcp_port_ = 0;
  std::string buffer_;
};

}  // namespace testing
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_TESTS_SERVER_PROCESS_H_
