// Builds against the installed headers and library, starts a server with a
// shared-memory port and connects to it: the install is usable by a project
// of its own.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>

#include "grpc_shm/grpc_shm.h"

int main() {
  grpc::AsyncGenericService service;  // any service, so the server starts
  grpc::ServerBuilder builder;
  builder.RegisterAsyncGenericService(&service);
  builder.AddListeningPort("shm:@grpc-shm-install-test", grpc_shm::ServerCredentials());
  auto cq = builder.AddCompletionQueue();
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  auto channel = grpc::CreateChannel("shm:@grpc-shm-install-test", grpc_shm::ChannelCredentials());
  const bool connected =
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  server->Shutdown();
  cq->Shutdown();
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
  }
  std::printf("connected over shm: %s\n", connected ? "yes" : "no");
  return connected ? 0 : 1;
}
