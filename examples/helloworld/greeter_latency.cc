// Times SayHello round trips to the same greeter server reached two ways,
// through shared memory and over TCP, and prints the comparison. The stubs
// are identical; only the channel credentials differ.
//
//   greeter_latency SHM_TARGET TCP_TARGET [calls]
//   e.g. greeter_latency shm:///tmp/greeter.sock 127.0.0.1:50051 5000
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "grpc_shm/grpc_shm.h"
#include "helloworld.grpc.pb.h"

namespace {

struct Latency {
  double p50 = 0, p90 = 0, p99 = 0;
  bool ok = false;
};

Latency Measure(const std::shared_ptr<grpc::Channel>& channel, int calls) {
  auto stub = helloworld::Greeter::NewStub(channel);
  helloworld::HelloRequest request;
  request.set_name("world");
  helloworld::HelloReply reply;
  std::vector<double> us;
  for (int i = -calls / 10; i < calls; ++i) {  // the first tenth warms up
    grpc::ClientContext context;
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status = stub->SayHello(&context, request, &reply);
    const auto end = std::chrono::steady_clock::now();
    if (!status.ok()) {
      std::fprintf(stderr, "SayHello failed: %s\n", status.error_message().c_str());
      return {};
    }
    if (i >= 0) us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(us.begin(), us.end());
  auto at = [&](double p) { return us[static_cast<size_t>(p * (us.size() - 1))]; };
  return {at(0.5), at(0.9), at(0.99), true};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SHM_TARGET TCP_TARGET [calls]\n", argv[0]);
    return 2;
  }
  const int calls = argc > 3 ? std::atoi(argv[3]) : 5000;
  // The two lines that differ between the transports:
  auto shm = grpc::CreateChannel(argv[1], grpc_shm::ChannelCredentials());
  auto tcp = grpc::CreateChannel(argv[2], grpc::InsecureChannelCredentials());
  const Latency s = Measure(shm, calls);
  const Latency t = Measure(tcp, calls);
  if (!s.ok || !t.ok) return 1;
  std::printf("SayHello round trip, same server, %d calls each (sync API):\n", calls);
  std::printf("  %-16s %9s %9s %9s\n", "", "p50 us", "p90 us", "p99 us");
  std::printf("  %-16s %9.1f %9.1f %9.1f\n", "shared memory", s.p50, s.p90, s.p99);
  std::printf("  %-16s %9.1f %9.1f %9.1f\n", "TCP loopback", t.p50, t.p90, t.p99);
  std::printf("  %-16s %8.2fx %8.2fx %8.2fx\n", "shm / TCP", s.p50 / t.p50, s.p90 / t.p90,
              s.p99 / t.p99);
  return 0;
}
