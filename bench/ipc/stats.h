// What ipc_bench reports of its samples: latency percentiles, and the best
// and median rate over throughput repetitions.
#ifndef GRPC_SHM_BENCH_IPC_STATS_H_
#define GRPC_SHM_BENCH_IPC_STATS_H_

#include <cstddef>
#include <vector>

#include "bench/ipc/harness.h"

namespace grpc_shm::bench {

struct LatencyStats {
  double mean_ns = 0, p50_ns = 0, p99_ns = 0, p999_ns = 0, min_ns = 0, max_ns = 0;
  long samples = 0;
};

// All zeros for no samples.
LatencyStats Summarize(Samples v);

// v must not be empty; the upper median for an even count.
double Median(std::vector<double> v);
// First quartile, median, third quartile (v must not be empty).
void Quartiles(std::vector<double> v, double* q1, double* q2, double* q3);

struct Throughput {
  // Over the measured repetitions: best and median rate. On a machine shared
  // with other work the best repetition is the closest to an undisturbed one.
  double best_msgs_per_s = 0;
  double median_msgs_per_s = 0;
  double best_gb_per_s = 0;
  double median_gb_per_s = 0;
  // Voluntary context switches (= times a process went to sleep) per message.
  double parent_cs_per_msg = 0;
  double child_cs_per_msg = 0;
  std::vector<double> rates;  // every measured repetition, msgs/s
  size_t size = 0;
};

// Fills the rate figures of `t` from repetitions of `size`-byte messages
// (`rates` must not be empty).
void FillRates(const std::vector<double>& rates, size_t size, Throughput* t);

// How a throughput scenario splits its messages into measured repetitions.
struct RepetitionPlan {
  long reps = 1;            // measured repetitions per run
  double rep_budget_s = 0;  // a repetition should take no longer
};

// Messages per measured repetition: `max`, or fewer where the rate seen in
// the warm-up says a repetition would overrun its time budget (a loaded
// machine must not stretch the run past its limit).
long RepCount(const RepetitionPlan& plan, double warm_rate, long max);

// The repetitions of two runs of the same scenario, as one (`a` may be
// empty: the first round).
Throughput Merge(const Throughput& a, const Throughput& b);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_STATS_H_
