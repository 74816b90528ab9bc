// Peers in real child processes on every platform: the test binary starts
// itself again with "--gshm_child=ROLE ARGS..." and runs the function
// registered for ROLE instead of the tests. POSIX tests may fork() instead;
// Windows has no fork(), so tests meant to run there use this.
//
// A test binary using it has its own main() calling RunChildRoleIfAsked()
// before InitGoogleTest(). The child's stdout is a pipe the test can read
// lines from (WaitForLine), which is how a child says "I am listening"
// without the test sleeping.
#ifndef GRPC_SHM_IPC_TESTS_CHILD_PROCESS_H_
#define GRPC_SHM_IPC_TESTS_CHILD_PROCESS_H_

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
// winuser.h's SendMessage macro would rename platform::SendMessage.
#undef SendMessage
#else
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace grpc_shm {
namespace ipc {
namespace testing {

using ChildRole = int (*)(const std::vector<std::string>& args);

inline std::map<std::string, ChildRole>& ChildRoles() {
  static auto* roles = new std::map<std::string, ChildRole>();
  return *roles;
}

// GRPC_SHM_CHILD_ROLE(name) { ... return exit_code; } defines a role; `args`
// are the arguments given to ChildProcess::Start.
#define GRPC_SHM_CHILD_ROLE(name)                                                       \
  int GrpcShmChildRole_##name(const std::vector<std::string>& args);                    \
  const bool grpc_shm_child_role_registered_##name =                                    \
      (::grpc_shm::ipc::testing::ChildRoles()[#name] = &GrpcShmChildRole_##name, true); \
  int GrpcShmChildRole_##name(const std::vector<std::string>& args)

constexpr char kChildFlag[] = "--gshm_child=";

inline std::string& SelfPath() {
  static auto* path = new std::string();
  return *path;
}

// Call first in main(). True if this process is a child: `*exit_code` is
// then what the role returned (127 for an unknown role).
inline bool RunChildRoleIfAsked(int argc, char** argv, int* exit_code) {
  SelfPath() = argv[0];
  if (argc < 2 || std::strncmp(argv[1], kChildFlag, sizeof(kChildFlag) - 1) != 0) return false;
  const std::string role = argv[1] + sizeof(kChildFlag) - 1;
  auto it = ChildRoles().find(role);
  if (it == ChildRoles().end()) {
    std::fprintf(stderr, "unknown child role %s\n", role.c_str());
    *exit_code = 127;
    return true;
  }
  *exit_code = it->second(std::vector<std::string>(argv + 2, argv + argc));
  std::fflush(nullptr);
  return true;
}

inline long CurrentProcessId() {
#ifdef _WIN32
  return static_cast<long>(::GetCurrentProcessId());
#else
  return static_cast<long>(::getpid());
#endif
}

// A local address no other test (or test process) uses: a named pipe on
// Windows, a socket file elsewhere.
inline std::string TestAddress(const char* tag) {
  static std::atomic<int> counter{0};
  const std::string name = "gshm-test-" + std::string(tag) + "-" +
                           std::to_string(CurrentProcessId()) + "-" +
                           std::to_string(counter.fetch_add(1));
#ifdef _WIN32
  return "pipe:" + name;
#else
  return "/tmp/" + name + ".sock";
#endif
}

// Prints one line on stdout for the parent's WaitForLine, and flushes.
inline void TellParent(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// The exit code a killed child reports (SIGKILL on POSIX: 128 + 9).
constexpr int kKilledExitCode = 137;

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (running()) {
      Kill();
      Wait();
    }
    CloseOutput();
  }

  // Starts this binary as `role` with `args` (no spaces or quotes in them).
  bool Start(const std::string& role, const std::vector<std::string>& args) {
#ifdef __linux__
    // Not argv[0]: test runners (Bazel) may start us by a relative path
    // from another directory.
    const std::string self = "/proc/self/exe";
#else
    const std::string self = SelfPath();
#endif
    std::vector<std::string> argv = {self, kChildFlag + role};
    argv.insert(argv.end(), args.begin(), args.end());
    std::fflush(nullptr);
#ifdef _WIN32
    SECURITY_ATTRIBUTES sa{sizeof(sa), nullptr, TRUE};
    HANDLE read_end = nullptr, write_end = nullptr;
    if (!::CreatePipe(&read_end, &write_end, &sa, 0)) return false;
    ::SetHandleInformation(read_end, HANDLE_FLAG_INHERIT, 0);
    std::string cmd;
    for (const std::string& a : argv) cmd += "\"" + a + "\" ";
    STARTUPINFOA si{};
    si.cb = sizeof(si);
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdOutput = write_end;
    si.hStdError = ::GetStdHandle(STD_ERROR_HANDLE);
    si.hStdInput = ::GetStdHandle(STD_INPUT_HANDLE);
    PROCESS_INFORMATION pi{};
    // Inherits only what is inheritable: the pipe's write end and the
    // standard handles; the backend's handles are never inheritable.
    const BOOL ok =
        ::CreateProcessA(nullptr, &cmd[0], nullptr, nullptr, TRUE, 0, nullptr, nullptr, &si, &pi);
    ::CloseHandle(write_end);
    if (!ok) {
      ::CloseHandle(read_end);
      return false;
    }
    ::CloseHandle(pi.hThread);
    process_ = pi.hProcess;
    pid_ = static_cast<long>(pi.dwProcessId);
    output_ = read_end;
#else
    int fds[2];
    if (::pipe(fds) != 0) return false;
    ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);  // later children need not hold it
    const pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> cargv;
      for (std::string& a : argv) cargv.push_back(&a[0]);
      cargv.push_back(nullptr);
      ::execv(cargv[0], cargv.data());
      ::_exit(126);
    }
    ::close(fds[1]);
    pid_ = pid;
    output_ = fds[0];
#endif
    return true;
  }

  long pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !waited_; }

  // Reads the child's stdout until a line equal to `line`: true, or false if
  // the child's stdout ended first (it exited or died).
  bool WaitForLine(const std::string& line) {
    std::string current;
    for (;;) {
      char c;
#ifdef _WIN32
      DWORD n = 0;
      if (!::ReadFile(output_, &c, 1, &n, nullptr) || n == 0) return false;
#else
      if (::read(output_, &c, 1) != 1) return false;
#endif
      if (c == '\r') continue;
      if (c != '\n') {
        current += c;
        continue;
      }
      if (current == line) return true;
      current.clear();
    }
  }

  // Kills the child at once, as a crash would (SIGKILL / TerminateProcess).
  void Kill() {
#ifdef _WIN32
    ::TerminateProcess(process_, kKilledExitCode);
#else
    ::kill(static_cast<pid_t>(pid_), SIGKILL);
#endif
  }

  // Waits for the child to end: its exit code, or 128 + signal on POSIX.
  int Wait() {
    if (waited_) return exit_code_;
#ifdef _WIN32
    ::WaitForSingleObject(process_, INFINITE);
    DWORD code = 0;
    ::GetExitCodeProcess(process_, &code);
    ::CloseHandle(process_);
    process_ = nullptr;
    exit_code_ = static_cast<int>(code);
#else
    int status = 0;
    while (::waitpid(static_cast<pid_t>(pid_), &status, 0) < 0) {
    }
    exit_code_ = WIFEXITED(status)     ? WEXITSTATUS(status)
                 : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                       : -1;
#endif
    waited_ = true;
    return exit_code_;
  }

 private:
  void CloseOutput() {
#ifdef _WIN32
    if (output_ != nullptr) ::CloseHandle(output_);
    output_ = nullptr;
#else
    if (output_ >= 0) ::close(output_);
    output_ = -1;
#endif
  }

  long pid_ = -1;
  bool waited_ = false;
  int exit_code_ = -1;
#ifdef _WIN32
  HANDLE process_ = nullptr;
  HANDLE output_ = nullptr;
#else
  int output_ = -1;
#endif
};

}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_TESTS_CHILD_PROCESS_H_
