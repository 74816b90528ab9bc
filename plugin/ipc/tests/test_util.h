// Helpers for tests that run a peer in a forked child process.
#ifndef GRPC_SHM_IPC_TESTS_TEST_UTIL_H_
#define GRPC_SHM_IPC_TESTS_TEST_UTIL_H_

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <ostream>
#include <string>

#include "plugin/ipc/connection.h"

namespace grpc_shm {
namespace ipc {
namespace testing {

// A socket address no other test (or test process) uses.
inline std::string UniqueAddress(const char* tag) {
  static std::atomic<int> counter{0};
  return "/tmp/gshm-test-" + std::string(tag) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1)) + ".sock";
}

// Runs `body` in a child process; its return value is the exit code. The
// child never returns into the test framework.
inline pid_t ForkChild(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 1;
    rc = body();
    std::fflush(nullptr);
    ::_exit(rc);
  }
  return pid;
}

// Waits for the child; returns its exit code, or 128+signal.
inline int WaitChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

inline std::string BackendName(const ConnectionOptions& o) {
  std::string name = o.memory == platform::SharedMemoryKind::kMemfd ? "Memfd" : "PosixShm";
  switch (o.doorbell) {
    case platform::DoorbellKind::kEventFd:
      return name + "Eventfd";
    case platform::DoorbellKind::kFutex:
      return name + "Futex";
    case platform::DoorbellKind::kSocket:
      return name + "Socket";
  }
  return name;
}

}  // namespace testing

// Readable test names in gtest output instead of a byte dump.
inline void PrintTo(const ConnectionOptions& o, std::ostream* os) {
  *os << testing::BackendName(o);
}

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_TESTS_TEST_UTIL_H_
