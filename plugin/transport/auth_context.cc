#include "plugin/transport/auth_context.h"

#include <grpc/grpc_security.h>
#include <grpc/grpc_security_constants.h>

#include <cstring>
#include <string>

#include "grpc_shm/credentials.h"
#include "src/core/lib/gprpp/unique_type_name.h"

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
