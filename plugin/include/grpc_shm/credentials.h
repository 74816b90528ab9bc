// Credentials that make ordinary gRPC C++ code talk over shared memory. Swap
// the credentials object, keep everything else:
//
//   // client
//   auto channel = grpc::CreateChannel("shm:///run/greeter.sock",
//                                      grpc_shm::ChannelCredentials());
//   // server
//   builder.AddListeningPort("shm:///run/greeter.sock",
//                            grpc_shm::ServerCredentials());
//
// Addresses:
//   shm:///absolute/path.sock   a Unix socket file carries the handshake
//   shm:@name                   a Linux abstract socket (no file)
// The socket is only used to set the connection up and to notice when the
// peer dies; calls travel through shared-memory rings.
//
// A malformed address fails cleanly: on the server AddListeningPort returns 0
// (so BuildAndStart returns null) and logs why; on the client every call
// fails with UNAVAILABLE and a message naming the address.
//
// A server may listen on shm and TCP at once (two AddListeningPort calls).
#ifndef GRPC_SHM_CREDENTIALS_H_
#define GRPC_SHM_CREDENTIALS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "grpc_shm/options.h"

namespace grpc_shm {

// For grpc::CreateChannel, grpc::CreateCustomChannel (ChannelArguments are
// honoured) and grpc::experimental::CreateCustomChannelWithInterceptors. The
// channel is a full gRPC client channel: it connects on demand, reconnects
// with backoff, and supports WaitForConnected and wait-for-ready. Per-call
// credentials (ClientContext::set_credentials) are sent as over gRPC's local
// credentials; ClientContext::auth_context() describes the server as below.
// grpc::CompositeChannelCredentials does not take these credentials (gRPC
// composes only its own secure ones): attach call credentials per call.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ShmOptions& options = {});

// For grpc::ServerBuilder::AddListeningPort. SetAuthMetadataProcessor on the
// result works as on gRPC's own server credentials: the processor sees every
// call that arrives through this port, with the auth context below, and may
// reject it or add properties.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const ShmOptions& options = {});

// Who is at the other end. On a grpc-shm server, ServerContext::auth_context()
// (and the auth context an AuthMetadataProcessor is given) describes the
// client process as the kernel reported it when the client connected
// (SO_PEERCRED on the handshake socket, so it cannot be forged by the
// client); on a client, ClientContext::auth_context() describes the server
// process the same way:
//   transport_security_type  kTransportSecurityType ("shm")
//   security_level           "TSI_PRIVACY_AND_INTEGRITY", as for gRPC's local
//                            credentials over a Unix socket: only the two
//                            processes hold the connection's memory
//   shm_peer_pid, shm_peer_uid, shm_peer_gid   decimal numbers
// The peer identity (AuthContext::GetPeerIdentity) is shm_peer_uid, so
// IsPeerAuthenticated() is true. shm_peer_pid is absent where the platform
// cannot tell it. Windows has no uid or gid: there the properties are
// shm_peer_pid and shm_peer_sid (the peer's user as a SID string, from its
// process token), and the peer identity is shm_peer_sid.
inline constexpr char kTransportSecurityType[] = "shm";
inline constexpr char kPeerPidProperty[] = "shm_peer_pid";
#ifdef _WIN32
inline constexpr char kPeerSidProperty[] = "shm_peer_sid";
#else
inline constexpr char kPeerUidProperty[] = "shm_peer_uid";
inline constexpr char kPeerGidProperty[] = "shm_peer_gid";
#endif

// Registers the transport with gRPC's core configuration. The credentials
// functions above do it for you; call this yourself only if your process
// creates gRPC channels or servers before it first calls them. Safe to call
// more than once; must run before the first gRPC channel or server exists.
void Init();

}  // namespace grpc_shm

#endif  // GRPC_SHM_CREDENTIALS_H_
