// What clients can make a gRPC server's shm listener hold, against
// echo_test_server in its own process: a flood of clients that connect and
// say nothing (bounded by max_pending_handshakes), a process out of
// descriptors (the listener sheds instead of spinning), and a client that
// asks for a doorbell the server cannot poll. The server's descriptors are
// counted from /proc/<pid>/fd; honest calls must get through afterwards.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "plugin/ipc/connection.h"
#include "plugin/platform/platform.h"
#include "server_process.h"
#include "test_address.h"

namespace grpc_shm {
namespace {

using platform::UniqueHandle;
using test::EchoRequest;
using test::EchoResponse;
using test::EchoTest;
using testing::ServerProcess;

// Long enough that no handshake times out while a test looks: what frees
// a slot in these tests is always a client hanging up.
constexpr int kLongHandshakeMs = 60000;
constexpr int kWaitMs = 15000;

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return "grpc_shm_limits_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
}

// Descriptors of `pid`, eventfds aside: a handshake holds none (its socket
// and timer), while gRPC's poll engine (the portable build's) caches a
// wake-up eventfd for each thread that polls, as its pools grow under load.
int CountFdsOf(pid_t pid) {
  const std::string dir_name = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(dir_name.c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char target[64];
    const ssize_t len =
        ::readlink((dir_name + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
    if (len > 0 && std::string(target, len) == "anon_inode:[eventfd]") continue;
    ++n;
  }
  ::closedir(dir);
  return n;
}

int CountLinesContaining(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Clients that connect to the listener and never say a word.
std::vector<UniqueHandle> ConnectSilentClients(const std::string& ipc_address, int count) {
  std::vector<UniqueHandle> clients;
  for (int i = 0; i < count; ++i) {
    UniqueHandle socket;
    ipc::Status s = platform::ConnectLocal(ipc_address, kWaitMs, &socket);
    EXPECT_TRUE(s.ok()) << s.ToString();
    clients.push_back(std::move(socket));
  }
  return clients;
}

// An honest call on a new channel. wait_for_ready: the server may still be
// dropping the flood when the channel first connects, and gRPC's reconnect
// backoff is what brings the call through once a slot is free.
grpc::Status HonestCall(const std::string& target) {
  auto stub = EchoTest::NewStub(grpc::CreateChannel(target, ChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  EchoRequest req;
  req.set_message("honest");
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  if (status.ok() && resp.message() != "honest") {
    return grpc::Status(grpc::StatusCode::INTERNAL, "wrong echo: " + resp.message());
  }
  return status;
}

TEST(ListenerLimits, SilentClientsBeyondThePendingLimitAreHungUpOnAndCostNothing) {
  constexpr int kLimit = 8;
  constexpr int kSilent = 100;
  // What one pending handshake may hold: its socket, its timer, and what
  // the poller keeps to watch them; without timerfd (portable POSIX) the
  // timer thread holds the other end of the timer's socketpair as well.
#ifdef GRPC_SHM_PORTABLE_POSIX
  constexpr int kFdsPerHandshake = 5;
#else
  constexpr int kFdsPerHandshake = 4;
#endif
  const std::string name = UniqueName();
  ServerProcess server({GRPC_SHM_ECHO_SERVER, "--shm=" + grpc_shm::testing::TestShmTarget(name),
                        "--max-pending-handshakes=" + std::to_string(kLimit),
                        "--handshake-timeout-ms=" + std::to_string(kLongHandshakeMs)});
  ASSERT_TRUE(server.ok());
  const int fds_before = CountFdsOf(server.pid());
  ASSERT_GT(fds_before, 0);

  std::vector<UniqueHandle> silent =
      ConnectSilentClients(grpc_shm::testing::TestIpcAddress(name), kSilent);
  // The listener takes clients in order: the first kLimit wait in their
  // handshakes, every later one is hung up on at once.
  for (int i = kLimit; i < kSilent; ++i) {
    ipc::Status s = platform::WaitForHangup(silent[i].get(), kWaitMs);
    ASSERT_EQ(s.code(), ipc::StatusCode::kPeerClosed)
        << "silent client " << i << " beyond the limit was not hung up on: " << s.ToString();
  }
  EXPECT_LE(CountFdsOf(server.pid()), fds_before + kFdsPerHandshake * kLimit + 2);
  for (int i = 0; i < kLimit; ++i) {
    EXPECT_EQ(platform::CheckAlive(silent[i].get()).code(), ipc::StatusCode::kOk)
        << "client " << i << " within the limit keeps its handshake";
  }

  silent.clear();  // the pending handshakes end: their slots are free
  grpc::Status status = HonestCall(grpc_shm::testing::TestShmTarget(name));
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
}

// Out of descriptors, accept fails with EMFILE while the connection stays
// in the backlog, so a level-triggered poller would call the listener again
// at once, forever, logging the failure each time, and the client would
// wait for nothing. The listener sheds the connection instead (a spare
// descriptor lets it take the client off the backlog and hang up): the
// client learns at once, the shortage is logged once (by accept or by the
// handshake that found no descriptor for its timer), and service resumes
// when descriptors are free.
TEST(ListenerLimits, OutOfDescriptorsShedsClientsInsteadOfSpinning) {
  constexpr int kClients = 20;
  const std::string name = UniqueName();
  const std::string log = "/tmp/" + name + ".log";
  ServerProcess server({GRPC_SHM_ECHO_SERVER, "--shm=" + grpc_shm::testing::TestShmTarget(name),
                        "--nofile-headroom=64",
                        "--handshake-timeout-ms=" + std::to_string(kLongHandshakeMs),
                        "--stderr=" + log});
  ASSERT_TRUE(server.ok());
  server.Send("fill-descriptors");
  ASSERT_EQ(server.ReadLineStartingWith("FILLED").rfind("FILLED", 0), 0u);

  std::vector<UniqueHandle> clients =
      ConnectSilentClients(grpc_shm::testing::TestIpcAddress(name), kClients);
  for (int i = 0; i < kClients; ++i) {
    ipc::Status s = platform::WaitForHangup(clients[i].get(), kWaitMs);
    ASSERT_EQ(s.code(), ipc::StatusCode::kPeerClosed)
        << "client " << i << " was neither served nor shed: " << s.ToString();
  }
  // Logged once for the whole shortage: by accept, or by whatever in a
  // client's handshake needed a descriptor first (its timer, when accept
  // still found one), whichever failed first.
  EXPECT_EQ(CountLinesContaining(log, "Too many open files"), 1) << ReadFile(log);
  EXPECT_EQ(CountLinesContaining(log, "on " + grpc_shm::testing::TestIpcAddress(name)), 1)
      << ReadFile(log);

  server.Send("free-descriptors");
  ASSERT_EQ(server.ReadLineStartingWith("FREED"), "FREED");
  grpc::Status status = HonestCall(grpc_shm::testing::TestShmTarget(name));
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  ::unlink(log.c_str());
}

// The gRPC server waits for its connections with a poller and cannot wait
// on a futex: a client asking for one is refused at the handshake, by name,
// instead of being accepted and never heard.
TEST(ListenerLimits, FutexDoorbellIsRefusedByTheGrpcServerByName) {
  const std::string name = UniqueName();
  ServerProcess server({GRPC_SHM_ECHO_SERVER, "--shm=" + grpc_shm::testing::TestShmTarget(name)});
  ASSERT_TRUE(server.ok());
  ipc::ConnectionOptions options = ipc::DefaultConnectionOptions();
  options.doorbell = platform::DoorbellKind::kFutex;
  std::unique_ptr<ipc::Connection> connection;
  ipc::Status s = ipc::Connect(grpc_shm::testing::TestIpcAddress(name), options, &connection);
  EXPECT_EQ(s.code(), ipc::StatusCode::kProtocol) << s.ToString();
  EXPECT_NE(s.message().find("futex doorbells cannot be polled"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(connection, nullptr);
  grpc::Status status = HonestCall(grpc_shm::testing::TestShmTarget(name));
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
}

}  // namespace
}  // namespace grpc_shm
