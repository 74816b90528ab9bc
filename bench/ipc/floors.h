// The physical floors the IPC core is measured against, in the same run: bare
// ping-pongs between the two processes with no ring, and single-core memcpy.
#ifndef GRPC_SHM_BENCH_IPC_FLOORS_H_
#define GRPC_SHM_BENCH_IPC_FLOORS_H_

#include <cstddef>
#include <cstdint>

#include "bench/ipc/harness.h"

namespace grpc_shm::bench {

// Busy-spin ping-pong on one bare shared atomic (MAP_SHARED|MAP_ANONYMOUS
// before fork): the parent publishes an odd value, the child answers + 1.
Samples RawSpinPingPong(Harness& harness, const RoundTripBudget& budget);

// Futex ping-pong on one shared atomic, no spinning at all: each side
// publishes its value, FUTEX_WAKEs, and FUTEX_WAITs until the answer arrives.
Samples RawFutexPingPong(Harness& harness, const RoundTripBudget& budget);

// Busy-spin ping-pong that also carries 64 bytes each way in a polled slot
// (PayloadSlot), with no ring.
Samples RawSpinPayloadPingPong(Harness& harness, const RoundTripBudget& budget);

// eventfd ping-pong: one blocking eventfd per direction.
Samples RawEventFdPingPong(Harness& harness, const RoundTripBudget& budget);

// Single-core memcpy of `size`-byte blocks between two buffers of that size
// (warm, as the ring's source and destination buffers are): GB/s of copied
// bytes, best of `reps` repetitions of about total_bytes / reps each.
double MemcpyGBs(size_t size, uint64_t total_bytes, long reps);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_FLOORS_H_
