// What a process holds, read from /proc, and a wait for the holdings of this
// process to come back to an earlier measurement. The chaos harness and the
// soak test use these to show that a peer's death, or hours of traffic,
// leave nothing behind.
#ifndef GRPC_SHM_RELIABILITY_PROCESS_USAGE_H_
#define GRPC_SHM_RELIABILITY_PROCESS_USAGE_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace grpc_shm {
namespace reliability {

struct ProcessUsage {
  int64_t rss_kib = 0;
  int descriptors = 0;
  int threads = 0;
  // Threads nobody named (they carry the process's name): ours, and the
  // transport's connect threads.
  int unnamed_threads = 0;
  int memfd_mappings = 0;  // /proc/PID/maps lines of memfd segments (our rings)
};

// Reads /proc/PID (pid 0: this process). All zero if the process is gone.
ProcessUsage UsageOf(pid_t pid);
std::string Describe(const ProcessUsage& usage);
// True if a thread of this process is named `name`.
bool HasThreadNamed(const std::string& name);
// Names of this process's threads and targets of its descriptors, for a
// report of what was left behind.
std::string DescribeHoldings();

// RSS may stay above a baseline by this much (pages touched once stay
// resident: stacks, libraries' lazily filled tables; main.cc fixes the
// allocator's thresholds so freed messages do not). A small leak per call
// shows in the soak's trend, not in one chaos trial.
constexpr int64_t kRssSlackKib = 8 * 1024;

// A client's blocking connects run on a pool of up to 8 unnamed threads that
// start on demand and never stop (plugin/transport/blocking_worker.h): a
// trial may start up to 7 more than the warm-up did.
constexpr int kConnectPoolGrowth = 7;

// gRPC's own thread pools (default-executor, grpc_global_timer,
// event_engine, grpcpp_sync_server: the named threads) start threads on
// demand and keep some; a trial may leave this many more of them.
constexpr int kGrpcPoolGrowth = 8;

// True if `now` holds no more descriptors and memfd mappings than
// `baseline`, at most `unnamed_growth` more unnamed threads (ours), at most
// kGrpcPoolGrowth more named ones (gRPC's), and RSS within kRssSlackKib.
bool BackToBaseline(const ProcessUsage& now, const ProcessUsage& baseline, int unnamed_growth);

// Gives freed heap back to the kernel (malloc_trim) and then measures this
// process until BackToBaseline or `timeout` passes; returns the last
// measurement in `*last`. Polls: the process's own transport threads release
// a dead connection asynchronously, and nothing signals when they are done.
bool WaitForBaseline(const ProcessUsage& baseline, int unnamed_growth,
                     std::chrono::milliseconds timeout, ProcessUsage* last);

// Measures this process once it holds no memfd mapping (no live
// connection), waiting up to `timeout` for that; the baseline for
// WaitForBaseline.
ProcessUsage IdleBaseline(std::chrono::milliseconds timeout);

// CLOCK_MONOTONIC in nanoseconds: the same clock in every process, so one
// process's kill time and another's detection time can be subtracted.
int64_t MonotonicNs();

}  // namespace reliability
}  // namespace grpc_shm

#endif  // GRPC_SHM_RELIABILITY_PROCESS_USAGE_H_
