// Connection and Listener between real processes with the platform's default
// backend, written once for every platform: the peer is this binary started
// again (child_process.h), not a fork(), so the same tests run on Windows
// (under wine in CI) and on POSIX systems. connection_test.cc covers every
// POSIX backend in more depth with fork().
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/handshake_format.h"
#include "plugin/ipc/tests/checked_traffic.h"
#include "plugin/ipc/tests/child_process.h"

namespace grpc_shm {
namespace ipc {
namespace {

using testing::ChildProcess;
using testing::Exchange;
using testing::FillFor;
using testing::SizeFor;
using testing::TellParent;
using testing::TestAddress;
using Clock = std::chrono::steady_clock;

Clock::time_point In(std::chrono::milliseconds ms) { return Clock::now() + ms; }
constexpr std::chrono::seconds kLong(60);

uint64_t StressMessageCount() {
  // Both directions together. Wine is slow: the default is modest.
  const char* env = std::getenv("GRPC_SHM_STRESS_MESSAGES");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 200'000;
}

Status WriteOne(Connection& c, uint32_t id, const std::string& payload) {
  FrameHeader h{};
  h.stream_id = id;
  h.type = kFrameMessage;
  ConstByteSpan part{reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
  return c.WriteFrame(h, &part, 1, In(kLong));
}

Status ReadOne(Connection& c, uint32_t* id, std::string* payload) {
  FrameView f;
  Status s = c.ReadFrame(&f, In(kLong));
  if (!s.ok()) return s;
  *id = f.header.stream_id;
  payload->resize(f.payload_size());
  f.CopyPayloadTo(reinterpret_cast<uint8_t*>(&(*payload)[0]));
  c.Consume();
  return Status::Ok();
}

std::unique_ptr<Connection> ConnectOrSay(const std::string& address, uint32_t ring_bytes = 0) {
  ConnectionOptions o = DefaultConnectionOptions();
  if (ring_bytes != 0) o.ring_bytes = ring_bytes;
  std::unique_ptr<Connection> c;
  Status s = Connect(address, o, &c);
  if (!s.ok()) std::fprintf(stderr, "child: connect: %s\n", s.ToString().c_str());
  return c;
}

// ---- child roles

// Echoes every frame back until the server hangs up.
GRPC_SHM_CHILD_ROLE(echo) {
  auto c = ConnectOrSay(args.at(0));
  if (!c) return 1;
  for (;;) {
    uint32_t id;
    std::string payload;
    Status s = ReadOne(*c, &id, &payload);
    if (s.code() == StatusCode::kPeerClosed) return 0;
    if (!s.ok() || !WriteOne(*c, id, payload).ok()) return 2;
  }
}

// Both directions at once, `args[1]` frames each way.
GRPC_SHM_CHILD_ROLE(stress) {
  auto c = ConnectOrSay(args.at(0), 1 << 16);
  if (!c) return 1;
  const std::string err = Exchange(*c, std::strtoull(args.at(1).c_str(), nullptr, 10));
  if (!err.empty()) std::fprintf(stderr, "child: %s\n", err.c_str());
  return err.empty() ? 0 : 2;
}

// Connects with a 4 KiB ring, sends one frame, says so and then never reads:
// waits to be killed.
GRPC_SHM_CHILD_ROLE(send_one_and_hang) {
  auto c = ConnectOrSay(args.at(0), 4096);
  if (!c || !WriteOne(*c, 7, "last words").ok()) return 1;
  TellParent("sent");
  platform::WaitForHangup(c->liveness_handle(), -1);
  return 0;
}

// The server side in the child: listens, says so, accepts one client, sends
// it one frame and waits to be killed.
GRPC_SHM_CHILD_ROLE(serve_one_and_hang) {
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(args.at(0), Listener::Options{}, &listener);
  if (!s.ok()) {
    std::fprintf(stderr, "child: listen: %s\n", s.ToString().c_str());
    return 1;
  }
  TellParent("listening");
  std::unique_ptr<Connection> c;
  if (!listener->Accept(&c, 60000).ok() || !WriteOne(*c, 9, "from the server").ok()) return 2;
  platform::WaitForHangup(c->liveness_handle(), -1);
  return 0;
}

// Reports the pid the platform says the server has.
GRPC_SHM_CHILD_ROLE(report_peer) {
  auto c = ConnectOrSay(args.at(0));
  if (!c) return 1;
  TellParent("server " + std::to_string(static_cast<long>(c->peer().pid)));
  platform::WaitForHangup(c->liveness_handle(), 60000);
  return 0;
}

// ---- tests

class CrossProcessTest : public ::testing::Test {
 protected:
  void Listen(Listener::Options lo = {}) {
    address_ = TestAddress("xproc");
    Status s = Listener::Listen(address_, lo, &listener_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::unique_ptr<Connection> Accept() {
    std::unique_ptr<Connection> c;
    Status s = listener_->Accept(&c, 60000);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  std::string address_;
  std::unique_ptr<Listener> listener_;
};

TEST_F(CrossProcessTest, PingPongRoundTripsEveryFrameIntact) {
  ASSERT_NO_FATAL_FAILURE(Listen());
  ChildProcess child;
  ASSERT_TRUE(child.Start("echo", {address_}));
  auto c = Accept();
  ASSERT_TRUE(c);
  for (uint32_t i = 0; i < 2000; ++i) {
    std::string payload(SizeFor(i), '\0');
    FillFor(i, reinterpret_cast<uint8_t*>(&payload[0]), payload.size());
    ASSERT_TRUE(WriteOne(*c, i, payload).ok());
    uint32_t id = 0;
    std::string back;
    Status s = ReadOne(*c, &id, &back);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(id, i);
    ASSERT_TRUE(back == payload) << "frame " << i;
  }
  c->Close();  // the child sees the hang-up and exits 0
  EXPECT_EQ(child.Wait(), 0);
}

// Frames of random sizes with checksums, both directions at once, a 64 KiB
// ring so back-pressure and wrap-around happen constantly.
TEST_F(CrossProcessTest, StressBothDirectionsWithChecksums) {
  const uint64_t per_direction = StressMessageCount() / 2;
  ASSERT_NO_FATAL_FAILURE(Listen());
  ChildProcess child;
  ASSERT_TRUE(child.Start("stress", {address_, std::to_string(per_direction)}));
  auto c = Accept();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->receive_ring_bytes(), 1u << 16);
  EXPECT_EQ(Exchange(*c, per_direction), "");
  EXPECT_EQ(child.Wait(), 0);
}

TEST_F(CrossProcessTest, KilledClientIsSeenAsPeerClosedAfterItsLastFrame) {
  ASSERT_NO_FATAL_FAILURE(Listen());
  ChildProcess child;
  ASSERT_TRUE(child.Start("send_one_and_hang", {address_}));
  auto c = Accept();
  ASSERT_TRUE(c);
  ASSERT_TRUE(child.WaitForLine("sent"));
  child.Kill();
  EXPECT_EQ(child.Wait(), testing::kKilledExitCode);
  // Published before the death: still delivered.
  uint32_t id = 0;
  std::string payload;
  ASSERT_TRUE(ReadOne(*c, &id, &payload).ok());
  EXPECT_EQ(id, 7u);
  EXPECT_EQ(payload, "last words");
  EXPECT_EQ(ReadOne(*c, &id, &payload).code(), StatusCode::kPeerClosed);
  EXPECT_EQ(c->CheckAlive().code(), StatusCode::kPeerClosed);
}

TEST_F(CrossProcessTest, WriterBlockedOnAFullRingSeesTheReaderDie) {
  ASSERT_NO_FATAL_FAILURE(Listen());
  ChildProcess child;
  ASSERT_TRUE(child.Start("send_one_and_hang", {address_}));
  auto c = Accept();
  ASSERT_TRUE(c);
  ASSERT_TRUE(child.WaitForLine("sent"));
  // The child never reads: fill its 4 KiB ring, then kill it while a
  // WriteFrame waits for space.
  const std::string chunk(512, 'x');
  FrameHeader h{};
  h.type = kFrameMessage;
  ConstByteSpan part{reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()};
  while (c->TryWriteFrame(h, &part, 1).ok()) {
  }
  std::thread killer([&] {
    child.Kill();
    child.Wait();
  });
  const Status s = c->WriteFrame(h, &part, 1, In(kLong));
  killer.join();
  EXPECT_EQ(s.code(), StatusCode::kPeerClosed) << s.ToString();
}

TEST_F(CrossProcessTest, KilledServerIsSeenAsPeerClosedByTheClient) {
  const std::string address = TestAddress("xserver");
  ChildProcess server;
  ASSERT_TRUE(server.Start("serve_one_and_hang", {address}));
  ASSERT_TRUE(server.WaitForLine("listening"));
  std::unique_ptr<Connection> c;
  Status s = Connect(address, DefaultConnectionOptions(), &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c->peer().pid, server.pid());
  uint32_t id = 0;
  std::string payload;
  ASSERT_TRUE(ReadOne(*c, &id, &payload).ok());
  EXPECT_EQ(payload, "from the server");
  server.Kill();
  EXPECT_EQ(server.Wait(), testing::kKilledExitCode);
  EXPECT_EQ(ReadOne(*c, &id, &payload).code(), StatusCode::kPeerClosed);
}

TEST_F(CrossProcessTest, EachSideKnowsTheOthersProcess) {
  ASSERT_NO_FATAL_FAILURE(Listen());
  ChildProcess child;
  ASSERT_TRUE(child.Start("report_peer", {address_}));
  auto c = Accept();
  ASSERT_TRUE(c);
  EXPECT_TRUE(child.WaitForLine("server " + std::to_string(testing::CurrentProcessId())));
  EXPECT_EQ(c->peer().pid, child.pid());
#ifdef _WIN32
  EXPECT_FALSE(c->peer().user_sid.empty());
#endif
  c->Close();
  EXPECT_EQ(child.Wait(), 0);
}

// ---- hostile clients (raw platform calls, no Connect)

struct RawClient {
  explicit RawClient(const std::string& address) {
    Status s = platform::ConnectLocal(address, 10000, &socket);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  platform::UniqueHandle socket;
};

ClientHello GoodHello() {
  const ConnectionOptions o = DefaultConnectionOptions();
  ClientHello hello{};
  hello.magic = kHelloMagic;
  hello.version = kProtocolVersion;
  hello.memory_kind = static_cast<uint32_t>(o.memory);
  hello.doorbell_kind = static_cast<uint32_t>(o.doorbell);
  hello.c2s_bytes = hello.s2c_bytes = 4096;
  return hello;
}

// Sends `hello` and returns the server's answer (its status and message).
ServerHello Answer(RawClient& client, const ClientHello& hello) {
  EXPECT_TRUE(platform::SendMessage(client.socket.get(), &hello, sizeof(hello), {}, 10000).ok());
  ServerHello reply{};
  std::vector<platform::UniqueHandle> handles;
  Status s =
      platform::ReceiveMessage(client.socket.get(), &reply, sizeof(reply), 3, &handles, 10000);
  EXPECT_TRUE(s.ok()) << s.ToString();
  reply.message[sizeof(reply.message) - 1] = '\0';
  return reply;
}

TEST_F(CrossProcessTest, ClientWithBadMagicIsRefusedWithAReason) {
  ASSERT_NO_FATAL_FAILURE(Listen());
  RawClient client(address_);
  ClientHello hello = GoodHello();
  hello.magic = 0x12345678;
  std::thread peer([&] {
    const ServerHello reply = Answer(client, hello);
    EXPECT_NE(reply.status, 0u);
    EXPECT_NE(std::string(reply.message).find("bad magic"), std::string::npos) << reply.message;
  });
  std::unique_ptr<Connection> c;
  EXPECT_EQ(listener_->Accept(&c, 10000).code(), StatusCode::kProtocol);
  peer.join();
}

TEST_F(CrossProcessTest, ClientAskingForAnUnsupportedBackendIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Listen());
  RawClient client(address_);
  ClientHello hello = GoodHello();
  hello.memory_kind = 77;
  std::thread peer([&] { EXPECT_NE(Answer(client, hello).status, 0u); });
  std::unique_ptr<Connection> c;
  EXPECT_EQ(listener_->Accept(&c, 10000).code(), StatusCode::kProtocol);
  peer.join();
}

TEST_F(CrossProcessTest, SilentClientTimesOutTheHandshake) {
  Listener::Options lo;
  lo.handshake_timeout = std::chrono::milliseconds(200);
  ASSERT_NO_FATAL_FAILURE(Listen(lo));
  RawClient client(address_);  // connects and says nothing
  std::unique_ptr<Connection> c;
  EXPECT_EQ(listener_->Accept(&c, 10000).code(), StatusCode::kTimeout);
}

TEST_F(CrossProcessTest, ClientThatHangsUpMidHelloFailsOnlyItsHandshake) {
  ASSERT_NO_FATAL_FAILURE(Listen());
  {
    RawClient client(address_);
    // Half a hello: the platform frames messages, so send a short one.
    const char half[3] = {1, 2, 3};
    ASSERT_TRUE(platform::SendMessage(client.socket.get(), half, sizeof(half), {}, 10000).ok());
  }
  std::unique_ptr<Connection> c;
  const Status s = listener_->Accept(&c, 10000);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.code(), StatusCode::kTimeout) << s.ToString();
  // The listener still serves the next client.
  ChildProcess child;
  ASSERT_TRUE(child.Start("echo", {address_}));
  auto good = Accept();
  ASSERT_TRUE(good);
  good->Close();
  EXPECT_EQ(child.Wait(), 0);
}

// ---- hostile servers (raw platform calls, no Listener)

// Accepts one client on `address`, reads its hello and answers with a reply
// that claims `ring_bytes` per direction, sending a segment of
// `segment_bytes` and `extra` more handles than the protocol carries.
void HostileServer(platform::NativeHandle listener, uint32_t ring_bytes, size_t segment_bytes,
                   int extra) {
  platform::UniqueHandle s;
  ASSERT_TRUE(platform::WaitReadable(listener, 10000).ok());
  ASSERT_TRUE(platform::AcceptLocal(listener, &s).ok());
  ClientHello hello{};
  std::vector<platform::UniqueHandle> none;
  ASSERT_TRUE(platform::ReceiveMessage(s.get(), &hello, sizeof(hello), 0, &none, 10000).ok());
  platform::UniqueHandle segment;
  platform::MappedRegion mapping;
  ASSERT_TRUE(
      platform::CreateSharedMemory(static_cast<platform::SharedMemoryKind>(hello.memory_kind),
                                   segment_bytes, &segment, &mapping)
          .ok());
  std::vector<platform::NativeHandle> handles = {segment.get()};
  std::vector<platform::DoorbellHandles> bells(2 + extra);
#ifdef _WIN32
  const int doorbell_handles = 2;  // event doorbells travel as handles
#else
  const int doorbell_handles = 0;  // socket doorbells: the connection's own socket
#endif
  for (int i = 0; i < doorbell_handles + extra; ++i) {
    ASSERT_TRUE(
        platform::CreateSharedMemory(static_cast<platform::SharedMemoryKind>(hello.memory_kind),
                                     4096, &bells[i].wait, &mapping)
            .ok());
    handles.push_back(bells[i].wait.get());
  }
  ServerHello reply{};
  reply.magic = kHelloMagic;
  reply.version = kProtocolVersion;
  reply.memory_kind = hello.memory_kind;
  reply.doorbell_kind = hello.doorbell_kind;
  reply.c2s_bytes = reply.s2c_bytes = ring_bytes;
  reply.num_handles = static_cast<uint32_t>(handles.size());
  // The client may refuse before reading it all; either way it hangs up.
  (void)platform::SendMessage(s.get(), &reply, sizeof(reply), handles, 10000);
  EXPECT_EQ(platform::WaitForHangup(s.get(), 10000).code(), StatusCode::kPeerClosed);
}

TEST_F(CrossProcessTest, ServerWhoseSegmentIsSmallerThanAnnouncedIsRefused) {
  const std::string address = TestAddress("smallseg");
  platform::UniqueHandle listener;
  ASSERT_TRUE(platform::ListenLocal(address, 8, &listener).ok());
  std::thread server([&] { HostileServer(listener.get(), 1 << 16, 4096, 0); });
  std::unique_ptr<Connection> c;
  const Status s = Connect(address, DefaultConnectionOptions(), &c);
  EXPECT_FALSE(s.ok());
  c.reset();
  server.join();
}

TEST_F(CrossProcessTest, ServerThatSendsMoreHandlesThanTheProtocolCarriesIsRefused) {
  const std::string address = TestAddress("manyhandles");
  platform::UniqueHandle listener;
  ASSERT_TRUE(platform::ListenLocal(address, 8, &listener).ok());
  std::thread server([&] { HostileServer(listener.get(), 4096, 1 << 20, 3); });
  std::unique_ptr<Connection> c;
  const Status s = Connect(address, DefaultConnectionOptions(), &c);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kProtocol) << s.ToString();
  server.join();
}

}  // namespace
}  // namespace ipc
}  // namespace grpc_shm

int main(int argc, char** argv) {
  int exit_code = 0;
  if (grpc_shm::ipc::testing::RunChildRoleIfAsked(argc, argv, &exit_code)) return exit_code;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
