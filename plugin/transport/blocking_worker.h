// Background threads for the client's blocking Connect (bounded by the
// handshake timeout). Kept off the poller so a slow server never delays
// established connections, and run several at a time so one silent server
// does not delay connections to others either (up to a small fixed number
// of threads: more silent servers than that still queue, for at most the
// timeout). The server's half of a handshake never blocks and runs on the
// poller (listener.cc), so a process that talks to itself cannot have its
// server's half wait behind its client's.
#ifndef GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_
#define GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_

#include <functional>

namespace grpc_shm {
namespace transport {

// Runs `job` on one of the threads; jobs start in submission order but may
// run concurrently. Any thread. Threads start on demand and are never
// joined.
void RunBlocking(std::function<void()> job);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_BLOCKING_WORKER_H_
