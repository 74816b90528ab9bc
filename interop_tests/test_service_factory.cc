// Compiles gRPC's interop_server.cc (which has no main: that lives in
// interop_server_bootstrap.cc, which we do not build) and exposes its
// TestServiceImpl through a factory. interop_server.cc must not also be
// compiled on its own: it defines absl flags (--port, --use_tls, ...) and the
// RunServer overloads, which would then be defined twice.
//
// Built with NDEBUG undefined (grpc_shm::grpc_internal_headers): this file
// includes gRPC internal headers.
#include "interop_tests/test_service_factory.h"

#include "test/cpp/interop/interop_server.cc"  // NOLINT(build/include)

// Normally defined by interop_server_bootstrap.cc; RunServer() (unused by us)
// polls it.
gpr_atm grpc::testing::interop::g_got_sigint;

namespace grpc_shm_interop {

std::unique_ptr<grpc::Service> NewTestService() {
  return std::make_unique<::TestServiceImpl>();
}

}  // namespace grpc_shm_interop
