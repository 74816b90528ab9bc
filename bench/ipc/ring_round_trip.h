// Round-trip latency of a 64-byte message through a Connection.
#ifndef GRPC_SHM_BENCH_IPC_RING_ROUND_TRIP_H_
#define GRPC_SHM_BENCH_IPC_RING_ROUND_TRIP_H_

#include "bench/ipc/harness.h"
#include "plugin/ipc/connection.h"

namespace grpc_shm::bench {

// 64-byte ping-pong through a Connection made with `options`. The parent
// (server) times each round trip: write request, read reply, copy it out,
// consume. The child (client) echoes until a kFrameGoaway. Both sides use
// WriteFrame/ReadFrame, so both spin for options.spin before they sleep, as
// an application would.
//
// A fresh connection's ring pages are not mapped yet in either process: each
// first touch of a 4 KiB page is a page fault (both processes, both rings),
// which would land in the timed round trips of the first lap around the
// ring. `pretouch` sends one ring's worth of bulk data each way first
// (WriteMessage, echoed), so the timed part sees the steady state. With
// `pretouch` false the timed round trips are exactly the first lap (cold),
// with no warm-up.
Samples RingRoundTrip(Harness& harness, const ipc::ConnectionOptions& options,
                      const RoundTripBudget& budget, bool pretouch = true);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_RING_ROUND_TRIP_H_
