#include "plugin/transport/auth_context.h"

#include <grpc/grpc_security.h>
#include <grpc/grpc_security_constants.h>

#include <cstring>
#include <string>

#include "grpc_shm/credentials.h"
#include "src/core/lib/gpr/useful.h"
#include "src/core/lib/gprpp/unique_type_name.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/promise/arena_promise.h"
#include "src/core/lib/promise/promise.h"
#include "src/core/tsi/transport_security_interface.h"

namespace grpc_shm {
namespace transport {
namespace {

void AddProperty(grpc_auth_context* context, const char* name, const std::string& value) {
  grpc_auth_context_add_property(context, name, value.data(), value.size());
}

// `args` plus a pointer arg made by one of gRPC's exported *_to_arg
// functions, with gRPC's own vtable. Never ChannelArgs::SetObject for these
// types: it would put a copy of ChannelArgTypeTraits<T>::VTable()'s static
// table, constant-initialised and read-only, in our binary; the dynamic
// linker makes libgrpc use that copy too (a unique symbol), and libgrpc's
// own run-time initialisation of it then writes to read-only memory.
grpc_core::ChannelArgs WithPointerArg(const grpc_core::ChannelArgs& args, const grpc_arg& arg) {
  const grpc_arg_pointer_vtable* vtable = arg.value.pointer.vtable;
  return args.Set(arg.key,
                  grpc_core::ChannelArgs::Pointer(vtable->copy(arg.value.pointer.p), vtable));
}

}  // namespace

// What gRPC's client auth filter needs of a channel security connector: the
// call host check (any host: the address names the server, not the
// :authority) and no call credentials of its own. The handshake methods are
// never used: shm connections are made by the shm connector, which gives
// the subchannel the server's auth context itself.
class ShmChannelSecurityConnector final : public grpc_channel_security_connector {
 public:
  ShmChannelSecurityConnector()
      : grpc_channel_security_connector(/*url_scheme=*/"", /*channel_creds=*/nullptr,
                                        /*request_metadata_creds=*/nullptr) {}

  grpc_core::ArenaPromise<absl::Status> CheckCallHost(absl::string_view,
                                                      grpc_auth_context*) override {
    return grpc_core::ImmediateOkStatus();
  }
  void add_handshakers(const grpc_core::ChannelArgs&, grpc_pollset_set*,
                       grpc_core::HandshakeManager*) override {}
  void check_peer(tsi_peer peer, grpc_endpoint*, const grpc_core::ChannelArgs&,
                  grpc_core::RefCountedPtr<grpc_auth_context>*,
                  grpc_closure* on_peer_checked) override {
    tsi_peer_destruct(&peer);
    grpc_core::ExecCtx::Run(DEBUG_LOCATION, on_peer_checked,
                            GRPC_ERROR_CREATE("shm channels have no security handshake"));
  }
  void cancel_check_peer(grpc_closure*, grpc_error_handle) override {}
  // There is one, shared by every shm channel.
  int cmp(const grpc_security_connector* other) const override {
    return grpc_core::QsortCompare(static_cast<const grpc_security_connector*>(this), other);
  }
  grpc_core::UniqueTypeName type() const override {
    static grpc_core::UniqueTypeName::Factory kFactory("grpc_shm_channel");
    return kFactory.Create();
  }
};

grpc_core::RefCountedPtr<grpc_server_security_connector>
ShmCoreServerCredentials::create_security_connector(const grpc_core::ChannelArgs&) {
  return nullptr;
}

grpc_core::UniqueTypeName ShmCoreServerCredentials::type() const {
  static grpc_core::UniqueTypeName::Factory kFactory("grpc_shm");
  return kFactory.Create();
}

grpc_core::RefCountedPtr<grpc_auth_context> MakeShmAuthContext(
    const platform::PeerCredentials& peer) {
  auto context = grpc_core::MakeRefCounted<grpc_auth_context>(nullptr);
  AddProperty(context.get(), GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME, kTransportSecurityType);
  // The string gRPC's local credentials give a Unix-socket peer
  // (tsi_security_level_to_string), spelled out to keep tsi out.
  AddProperty(context.get(), GRPC_TRANSPORT_SECURITY_LEVEL_PROPERTY_NAME,
              "TSI_PRIVACY_AND_INTEGRITY");
  if (peer.pid >= 0) AddProperty(context.get(), kPeerPidProperty, std::to_string(peer.pid));
#ifdef _WIN32
  AddProperty(context.get(), kPeerSidProperty, peer.user_sid);
  grpc_auth_context_set_peer_identity_property_name(context.get(), kPeerSidProperty);
#else
  AddProperty(context.get(), kPeerUidProperty, std::to_string(peer.uid));
  AddProperty(context.get(), kPeerGidProperty, std::to_string(peer.gid));
  grpc_auth_context_set_peer_identity_property_name(context.get(), kPeerUidProperty);
#endif
  return context;
}

grpc_core::ChannelArgs WithShmChannelSecurity(const grpc_core::ChannelArgs& args) {
  static auto* connector = new ShmChannelSecurityConnector();  // never unreffed to 0
  return WithPointerArg(args, grpc_security_connector_to_arg(connector));
}

grpc_core::ChannelArgs WithServerCredentials(const grpc_core::ChannelArgs& args,
                                             grpc_server_credentials* credentials) {
  return WithPointerArg(args, grpc_server_credentials_to_arg(credentials));
}

grpc_core::ChannelArgs WithPeerAuthContext(const grpc_core::ChannelArgs& args,
                                           const platform::PeerCredentials& peer) {
  // The args take their own reference; ours goes at the end of this scope.
  grpc_core::RefCountedPtr<grpc_auth_context> context = MakeShmAuthContext(peer);
  return WithPointerArg(args, grpc_auth_context_to_arg(context.get()));
}

}  // namespace transport
}  // namespace grpc_shm
