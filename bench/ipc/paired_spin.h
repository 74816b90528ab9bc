// The spinning round trip and its floors measured side by side in one process
// pair: alternating blocks of the bare-atomic spin, the 64-byte slot spin and
// the ring (Connection, both sides spin in ReadFrame).
//
// On a VM the host moves vCPUs between cores, and a cache-line transfer costs
// 2-4x more on some placements than on others, often changing within a
// second; a ratio of medians over blocks a few milliseconds apart compares
// like with like, where pooled samples from different seconds do not.
#ifndef GRPC_SHM_BENCH_IPC_PAIRED_SPIN_H_
#define GRPC_SHM_BENCH_IPC_PAIRED_SPIN_H_

#include <vector>

#include "bench/ipc/harness.h"
#include "plugin/ipc/connection.h"

namespace grpc_shm::bench {

// Per block: p50 of the ring over p50 of each floor, and the bare floor's own
// p50 per round trip (which tells the placement the block ran in).
struct PairedView {
  std::vector<double> ratios, payload_ratios, raw_p50s;
  Samples raw, payload, ring;  // all samples, pooled (ns per sample)
};

struct PairedSpin {
  // One round trip per sample (p50 of round-trip latency, as every other
  // latency row), and kBatch per sample: the guest clock ticks in 10 ns
  // steps and a clock read costs ~30 ns, which one-per-sample adds to both
  // sides of a ratio.
  PairedView single, batched;
  long pairs = 0;
  static constexpr int kBatch = 8;
};

// Adds `blocks` blocks measured in one fresh process pair (connected with
// `options`) to `out`. Each block times, in a rotating order, the bare-atomic
// ping-pong, the 64-byte slot ping-pong (raw_spin_payload's protocol) and
// the ring, `per_block` samples each of 1 and of kBatch round trips.
void PairedSpinRoundTrips(Harness& harness, const ipc::ConnectionOptions& options, long blocks,
                          long per_block, PairedSpin* out);

// The blocks whose bare floor (batched p50 per round trip) fell in one band.
struct PlacementBand {
  const char* name;
  size_t blocks = 0;
  // Median per-block ratio of the ring, 1 round trip / kBatch per sample.
  double vs_bare_single = 0, vs_bare_batched = 0;
  double vs_slot_single = 0, vs_slot_batched = 0;
};

// What the report shows of the paired blocks: all zeros if none ran.
struct PairedSummary {
  double ratio = 0, q1 = 0, q3 = 0;  // ring / bare atomic, 1 per sample
  double payload_ratio = 0;          // ring / 64 B slot, 1 per sample
  double batched_ratio = 0, batched_payload_ratio = 0;
  std::vector<PlacementBand> bands;  // only bands that saw a block
};

PairedSummary SummarizePaired(const PairedSpin& paired);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_PAIRED_SPIN_H_
