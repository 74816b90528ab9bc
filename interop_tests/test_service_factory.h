// Factory for gRPC's own interop TestService implementation (TestServiceImpl
// in test/cpp/interop/interop_server.cc has no header of its own).
#ifndef GRPC_SHM_INTEROP_TESTS_TEST_SERVICE_FACTORY_H_
#define GRPC_SHM_INTEROP_TESTS_TEST_SERVICE_FACTORY_H_

#include <grpcpp/impl/codegen/service_type.h>

#include <memory>

namespace grpc_shm_interop {

// A fresh, unmodified grpc::testing::TestService implementation from the
// gRPC 1.51.1 source tree.
std::unique_ptr<grpc::Service> NewTestService();

}  // namespace grpc_shm_interop

#endif  // GRPC_SHM_INTEROP_TESTS_TEST_SERVICE_FACTORY_H_
