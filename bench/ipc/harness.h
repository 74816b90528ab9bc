// The process harness every ipc_bench scenario runs on: two processes (fork),
// pinned to different CPUs, optionally joined by a Connection, plus the clock
// and the busy-wait every timing loop uses.
#ifndef GRPC_SHM_BENCH_IPC_HARNESS_H_
#define GRPC_SHM_BENCH_IPC_HARNESS_H_

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "plugin/ipc/connection.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define BENCH_CPU_RELAX() asm volatile("yield")
#else
#define BENCH_CPU_RELAX() \
  do {                    \
  } while (0)
#endif

namespace grpc_shm::bench {

using Samples = std::vector<uint64_t>;  // one duration per sample, ns

// Reports `what` with this process's id and exits with status 2 (a child's
// failure then fails the parent's ForkRun).
[[noreturn]] void Die(const std::string& what);
void Check(const ipc::Status& s, const char* what);

inline uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Keeps the compiler from eliding or merging copies whose result is unused.
inline void CompilerBarrier() { asm volatile("" ::: "memory"); }

namespace internal {
// Set once by DetectPlacement, before any fork; read in every busy-wait.
extern bool busy_wait_yields;
}  // namespace internal

// One step of a busy-wait. With one CPU a busy-wait only burns the time slice
// the peer needs: it yields instead (spinning figures then mean little, but
// the run stays short).
inline void Relax() {
  if (internal::busy_wait_yields) {
    sched_yield();
  } else {
    BENCH_CPU_RELAX();
  }
}

// Where the two processes run.
struct Placement {
  int parent_cpu = -1;  // -1: not pinned
  int child_cpu = -1;
  int cpus = 0;  // CPUs this process may run on
  bool single_cpu = false;
};

// Reads the CPUs this process may use, pins this (parent) process to the
// first when `pin` and there are two or more, and makes Relax() yield when
// there is only one. Call once, before the first scenario.
Placement DetectPlacement(bool pin);

// Runs each scenario's two halves in a forked pair of processes.
class Harness {
 public:
  // `timeout_s`: the child's watchdog (SIGALRM) per scenario, so a bug never
  // hangs CI; the parent's is 5 s longer.
  Harness(const Placement& placement, int timeout_s)
      : placement_(placement), timeout_s_(timeout_s) {}

  const Placement& placement() const { return placement_; }

  // Runs `child` in a forked, pinned child process (which _exit()s when it
  // returns) and `parent` here; waits for the child and dies if it failed.
  void ForkRun(const std::function<void()>& parent, const std::function<void()>& child);

  // Same, with a Connection between the two: the parent (server) listens
  // before the fork and accepts; the child (client) connects with `options`.
  void ConnectedRun(const ipc::ConnectionOptions& options,
                    const std::function<void(ipc::Connection&)>& parent,
                    const std::function<void(ipc::Connection&)>& child);

 private:
  Placement placement_;
  int timeout_s_;
  int connections_ = 0;  // makes each listening address unique
};

// Anonymous shared memory, zeroed, mapped before fork so both processes see
// it. Release with munmap.
void* SharedAlloc(size_t bytes);

// "0.52 0.31 0.20 3/85" (1-, 5-, 15-minute load, runnable/total tasks):
// other work on the machine skews every figure.
std::string LoadAverage();

// Involuntary context switches (preemptions) of RUSAGE_SELF or of the
// waited-for RUSAGE_CHILDREN: non-zero means other work competed for our CPUs.
long Preemptions(int who);

// Voluntary context switches of this process (= times it went to sleep).
long VoluntaryCtxSwitches();

// How many round trips a latency scenario times in one round.
struct RoundTripBudget {
  long warmup = 0;              // untimed round trips first, at most
  long max_samples = 0;         // timed round trips, at most
  uint64_t warm_budget_ns = 0;  // the warm-up stops after this long
  uint64_t budget_ns = 0;       // timed round trips are cut to fit this
  // Timed round trips at least (max_samples permitting), even past budget_ns:
  // fewer would make p99.9 meaningless.
  static constexpr long kMinSamples = 2000;
};

// The parent side of every latency scenario: a warm-up of up to
// budget.warmup round trips (bounded by its time budget), then as many timed
// round trips as budget.max_samples allows within the time budget (sleeping
// round trips on a VM can be ~100 us, and the whole run must stay within its
// time limit), and never more than `cap` when positive.
template <class F>
Samples DriveRoundTrips(const RoundTripBudget& budget, F&& round_trip, long cap = -1) {
  const uint64_t w0 = NowNs();
  long warm = 0;
  while (warm < budget.warmup && (warm < 100 || NowNs() - w0 < budget.warm_budget_ns)) {
    round_trip();
    ++warm;
  }
  const double est_ns =
      warm > 0 ? static_cast<double>(NowNs() - w0) / static_cast<double>(warm) : 1e3;
  long n = std::min<long>(budget.max_samples,
                          std::max<long>(RoundTripBudget::kMinSamples,
                                         static_cast<long>(static_cast<double>(budget.budget_ns) /
                                                           std::max(est_ns, 1.0))));
  if (cap > 0) n = std::min(n, cap);
  Samples lat(static_cast<size_t>(n));
  for (long i = 0; i < n; ++i) {
    const uint64_t t0 = NowNs();
    round_trip();
    const uint64_t t1 = NowNs();
    lat[static_cast<size_t>(i)] = t1 - t0;
  }
  return lat;
}

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_HARNESS_H_
