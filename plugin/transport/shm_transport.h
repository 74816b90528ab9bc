// The gRPC transport over one shared-memory connection: the public face is
// just a constructor; everything else goes through grpc_transport_vtable.
#ifndef GRPC_SHM_TRANSPORT_SHM_TRANSPORT_H_
#define GRPC_SHM_TRANSPORT_SHM_TRANSPORT_H_

#include <memory>
#include <string>

#include "plugin/ipc/connection.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/transport/transport_fwd.h"

namespace grpc_shm {
namespace transport {

// Wraps an established connection. The returned transport is owned by gRPC
// (grpc_transport_destroy). It does not read until StartShmTransport(): a
// server must first hand it to Server::SetupTransport so that the accept
// callback is set before the first stream arrives. `args` supplies the limits
// gRPC's HTTP/2 transport also enforces (GRPC_ARG_MAX_METADATA_SIZE).
grpc_transport* CreateShmTransport(std::unique_ptr<ipc::Connection> connection, bool is_client,
                                   std::string peer_string, const grpc_core::ChannelArgs& args);
void StartShmTransport(grpc_transport* transport);

// "shm:pid=12,uid=1000,gid=1000": what ServerContext::peer() shows.
std::string PeerStringFor(const ipc::Connection& connection);

// True for transports made by CreateShmTransport.
bool IsShmTransport(grpc_transport* transport);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_SHM_TRANSPORT_H_
