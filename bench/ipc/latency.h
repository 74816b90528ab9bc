// The latency section: every round-trip scenario and the paired spinning
// blocks, interleaved in rounds.
#ifndef GRPC_SHM_BENCH_IPC_LATENCY_H_
#define GRPC_SHM_BENCH_IPC_LATENCY_H_

#include <string>
#include <vector>

#include "bench/ipc/backends.h"
#include "bench/ipc/harness.h"
#include "bench/ipc/options.h"
#include "bench/ipc/paired_spin.h"
#include "bench/ipc/stats.h"

namespace grpc_shm::bench {

struct LatencyRow {
  std::string key;    // stable, for JSON and --only
  std::string label;  // for the text report
  LatencyStats s;
};

struct LatencyResults {
  std::vector<LatencyRow> rows;  // in the order of the scenario table
  bool ran_paired = false;
  PairedSpin paired;

  // The row of scenario `key`; dies if it did not run.
  const LatencyStats& Find(const std::string& key) const;
};

// What one scenario times in each round: rt_iters and rt_warmup are spread
// over the rounds.
RoundTripBudget PerRoundBudget(const Options& options);

// Runs the scenarios --only selects (all without it) in options.rt_rounds
// interleaved rounds and pools their samples, so slow drift of the machine
// (other load, host scheduling) hits every scenario alike. The paired
// spinning blocks run in every round too, in fresh process pairs, so they
// see the placements the rest of the run sees (not with one CPU).
LatencyResults RunLatency(Harness& harness, const Options& options, const Backends& backends);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_LATENCY_H_
