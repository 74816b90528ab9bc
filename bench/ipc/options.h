// ipc_bench's command line, and the sizes of every measurement it implies.
#ifndef GRPC_SHM_BENCH_IPC_OPTIONS_H_
#define GRPC_SHM_BENCH_IPC_OPTIONS_H_

#include <cstdint>
#include <string>

namespace grpc_shm::bench {

struct Options {
  bool quick = false;
  bool pin = true;
  std::string json_path;
  uint32_t ring_bytes = 0;  // per direction; ParseOptions sets the default
  // Round trips per latency scenario (measured, over all rounds) and warm-up
  // before them (over all rounds).
  long rt_iters = 200000;
  long rt_warmup = 20000;
  long rt_rounds = 4;  // latency scenarios run interleaved in this many rounds
  // Comma-separated latency scenario keys to run (empty: all, plus the
  // throughput and target sections, which need every scenario).
  std::string only;
  // Paired spinning measurement: fresh process pairs per latency round,
  // blocks per pair, timed round trips per block.
  long paired_pairs_per_round = 2;
  long paired_blocks = 50;
  long paired_per_block = 500;
  // Per scenario and round: time budgets for warm-up and measurement.
  uint64_t rt_warm_budget_ns = 200000000;
  uint64_t rt_budget_ns = 2000000000;
  // Messages in the 64-byte throughput run (and its warm-up).
  long tp_msgs = 20000000;
  long tp_warmup = 500000;
  // Bytes per large-message throughput run.
  uint64_t big_bytes = 4ull << 30;
  uint64_t big_warmup_bytes = 128ull << 20;
  // Bytes per memcpy measurement.
  uint64_t memcpy_bytes = 4ull << 30;
  int scenario_timeout_s = 60;
  // Measured repetitions per throughput figure and round (best and median
  // over all reported), and rounds spread over the run.
  long tp_reps = 5;
  long tp_rounds = 3;
  double tp_rep_budget_s = 0.5;

  // Whether --only names `key` (always false without --only).
  bool OnlyHas(const std::string& key) const;
};

// Parses argv into `options` (--quick shrinks every measurement). Returns -1
// to go on, or the exit status after printing usage (--help: 0, an unknown
// or incomplete flag: 1).
int ParseOptions(int argc, char** argv, Options* options);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_OPTIONS_H_
