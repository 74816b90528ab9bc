// The gRPC greeter client, over shared memory. Compared with gRPC's own
// examples/cpp/helloworld/greeter_client.cc, only the target and the
// credentials in CreateChannel differ.
//
//   greeter_client [target] [name]    default: shm:///tmp/greeter.sock world
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <memory>
#include <string>

#include "grpc_shm/grpc_shm.h"
#include "helloworld.grpc.pb.h"

int main(int argc, char** argv) {
  std::string target = argc > 1 ? argv[1] : "shm:///tmp/greeter.sock";
  std::string name = argc > 2 ? argv[2] : "world";
  // Over TCP this line reads:
  //   grpc::CreateChannel("localhost:50051", grpc::InsecureChannelCredentials());
  auto channel = grpc::CreateChannel(target, grpc_shm::ChannelCredentials());
  auto stub = helloworld::Greeter::NewStub(channel);

  helloworld::HelloRequest request;
  request.set_name(name);
  helloworld::HelloReply reply;
  grpc::ClientContext context;
  grpc::Status status = stub->SayHello(&context, request, &reply);
  if (!status.ok()) {
    std::cerr << "RPC failed: " << status.error_code() << ": " << status.error_message()
              << std::endl;
    return 1;
  }
  std::cout << "Greeter received: " << reply.message() << std::endl;
  return 0;
}
