// Transport selection for the interop binaries. The shared-memory transport
// is optional at build time (GRPC_SHM_INTEROP_HAVE_SHM): without it only
// --transport=tcp works, and the shm functions return nullptr.
#ifndef GRPC_SHM_INTEROP_TESTS_TRANSPORT_H_
#define GRPC_SHM_INTEROP_TESTS_TRANSPORT_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>

namespace grpc_shm_interop {

// True when the binary was built with the grpc-shm transport.
bool ShmAvailable();

// grpc_shm::ChannelCredentials() / grpc_shm::ServerCredentials(), or nullptr
// when the binary was built without the transport.
std::shared_ptr<grpc::ChannelCredentials> ShmChannelCredentials();
std::shared_ptr<grpc::ServerCredentials> ShmServerCredentials();

}  // namespace grpc_shm_interop

#endif  // GRPC_SHM_INTEROP_TESTS_TRANSPORT_H_
