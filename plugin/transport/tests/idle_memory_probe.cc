// Measures what idle connections that once carried a large call cost in
// memory and descriptors, on both sides, over shm, UDS and TCP (issue 12):
// starts echo_test_server, opens N channels (one connection each), makes one
// unary call of --bytes on each, waits --idle_ms, and prints per connection
// the growth of each side's Rss, Pss and Pss_Shmem (/proc/PID/smaps_rollup)
// and open descriptors, from before the first connection:
//
//   idle_memory_probe --server=PATH/echo_test_server --transport=shm|uds|tcp
//                     [--connections=100] [--bytes=1048576] [--idle_ms=1500]
//                     [--then_bytes=N] (a second call of N bytes on each
//                     connection after the large one; 0: none)
//
// Pss splits shared pages between the processes that map them, so client
// Pss + server Pss is the memory a connection costs the machine (socket
// buffers of idle TCP/UDS connections are empty). Not a test: a tool whose
// output the issue's figures quote.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "server_process.h"

namespace {

using grpc_shm::test::EchoRequest;
using grpc_shm::test::EchoResponse;
using grpc_shm::test::EchoTest;

struct Usage {
  double rss_kib = 0, pss_kib = 0, pss_shmem_kib = 0;
  int fds = 0;
};

Usage Measure(pid_t pid) {
  Usage u;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  for (std::string line; std::getline(in, line);) {
    auto field = [&](const char* name, double* out) {
      if (line.rfind(name, 0) == 0) *out = std::atof(line.c_str() + std::strlen(name));
    };
    field("Rss:", &u.rss_kib);
    field("Pss:", &u.pss_kib);
    field("Pss_Shmem:", &u.pss_shmem_kib);
  }
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir != nullptr) {
    while (dirent* e = ::readdir(dir)) u.fds += e->d_name[0] != '.';
    ::closedir(dir);
    if (pid == ::getpid()) --u.fds;  // the directory stream
  }
  return u;
}

void Print(const char* transport, const char* side, const char* when, const Usage& before,
           const Usage& now, int n) {
  std::printf(
      "%-4s %-6s %-12s per connection: Rss %8.1f KiB  Pss %8.1f KiB  Pss_Shmem %8.1f KiB  "
      "descriptors %5.2f\n",
      transport, side, when, (now.rss_kib - before.rss_kib) / n, (now.pss_kib - before.pss_kib) / n,
      (now.pss_shmem_kib - before.pss_shmem_kib) / n,
      static_cast<double>(now.fds - before.fds) / n);
}

}  // namespace

int main(int argc, char** argv) {
  std::string server_path, transport = "shm";
  int connections = 100, idle_ms = 1500;
  size_t bytes = 1 << 20, then_bytes = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? argv[i] + n : nullptr;
    };
    if (const char* v = value("--server=")) server_path = v;
    if (const char* v = value("--transport=")) transport = v;
    if (const char* v = value("--connections=")) connections = std::atoi(v);
    if (const char* v = value("--bytes=")) bytes = std::strtoul(v, nullptr, 10);
    if (const char* v = value("--idle_ms=")) idle_ms = std::atoi(v);
    if (const char* v = value("--then_bytes=")) then_bytes = std::strtoul(v, nullptr, 10);
  }
  if (server_path.empty()) {
    std::fprintf(stderr, "usage: %s --server=echo_test_server [--transport=shm|uds|tcp] ...\n",
                 argv[0]);
    return 2;
  }
  const std::string name = "idle_memory_probe_" + std::to_string(::getpid());
  const std::string uds = "/tmp/" + name + ".sock";
  std::vector<std::string> args = {server_path, "--shm=shm:@" + name, "--uds=" + uds, "--tcp=0"};
  grpc_shm::testing::ServerProcess server(args);
  if (!server.ok()) {
    std::fprintf(stderr, "server did not start\n");
    return 1;
  }
  std::string target;
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (transport == "shm") {
    target = "shm:@" + name;
    creds = grpc_shm::ChannelCredentials();
  } else if (transport == "uds") {
    target = "unix:" + uds;
  } else {
    target = "127.0.0.1:" + std::to_string(server.tcp_port());
  }
  auto call = [&](EchoTest::Stub* stub, size_t size) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    EchoRequest req;
    req.set_message(std::string(size, 'm'));
    EchoResponse resp;
    grpc::Status s = stub->Unary(&ctx, req, &resp);
    if (!s.ok() || resp.message().size() != size) {
      std::fprintf(stderr, "call failed: %s\n", s.error_message().c_str());
      std::exit(1);
    }
  };
  // One small call on a first channel, so that what every connection
  // shares (gRPC's threads and pollers, on both sides) is in the baseline.
  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  channel_args.SetMaxReceiveMessageSize(-1);
  auto warm = EchoTest::NewStub(grpc::CreateCustomChannel(target, creds, channel_args));
  call(warm.get(), 1 << 20);
  const Usage server_before = Measure(server.pid()), client_before = Measure(::getpid());

  std::vector<std::unique_ptr<EchoTest::Stub>> stubs;
  for (int i = 0; i < connections; ++i) {
    stubs.push_back(EchoTest::NewStub(grpc::CreateCustomChannel(target, creds, channel_args)));
    call(stubs.back().get(), bytes);
  }
  if (then_bytes > 0) {
    for (auto& stub : stubs) call(stub.get(), then_bytes);
  }
  const Usage server_busy = Measure(server.pid()), client_busy = Measure(::getpid());
  std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));
  const Usage server_idle = Measure(server.pid()), client_idle = Measure(::getpid());
  const char* t = transport.c_str();
  Print(t, "server", "after calls", server_before, server_busy, connections);
  Print(t, "client", "after calls", client_before, client_busy, connections);
  Print(t, "server", "idle", server_before, server_idle, connections);
  Print(t, "client", "idle", client_before, client_idle, connections);
  std::printf(
      "%-4s both   idle         per connection: Pss %8.1f KiB\n", t,
      (server_idle.pss_kib - server_before.pss_kib + client_idle.pss_kib - client_before.pss_kib) /
          connections);
  ::unlink(uds.c_str());
  return 0;
}
