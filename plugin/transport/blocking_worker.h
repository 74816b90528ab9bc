// Background threads for the few blocking steps of connection set-up (the
// client's Connect and the server's per-client Handshake, each bounded by the
// handshake timeout). Kept off the poller so a slow peer never delays
// established connections, and run several at a time so one silent peer does
// not delay other peers' set-up either (up to a small fixed number of threads
// per lane: a flood of silent peers still queues, for at most the timeout).
//
// Client and server steps run on separate lanes: a process that talks to
// itself must never have the server's half of a handshake wait behind the
// client's half, which waits for it.
#ifndef GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_
#define GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_

#include <functional>

namespace grpc_shm {
namespace transport {

enum class BlockingLane { kClientConnect, kServerHandshake };

// Runs `job` on one of the lane's threads; jobs start in submission order
// but may run concurrently. Any thread. Threads start on demand and are never
// joined.
void RunBlocking(BlockingLane lane, std::function<void()> job);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_
