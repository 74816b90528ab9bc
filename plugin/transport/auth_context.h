// A connection's peer in gRPC's security vocabulary. gRPC hands a server call
// its auth context, and runs the server credentials' AuthMetadataProcessor,
// from its server auth filter, which it puts on a connection's channel stack
// only when the channel args carry server credentials (init.cc,
// maybe_prepend_server_auth_filter); the filter then requires an auth context
// in the same args. chttp2 gets both from its security handshake; shm gets
// them here, from the kernel's view of the peer.
//
// The client side mirrors it: gRPC's client auth filter, which attaches a
// call's per-call credentials (ClientContext::set_credentials) and gives the
// call its auth context (ClientContext::auth_context), is put on a
// subchannel's stack only when the args carry a channel security connector
// (maybe_prepend_client_auth_filter), and then wants the server's auth
// context in the connected subchannel's args. Without them per-call
// credentials were dropped without a word.
#ifndef GRPC_SHM_TRANSPORT_AUTH_CONTEXT_H_
#define GRPC_SHM_TRANSPORT_AUTH_CONTEXT_H_

#include "plugin/platform/platform.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/gprpp/ref_counted_ptr.h"
#include "src/core/lib/security/context/security_context.h"
#include "src/core/lib/security/credentials/credentials.h"
#include "src/core/lib/security/security_connector/security_connector.h"

namespace grpc_shm {
namespace transport {

// The core credentials behind grpc_shm::ServerCredentials. They only carry the
// AuthMetadataProcessor: no security handshake ever runs on an shm
// connection, so create_security_connector is never called.
class ShmCoreServerCredentials final : public grpc_server_credentials {
 public:
  grpc_core::RefCountedPtr<grpc_server_security_connector> create_security_connector(
      const grpc_core::ChannelArgs& args) override;
  grpc_core::UniqueTypeName type() const override;
};

// `args` plus the security connector every shm channel carries, so gRPC
// puts its client auth filter on the channel's subchannels. The connector
// holds no state (no handshake runs; call credentials come with each call),
// so all channels share one and their subchannels stay shareable.
grpc_core::ChannelArgs WithShmChannelSecurity(const grpc_core::ChannelArgs& args);

// The auth context of a connection whose peer the kernel says is `peer`: the
// properties documented in grpc_shm/credentials.h.
grpc_core::RefCountedPtr<grpc_auth_context> MakeShmAuthContext(
    const platform::PeerCredentials& peer);

// `args` plus `credentials`, as chttp2 gives a secure port's connections.
grpc_core::ChannelArgs WithServerCredentials(const grpc_core::ChannelArgs& args,
                                             grpc_server_credentials* credentials);

// The args for the channel stack of one connection: `args` (which must hold
// the listener's credentials, see WithServerCredentials, or the channel's
// security connector, see WithShmChannelSecurity, so the auth filter is
// added) plus the peer's auth context.
grpc_core::ChannelArgs WithPeerAuthContext(const grpc_core::ChannelArgs& args,
                                           const platform::PeerCredentials& peer);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_AUTH_CONTEXT_H_
