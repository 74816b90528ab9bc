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
// epoll set that all polling threads share; elsewhere ThreadPoller is used
// (ConnectionPoller() in poller.h chooses).
#ifndef GRPC_SHM_TRANSPORT_GRPC_POLLER_H_
#define GRPC_SHM_TRANSPORT_GRPC_POLLER_H_

#include <vector>

#include "plugin/transport/poller.h"

namespace grpc_shm {
namespace transport {

class GrpcEnginePoller final : public Poller {
 public:
  // True if gRPC's polling engine can carry our handles (epoll1), unless
  // GRPC_SHM_POLLER=thread asks for the dedicated poller thread.
  static bool Usable();
  // The process-wide instance (stateless apart from its registry).
  static GrpcEnginePoller& Get();

  // Must run under an ExecCtx. gRPC closes the duplicates it watches.
  ipc::Status Add(PollSource* source, const std::vector<Handle>& handles) override;
  void Remove(PollSource* source) override;
  void Kick(PollSource* source) override;
  // The kick runs on gRPC's executor, not at the end of the caller's ExecCtx,
  // so the calling thread goes back to gRPC's other work first.
  void KickAfterOthers(PollSource* source) override;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_GRPC_POLLER_H_
