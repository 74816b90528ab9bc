// Diagnostics: RingWriter/RingReader on a plain shared mapping, with no
// Connection around them (no wait words, no doorbells), both sides spinning.
// With `fence`, each Commit and Consume is followed by exactly what
// Connection::WakePeerIf does when the peer is not asleep (a seq_cst fence
// and a relaxed load of the peer's wait word), so the difference between the
// two figures is the cost of that fence.
#ifndef GRPC_SHM_BENCH_IPC_BARE_RING_H_
#define GRPC_SHM_BENCH_IPC_BARE_RING_H_

#include <cstddef>
#include <cstdint>

#include "bench/ipc/harness.h"
#include "bench/ipc/stats.h"

namespace grpc_shm::bench {

// 64-byte round trips on two bare rings of `ring_bytes` each.
Samples BareRingRoundTrip(Harness& harness, uint32_t ring_bytes, bool fence,
                          const RoundTripBudget& budget);

// One-way stream of `size`-byte messages child -> parent on a bare ring of
// `ring_bytes`: `warm` unmeasured messages, then `count` more in plan.reps
// repetitions. Messages larger than a quarter ring go as chunks, as
// WriteMessage sends them. The consumer copies every payload out.
Throughput BareRingOneWay(Harness& harness, uint32_t ring_bytes, size_t size, bool fence,
                          long count, long warm, const RepetitionPlan& plan);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_BARE_RING_H_
