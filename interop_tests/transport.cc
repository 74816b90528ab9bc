#include "interop_tests/transport.h"

#ifdef GRPC_SHM_INTEROP_HAVE_SHM
#include "grpc_shm/grpc_shm.h"
#endif

namespace grpc_shm_interop {

#ifdef GRPC_SHM_INTEROP_HAVE_SHM
bool ShmAvailable() { return true; }
std::shared_ptr<grpc::ChannelCredentials> ShmChannelCredentials() {
  return grpc_shm::ChannelCredentials();
}
std::shared_ptr<grpc::ServerCredentials> ShmServerCredentials() {
  return grpc_shm::ServerCredentials();
}
#else
bool ShmAvailable() { return false; }
std::shared_ptr<grpc::ChannelCredentials> ShmChannelCredentials() {
  return nullptr;
}
std::shared_ptr<grpc::ServerCredentials> ShmServerCredentials() {
  return nullptr;
}
#endif

}  // namespace grpc_shm_interop
