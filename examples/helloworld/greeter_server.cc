// The gRPC greeter server, over shared memory. Compared with gRPC's own
// examples/cpp/helloworld/greeter_server.cc, only the address and the
// credentials in AddListeningPort differ.
//
//   greeter_server [address [tcp_address]]    default: shm:///tmp/greeter.sock
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <memory>
#include <string>

#include "grpc_shm/grpc_shm.h"
#include "helloworld.grpc.pb.h"

class GreeterServiceImpl final : public helloworld::Greeter::Service {
  grpc::Status SayHello(grpc::ServerContext* context, const helloworld::HelloRequest* request,
                        helloworld::HelloReply* reply) override {
    reply->set_message("Hello " + request->name());
    return grpc::Status::OK;
  }
};

int main(int argc, char** argv) {
  std::string address = argc > 1 ? argv[1] : "shm:///tmp/greeter.sock";
  // Optional: the same server on TCP as well, so local callers take shared
  // memory and remote ones plain gRPC (port 0 picks a free port).
  std::string tcp_address = argc > 2 ? argv[2] : "";
  GreeterServiceImpl service;
  grpc::ServerBuilder builder;
  // Over TCP this line reads:
  //   builder.AddListeningPort("0.0.0.0:50051", grpc::InsecureServerCredentials());
  builder.AddListeningPort(address, grpc_shm::ServerCredentials());
  int tcp_port = 0;
  if (!tcp_address.empty()) {
    builder.AddListeningPort(tcp_address, grpc::InsecureServerCredentials(), &tcp_port);
  }
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server(builder.BuildAndStart());
  if (!server) {
    std::cerr << "could not listen on " << address << std::endl;
    return 1;
  }
  std::cout << "Server listening on " << address << std::endl;
  if (!tcp_address.empty()) std::cout << "Server listening on TCP port " << tcp_port << std::endl;
  server->Wait();
  return 0;
}
