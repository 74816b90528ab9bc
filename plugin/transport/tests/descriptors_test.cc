// What an established shm connection costs in descriptors, on both sides,
// against echo_test_server in its own process: the handshake socket is the
// connection's doorbell in both directions and its liveness signal, the
// segment's descriptor is closed once mapped, and the poller watches one
// duplicate of the socket. So N connections cost at most 2N descriptors
// (plus a few that do not grow with N), as TCP costs N. The counts come from
// /proc/<pid>/fd.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "server_process.h"

namespace grpc_shm {
namespace {

using test::EchoRequest;
using test::EchoResponse;
using test::EchoTest;
using testing::ServerProcess;

int CountFdsOf(pid_t pid) {
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - (pid == ::getpid() ? 1 : 0);  // our own directory stream
}

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return "grpc_shm_descriptors_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
}

// A unary call on its own channel (so on its own connection), which stays
// open afterwards.
struct OpenConnection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<EchoTest::Stub> stub;
};

::testing::AssertionResult CallOnNewConnection(const std::string& target,
                                               std::vector<OpenConnection>* open) {
  grpc::ChannelArguments args;
  // One connection per channel, never shared by gRPC's subchannel pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  OpenConnection c;
  c.channel = grpc::CreateCustomChannel(target, ChannelCredentials(), args);
  c.stub = EchoTest::NewStub(c.channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  EchoRequest req;
  req.set_message(std::string(64 << 10, 'd'));  // more than a doorbell's worth of frames
  EchoResponse resp;
  grpc::Status status = c.stub->Unary(&ctx, req, &resp);
  if (!status.ok()) {
    return ::testing::AssertionFailure()
           << "call " << open->size() << " failed: " << status.error_code() << " "
           << status.error_message();
  }
  open->push_back(std::move(c));
  return ::testing::AssertionSuccess();
}

TEST(Descriptors, EachShmConnectionCostsAtMostTwoDescriptorsOnEitherSide) {
  constexpr int kConnections = 40;
  // Descriptors that do not grow with the number of connections (gRPC's
  // own, started lazily by the first few connections on either side).
  constexpr int kConstant = 10;
  const std::string target = "shm:@" + UniqueName();
  ServerProcess server({GRPC_SHM_ECHO_SERVER, "--shm=" + target});
  ASSERT_TRUE(server.ok());

  std::vector<OpenConnection> open;
  // The first connection starts what every later one shares (pollers,
  // threads' wake-up descriptors): counted from after it.
  ASSERT_TRUE(CallOnNewConnection(target, &open));
  const int server_before = CountFdsOf(server.pid());
  const int client_before = CountFdsOf(::getpid());
  ASSERT_GT(server_before, 0);
  ASSERT_GT(client_before, 0);

  for (int i = 0; i < kConnections; ++i) ASSERT_TRUE(CallOnNewConnection(target, &open));

  const int server_grew = CountFdsOf(server.pid()) - server_before;
  const int client_grew = CountFdsOf(::getpid()) - client_before;
  EXPECT_LE(server_grew, 2 * kConnections + kConstant)
      << "the server holds " << server_grew << " more descriptors for " << kConnections
      << " more connections (ls -l /proc/" << server.pid() << "/fd)";
  EXPECT_LE(client_grew, 2 * kConnections + kConstant)
      << "the client holds " << client_grew << " more descriptors for " << kConnections
      << " more connections";
  // Not vacuous: each connection holds at least its socket on each side.
  EXPECT_GE(server_grew, kConnections);
  EXPECT_GE(client_grew, kConnections);
}

}  // namespace
}  // namespace grpc_shm
