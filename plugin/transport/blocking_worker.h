// Background threads for the few blocking steps of connection set-up (the
// client's Connect and the server's per-client Handshake, each bounded by the
// handshake timeout). Kept off the poller so a slow peer delays other set-ups
// at worst, never established connections.
//
// Client and server steps run on separate threads: a process that talks to
// itself would otherwise queue the server's half of a handshake behind the
// client's half, which waits for it.
#ifndef GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_
#define GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_

#include <functional>

namespace grpc_shm {
namespace transport {

enum class BlockingLane { kClientConnect, kServerHandshake };

// Runs `job` on the lane's thread, in submission order. Any thread. The
// thread starts on first use and is never joined.
void RunBlocking(BlockingLane lane, std::function<void()> job);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_
