// Lets gRPC's own polling threads watch a connection's doorbell and liveness
// socket, instead of our poller thread. A call then completes on the thread
// that is already waiting for it (the one in cq.Next / a sync server thread):
// one wake per message, as chttp2 gets from its socket, where a poller thread
// of our own costs a second wake and a thread hop every time.
//
// Same contract as Poller (poller.h) except that OnEvent may run on any gRPC
// polling thread, though never twice at once for one registration's handle,
// and sources must serialise OnEvent themselves (the transport takes its
// lock). Used with the epoll1 polling engine, where every fd lives in one
// epoll set that all polling threads share; elsewhere Poller is used.
#ifndef GRPC_SHM_TRANSPORT_GRPC_POLLER_H_
#define GRPC_SHM_TRANSPORT_GRPC_POLLER_H_

#include <vector>

#include "plugin/transport/poller.h"

namespace grpc_shm {
namespace transport {

class GrpcPoller {
 public:
  // True if gRPC's polling engine can carry our handles (epoll1), unless
  // GRPC_SHM_POLLER=thread asks for the dedicated poller thread.
  static bool Usable();

  // Registers `handles` (duplicated: gRPC closes its copies) and kicks the
  // source once. Must run under an ExecCtx.
  static void Add(PollSource* source, const std::vector<Poller::Handle>& handles);
  // Stops watching; OnRemoved() follows once no OnEvent is running or
  // pending. Safe to call under the source's lock.
  static void Remove(PollSource* source);
  // OnEvent(-1, kKick) soon, on some gRPC thread. Safe under the source's lock.
  static void Kick(PollSource* source);
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_GRPC_POLLER_H_
