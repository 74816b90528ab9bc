#include "bench/ipc/harness.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

namespace grpc_shm::bench {

namespace internal {
bool busy_wait_yields = false;
}  // namespace internal

void Die(const std::string& what) {
  std::fprintf(stderr, "ipc_bench [%d]: %s\n", static_cast<int>(getpid()), what.c_str());
  std::fflush(stderr);
  _exit(2);
}

void Check(const ipc::Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

namespace {

void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) std::perror("sched_setaffinity");
}

}  // namespace

Placement DetectPlacement(bool pin) {
  Placement placement;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return placement;
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  placement.cpus = static_cast<int>(cpus.size());
  placement.single_cpu = cpus.size() < 2;
  internal::busy_wait_yields = placement.single_cpu;
  if (!pin || cpus.size() < 2) return placement;
  placement.parent_cpu = cpus[0];
  placement.child_cpu = cpus[1];
  PinTo(placement.parent_cpu);
  return placement;
}

void Harness::ForkRun(const std::function<void()>& parent, const std::function<void()>& child) {
  // Unflushed output would be written twice, once by each process.
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    PinTo(placement_.child_cpu);
    alarm(static_cast<unsigned>(timeout_s_));
    child();
    _exit(0);
  }
  alarm(static_cast<unsigned>(timeout_s_) + 5);
  parent();
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) Die("waitpid");
  alarm(0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("child failed (status " + std::to_string(status) + ")");
  }
}

void Harness::ConnectedRun(const ipc::ConnectionOptions& options,
                           const std::function<void(ipc::Connection&)>& parent,
                           const std::function<void(ipc::Connection&)>& child) {
  const std::string address =
      "@grpc-shm-ipc-bench-" + std::to_string(getpid()) + "-" + std::to_string(connections_++);
  std::unique_ptr<ipc::Listener> listener;
  // The benchmark trusts its own child: allow every backend, including those
  // a listener refuses by default because a hostile client could abuse them.
  ipc::Listener::Options listen_options;
  listen_options.allow_eventfd = true;
  listen_options.allow_posix_shm = true;
  // Both sides wait the same way: spin for options.spin, then sleep.
  listen_options.spin = options.spin;
  Check(ipc::Listener::Listen(address, listen_options, &listener), "Listen");
  ForkRun(
      [&] {
        std::unique_ptr<ipc::Connection> conn;
        Check(listener->Accept(&conn, 10000), "Accept");
        parent(*conn);
        conn.reset();
      },
      [&] {
        (void)listener.release();  // the parent's; leave it alone (we _exit)
        std::unique_ptr<ipc::Connection> conn;
        Check(ipc::Connect(address, options, &conn), "Connect");
        child(*conn);
        conn.reset();
      });
}

void* SharedAlloc(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Die("mmap shared");
  std::memset(p, 0, bytes);
  return p;
}

std::string LoadAverage() {
  // /proc/loadavg ends with the last pid created: drop it.
  char buf[128] = {0};
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "?";
  if (!std::fgets(buf, sizeof(buf), f)) buf[0] = 0;
  std::fclose(f);
  std::string s(buf);
  const size_t last = s.find_last_of(' ');
  return last == std::string::npos ? s : s.substr(0, last);
}

long Preemptions(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return ru.ru_nivcsw;
}

long VoluntaryCtxSwitches() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw;
}

}  // namespace grpc_shm::bench
