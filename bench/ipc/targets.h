// The targets of issue 2, as ratios of the run's own figures.
#ifndef GRPC_SHM_BENCH_IPC_TARGETS_H_
#define GRPC_SHM_BENCH_IPC_TARGETS_H_

#include <string>
#include <vector>

#include "bench/ipc/latency.h"
#include "bench/ipc/paired_spin.h"
#include "bench/ipc/throughput.h"

namespace grpc_shm::bench {

struct Target {
  std::string name;
  double value;
  double target;
  bool lower_is_better;
  std::string unit;  // "x": a ratio; "": a fraction (shown in %); else a rate
  bool pass() const { return lower_is_better ? value <= target : value >= target; }
};

// Needs every latency scenario (a full run, not --only). With one CPU the
// spinning target compares pooled samples (no paired blocks ran).
std::vector<Target> MakeTargets(const LatencyResults& latency, const PairedSummary& paired,
                                const ThroughputResults& tp, bool single_cpu);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_TARGETS_H_
