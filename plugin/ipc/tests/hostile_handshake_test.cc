// Hostile clients against the server half of the handshake and the
// listener: hellos that lie, stall, close early or carry descriptors, ring
// sizes out of range, and backends a listener must refuse (HostileHandshake,
// DefaultListener); which files a listener may remove (ListenerSocketFile);
// and which descriptors a fork + exec elsewhere in the process may inherit
// (ListenerCloexec). Each refusal has a clear status and message, leaks no
// descriptor, and the listener serves the next well-behaved client.
//
// Where what the server holds is counted, hostile clients run in forked
// children (the child's own descriptors must not blur the count). No sleeps
// are used for synchronisation: pipes, hang-ups and deadlines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/ipc/handshake_format.h"
#include "plugin/ipc/segment_layout.h"
#include "plugin/ipc/status.h"
#include "plugin/ipc/tests/hostile_peer.h"
#include "plugin/ipc/tests/test_util.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace ipc {
namespace testing {
namespace {

// A listener left at Listener's defaults (only the safe backends), its
// handshakes bounded by kIoTimeoutMs: unlike MakeListener(address), which
// admits every backend so that each can be attacked.
std::unique_ptr<Listener> MakeDefaultListener(const std::string& address,
                                              Listener::Options options = Listener::Options()) {
  options.handshake_timeout = milliseconds(kIoTimeoutMs);
  return MakeListener(address, options);
}

std::string FdTarget(int fd) {
  char buf[256];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

std::unique_ptr<ServerHandshake> AcceptOne(Listener* listener) {
  UniqueHandle socket;
  for (;;) {
    Status s = listener->AcceptSocket(&socket);
    if (s.ok()) return listener->BeginHandshake(std::move(socket));
    if (s.code() != StatusCode::kWouldBlock) {
      ADD_FAILURE() << s.ToString();
      return nullptr;
    }
    if (!platform::WaitReadable(listener->listen_handle(), kIoTimeoutMs).ok()) {
      ADD_FAILURE() << "no client came";
      return nullptr;
    }
  }
}

// Sends bytes [offset, offset + size) of `data` with `fds` attached, in one
// sendmsg (no size limit on the descriptors, unlike platform::SendMessage).
bool SendWithFds(int socket, const void* data, size_t size, const std::vector<int>& fds) {
  iovec iov = {const_cast<void*>(data), size};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(size);
}

// Receives the refusal the server sends a bad client.
void ExpectRefusal(RawClient* raw, StatusCode code, const std::string& substring) {
  ServerHello reply{};
  std::vector<UniqueHandle> handles;
  Status s =
      platform::ReceiveMessage(raw->socket.get(), &reply, sizeof(reply), 3, &handles, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(reply.magic, kHelloMagic);
  EXPECT_EQ(reply.status, static_cast<uint32_t>(code));
  EXPECT_TRUE(handles.empty());
  ASSERT_NE(std::memchr(reply.message, '\0', sizeof(reply.message)), nullptr);
  EXPECT_NE(std::string(reply.message).find(substring), std::string::npos) << reply.message;
}

// ================================================================ handshake

TEST(HostileHandshake, GarbageHelloIsRefusedWithProtocolError) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  std::mt19937 rng(1234);
  for (int round = 0; round < 20; ++round) {
    RawClient raw;
    uint8_t garbage[sizeof(ClientHello)];
    for (auto& b : garbage) b = static_cast<uint8_t>(rng());
    if (std::memcmp(garbage, &kHelloMagic, 4) == 0) garbage[0] ^= 1;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &raw.socket).ok());
    ASSERT_TRUE(
        platform::SendMessage(raw.socket.get(), garbage, sizeof(garbage), {}, kIoTimeoutMs).ok());
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "not a grpc-shm client (bad magic)");
    EXPECT_EQ(server, nullptr);
    ExpectRefusal(&raw, StatusCode::kProtocol, "bad magic");
  }
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, WrongVersionIsRefused) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  for (uint32_t version : {0u, kProtocolVersion - 1, kProtocolVersion + 1, 0xffffffffu}) {
    RawClient raw;
    ClientHello hello = GoodHello();
    hello.version = version;
    ASSERT_TRUE(RawSendHello(address, hello, &raw, true).ok());
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "unsupported protocol version " + std::to_string(version));
    ExpectRefusal(&raw, StatusCode::kProtocol,
                  "unsupported protocol version " + std::to_string(version));
  }
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, UnsupportedMemoryOrDoorbellKindIsRefused) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  const std::pair<uint32_t, uint32_t> kinds[] = {{0, 1}, {3, 1}, {0xffffffffu, 1},
                                                 {1, 0}, {1, 4}, {2, 0x80000000u}};
  for (const auto& k : kinds) {
    RawClient raw;
    ClientHello hello = GoodHello();
    hello.memory_kind = k.first;
    hello.doorbell_kind = k.second;
    ASSERT_TRUE(RawSendHello(address, hello, &raw, true).ok());
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "unsupported shared memory or doorbell kind");
    ExpectRefusal(&raw, StatusCode::kProtocol, "unsupported shared memory or doorbell kind");
  }
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, ClientThatClosesAtOnceIsPeerClosed) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  {
    UniqueHandle s;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &s).ok());
  }
  std::unique_ptr<Connection> server;
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kPeerClosed,
                "peer closed the socket during the handshake");
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, ShortHelloThenCloseIsPeerClosed) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  {
    UniqueHandle s;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &s).ok());
    ClientHello hello = GoodHello();
    ASSERT_TRUE(platform::SendMessage(s.get(), &hello, 10, {}, kIoTimeoutMs).ok());
  }
  std::unique_ptr<Connection> server;
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kPeerClosed,
                "peer closed the socket mid-message");
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, SilentClientTimesOutAndListenerAcceptsNextClient) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address, milliseconds(200));
  UniqueHandle silent;  // stays connected, says nothing
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &silent).ok());
  std::unique_ptr<Connection> server;
  // The handshake's own timeout (200 ms) ends it, not Accept's (5 s): the
  // message says which.
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kTimeout,
                "client handshake: timed out waiting for the client");
  // A client that sends half a hello and stalls is bounded the same way.
  UniqueHandle stalled;
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &stalled).ok());
  ClientHello hello = GoodHello();
  ASSERT_TRUE(platform::SendMessage(stalled.get(), &hello, 20, {}, kIoTimeoutMs).ok());
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kTimeout, "timed out");
  // A client that never confirms the handshake (no ClientReady).
  RawClient unconfirmed;
  ASSERT_TRUE(RawSendHello(address, GoodHello(), &unconfirmed, false).ok());
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kTimeout,
                "client did not confirm the handshake");
  ExpectListenerServesClient(listener.get());
}

// The poller's handshake: Advance() never waits, consumes what has arrived
// (so a level-triggered poller is not woken again by half a hello), and
// handshakes in different states progress independently.
TEST(HostileHandshake, PolledHandshakesNeverWaitAndProgressIndependently) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  auto accept_one = [&]() {
    UniqueHandle socket;
    for (;;) {
      Status s = listener->AcceptSocket(&socket);
      if (s.ok()) return listener->BeginHandshake(std::move(socket));
      EXPECT_EQ(s.code(), StatusCode::kWouldBlock) << s.ToString();
      EXPECT_TRUE(platform::WaitReadable(listener->listen_handle(), kIoTimeoutMs).ok());
    }
  };
  const ClientHello hello = GoodHello();
  const auto* hello_bytes = reinterpret_cast<const uint8_t*>(&hello);
  RawClient halting;  // sends half a hello, then (later) the rest
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &halting.socket).ok());
  ASSERT_TRUE(platform::SendMessage(halting.socket.get(), hello_bytes, 20, {}, kIoTimeoutMs).ok());
  auto halting_server = accept_one();
  UniqueHandle silent;
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &silent).ok());
  auto silent_server = accept_one();
  RawClient prompt;  // hello and confirmation at once
  ASSERT_TRUE(RawSendHello(address, hello, &prompt, true).ok());
  auto prompt_server = accept_one();

  std::unique_ptr<Connection> connection;
  EXPECT_EQ(halting_server->Advance(&connection).code(), StatusCode::kWouldBlock);
  EXPECT_EQ(platform::WaitReadable(halting_server->socket(), 0).code(), StatusCode::kTimeout)
      << "the half hello must have been consumed";
  EXPECT_EQ(silent_server->Advance(&connection).code(), StatusCode::kWouldBlock);
  Status s = prompt_server->Advance(&connection);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_NE(connection, nullptr);
  EXPECT_TRUE(RawReceiveReply(&prompt, SharedMemoryKind::kMemfd).ok());

  // The rest of the hello: the server answers and then waits for the
  // confirmation, again without blocking.
  ASSERT_TRUE(platform::SendMessage(halting.socket.get(), hello_bytes + 20, sizeof(hello) - 20, {},
                                    kIoTimeoutMs)
                  .ok());
  ASSERT_TRUE(platform::WaitReadable(halting_server->socket(), kIoTimeoutMs).ok());
  std::unique_ptr<Connection> halting_connection;
  EXPECT_EQ(halting_server->Advance(&halting_connection).code(), StatusCode::kWouldBlock);
  ASSERT_TRUE(RawReceiveReply(&halting, SharedMemoryKind::kMemfd).ok());
  ClientReady ready{kReadyMagic, 0};
  ASSERT_TRUE(
      platform::SendMessage(halting.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs).ok());
  ASSERT_TRUE(platform::WaitReadable(halting_server->socket(), kIoTimeoutMs).ok());
  s = halting_server->Advance(&halting_connection);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(halting_connection, nullptr);

  // The silent one is still waiting, until its own deadline.
  EXPECT_EQ(silent_server->Advance(&connection).code(), StatusCode::kWouldBlock);
  EXPECT_GT(silent_server->deadline(), Clock::now());
  EXPECT_STATUS(silent_server->TimedOut(), StatusCode::kTimeout, "client handshake: timed out");
}

TEST(HostileHandshake, BadOrFdCarryingClientReadyIsRejected) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  const int fds_before = CountOpenFds();
  {
    RawClient raw;
    ASSERT_TRUE(RawSendHello(address, GoodHello(), &raw, false).ok());
    ClientReady ready{0xdeadbeef, 0};
    ASSERT_TRUE(
        platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs).ok());
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "bad handshake confirmation");
  }
  {
    RawClient raw;
    ASSERT_TRUE(RawSendHello(address, GoodHello(), &raw, false).ok());
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ClientReady ready{kReadyMagic, 0};
    ASSERT_TRUE(
        platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {p[0], p[1]}, kIoTimeoutMs)
            .ok());
    ::close(p[0]);
    ::close(p[1]);
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "peer sent 2 descriptors, at most 0 allowed");
  }
  EXPECT_EQ(CountOpenFds(), fds_before);
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, HelloCarryingDescriptorsIsRejectedWithoutLeak) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  const int fds_before = CountOpenFds();
  {
    RawClient raw;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &raw.socket).ok());
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ClientHello hello = GoodHello();
    ASSERT_TRUE(
        platform::SendMessage(raw.socket.get(), &hello, sizeof(hello), {p[0], p[1]}, kIoTimeoutMs)
            .ok());
    ::close(p[0]);
    ::close(p[1]);
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "peer sent 2 descriptors, at most 0 allowed");
    ExpectRefusal(&raw, StatusCode::kProtocol, "descriptors");
  }
  EXPECT_EQ(CountOpenFds(), fds_before) << "descriptors sent with the hello leaked";
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, HelloCarryingTooManyDescriptorsIsRejectedWithoutLeak) {
  // More descriptors than the receive buffer holds (MSG_CTRUNC): SendMessage
  // refuses to send that many, so use sendmsg by hand.
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  const int fds_before = CountOpenFds();
  {
    RawClient raw;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &raw.socket).ok());
    constexpr int kCount = 20;
    int fds[kCount];
    for (int i = 0; i < kCount; i += 2) ASSERT_EQ(::pipe2(fds + i, O_CLOEXEC), 0);
    ClientHello hello = GoodHello();
    iovec iov = {&hello, sizeof(hello)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))];
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(fds));
    std::memcpy(CMSG_DATA(c), fds, sizeof(fds));
    ASSERT_EQ(::sendmsg(raw.socket.get(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(hello)));
    for (int fd : fds) ::close(fd);
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "more descriptors than allowed");
    ExpectRefusal(&raw, StatusCode::kProtocol, "descriptors");
  }
  EXPECT_EQ(CountOpenFds(), fds_before) << "descriptors sent with the hello leaked";
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, AbsurdRingSizesAreClampedToValidPowersOfTwo) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  auto small_listener_address = NewAddress();
  auto small_listener = MakeListener(small_listener_address, milliseconds(2000), 8192);
  struct Case {
    Listener* listener;
    const std::string* address;
    uint32_t c2s, s2c;
    uint32_t want_c2s, want_s2c;
  };
  const Case cases[] = {
      {listener.get(), &address, 0, 3, kMinRingBytes, kMinRingBytes},
      {listener.get(), &address, 1u << 31, 0xffffffffu, kMaxRingBytes, kMaxRingBytes},
      {listener.get(), &address, 5000, 65537, 4096, 65536},
      {listener.get(), &address, 4095, 1, kMinRingBytes, kMinRingBytes},
      {small_listener.get(), &small_listener_address, 1u << 20, 12345, 8192, 8192},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("c2s=" + std::to_string(c.c2s) + " s2c=" + std::to_string(c.s2c));
    RawClient raw;
    ClientHello hello = GoodHello();
    hello.c2s_bytes = c.c2s;
    hello.s2c_bytes = c.s2c;
    ASSERT_TRUE(RawSendHello(*c.address, hello, &raw, true).ok());
    std::unique_ptr<Connection> server;
    Status s = c.listener->Accept(&server, kIoTimeoutMs);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = RawReceiveReply(&raw, SharedMemoryKind::kMemfd);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(raw.reply.c2s_bytes, c.want_c2s);
    EXPECT_EQ(raw.reply.s2c_bytes, c.want_s2c);
    EXPECT_TRUE(IsValidRingSize(raw.reply.c2s_bytes));
    EXPECT_TRUE(IsValidRingSize(raw.reply.s2c_bytes));
    EXPECT_EQ(server->receive_ring_bytes(), c.want_c2s);
    EXPECT_EQ(server->send_ring_bytes(), c.want_s2c);
    auto* header = reinterpret_cast<SegmentHeader*>(raw.segment.data());
    EXPECT_EQ(header->magic, kSegmentMagic);
    // The connection works both ways, frames that wrap included.
    uint64_t pos = 0;
    for (uint32_t i = 0; i < 3; ++i) {
      const auto payload = Pattern(std::min<size_t>(c.want_c2s / 2 - 40, 100000), i);
      RawPutFrame(raw.c2s_data(), c.want_c2s, &pos,
                  MessageHeader(static_cast<uint32_t>(payload.size()), i + 1), payload, true);
      FrameView f;
      s = server->ReadFrame(&f, Deadline());
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(f.header.stream_id, i + 1);
      EXPECT_EQ(Payload(f), payload);
      server->Consume();
      EXPECT_EQ(raw.c2s()->read_pos.load(), pos);
    }
    const auto reply = Pattern(100, 3);
    ASSERT_TRUE(ServerWrite(server.get(), reply).ok());
    FrameHeader got;
    std::memcpy(&got, raw.s2c_data(), sizeof(got));
    EXPECT_EQ(got.payload_size, reply.size());
    EXPECT_EQ(std::memcmp(raw.s2c_data() + kFrameHeaderSize, reply.data(), reply.size()), 0);
  }
}

// =========================================== descriptors before admission

// A client sends its hello a byte at a time with 8 descriptors on every
// byte. The server must not hold them while the hello is incomplete (it
// would be 8 per byte, for as long as the client cares to stall): the first
// piece that carries any is refused, and they are closed at once.
TEST(HostileHandshake, HelloInOneBytePiecesEachCarryingDescriptorsIsRefusedAtTheFirst) {
  const std::string address = testing::UniqueAddress("fdpieces");
  auto listener = MakeDefaultListener(address);

  int sent_pipe[2];
  ASSERT_EQ(::pipe2(sent_pipe, O_CLOEXEC), 0);
  int release_pipe[2];
  ASSERT_EQ(::pipe2(release_pipe, O_CLOEXEC), 0);
  const ClientHello hello = GoodHello(4096, SharedMemoryKind::kMemfd, DoorbellKind::kSocket);
  // The client: all but the last byte of the hello, 8 descriptors on each,
  // then it stalls (holding the connection open) until released.
  const pid_t child = testing::ForkChild([&]() -> int {
    ::close(sent_pipe[0]);
    ::close(release_pipe[1]);
    UniqueHandle socket;
    if (!platform::ConnectLocal(address, kIoTimeoutMs, &socket).ok()) return 10;
    std::vector<int> fds;
    for (int i = 0; i < 4; ++i) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return 11;
      fds.push_back(p[0]);
      fds.push_back(p[1]);
    }
    const auto* bytes = reinterpret_cast<const uint8_t*>(&hello);
    int pieces = 0;
    for (size_t i = 0; i + 1 < sizeof(hello); ++i) {
      if (!SendWithFds(socket.get(), bytes + i, 1, fds)) break;  // refused: the server hung up
      ++pieces;
    }
    const char done = static_cast<char>(pieces);
    if (::write(sent_pipe[1], &done, 1) != 1) return 12;
    ReadByte(release_pipe[0], 30000);
    return 0;
  });
  ASSERT_GT(child, 0);
  ::close(sent_pipe[1]);
  ::close(release_pipe[0]);
  const int fds_before = CountOpenFds();

  auto handshake = AcceptOne(listener.get());
  ASSERT_NE(handshake, nullptr);
  ASSERT_TRUE(ReadByte(sent_pipe[0], kIoTimeoutMs)) << "the client did not send its pieces";
  // Every piece is in the server's socket buffer now. The server's poller
  // advances the handshake as long as the socket is readable.
  Status s;
  int max_fds_during = 0;
  for (int i = 0; i < 64; ++i) {
    std::unique_ptr<Connection> connection;
    s = handshake->Advance(&connection);
    max_fds_during = std::max(max_fds_during, CountOpenFds());
    if (s.code() != StatusCode::kWouldBlock) break;
    if (platform::WaitReadable(handshake->socket(), 0).code() == StatusCode::kTimeout) break;
  }
  // The accepted socket is the one descriptor the handshake may hold.
  EXPECT_LE(max_fds_during, fds_before + 1) << "descriptors from an unadmitted client were held";
  EXPECT_EQ(s.code(), StatusCode::kProtocol) << s.ToString();
  EXPECT_NE(s.message().find("peer sent 8 descriptors, at most 0 allowed"), std::string::npos)
      << s.ToString();
  handshake.reset();
  EXPECT_EQ(CountOpenFds(), fds_before);

  const char go = 1;
  ASSERT_EQ(::write(release_pipe[1], &go, 1), 1);
  ::close(release_pipe[1]);
  ::close(sent_pipe[0]);
  EXPECT_EQ(testing::WaitChild(child), 0);
}

// More descriptors than the server's control buffer holds: the kernel closes
// the surplus and flags MSG_CTRUNC. That is refused at the piece that
// carried them, not once (or if ever) the rest of the hello arrives.
TEST(HostileHandshake, TruncatedDescriptorsOnAPartialHelloAreRefusedAtOnce) {
  const std::string address = testing::UniqueAddress("ctrunc");
  auto listener = MakeDefaultListener(address);
  const int fds_before = CountOpenFds();
  UniqueHandle client;
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &client).ok());
  auto handshake = AcceptOne(listener.get());
  ASSERT_NE(handshake, nullptr);
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    fds.push_back(p[0]);
    fds.push_back(p[1]);
  }
  const ClientHello hello = GoodHello(4096, SharedMemoryKind::kMemfd, DoorbellKind::kSocket);
  ASSERT_TRUE(SendWithFds(client.get(), &hello, 4, fds));  // a partial hello, then silence
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(platform::WaitReadable(handshake->socket(), kIoTimeoutMs).ok());
  std::unique_ptr<Connection> connection;
  Status s = handshake->Advance(&connection);
  EXPECT_EQ(s.code(), StatusCode::kProtocol) << s.ToString();
  EXPECT_NE(s.message().find("more descriptors than allowed"), std::string::npos) << s.ToString();
  handshake.reset();
  client.reset();
  EXPECT_EQ(CountOpenFds(), fds_before);
}

// ================================================================ doorbells

// A server whose connections are carried by a poller (the gRPC transport)
// cannot wait on a futex: it refuses one at the handshake and says why,
// instead of accepting a client whose rings it would never hear.
TEST(HostileHandshake, FutexDoorbellIsRefusedByAListenerThatCannotPollIt) {
  const std::string address = testing::UniqueAddress("futex");
  Listener::Options options;
  options.allow_futex = false;
  auto listener = MakeDefaultListener(address, options);
  ConnectionOptions futex = DefaultConnectionOptions();
  futex.doorbell = DoorbellKind::kFutex;
  std::unique_ptr<Connection> client;
  Status client_status;
  std::thread t([&] { client_status = Connect(address, futex, &client); });
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  t.join();
  EXPECT_EQ(s.code(), StatusCode::kProtocol) << s.ToString();
  EXPECT_EQ(client_status.code(), StatusCode::kProtocol) << client_status.ToString();
  EXPECT_NE(client_status.message().find("futex doorbells cannot be polled"), std::string::npos)
      << client_status.ToString();
  EXPECT_EQ(client, nullptr);

  // Socket doorbells are served as before.
  std::thread t2([&] { client_status = Connect(address, DefaultConnectionOptions(), &client); });
  s = listener->Accept(&server, kIoTimeoutMs);
  t2.join();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(client_status.ok()) << client_status.ToString();
}

// A listener at its defaults refuses the two backends a hostile client could
// turn against it, and says why.
TEST(DefaultListener, RefusesUnsafeBackends) {
  const std::string address = NewAddress();
  std::unique_ptr<Listener> listener;
  ASSERT_TRUE(Listener::Listen(address, Listener::Options(), &listener).ok());
  struct Case {
    SharedMemoryKind memory;
    DoorbellKind doorbell;
    const char* why;
  };
  const Case cases[] = {
      {SharedMemoryKind::kMemfd, DoorbellKind::kEventFd, "eventfd doorbells are not enabled"},
#ifdef __linux__
      {SharedMemoryKind::kPosixShm, DoorbellKind::kSocket, "POSIX shared memory is not enabled"},
#endif
  };
  for (const Case& c : cases) {
    std::unique_ptr<Connection> client;
    Status client_status;
    std::thread t(
        [&] { client_status = Connect(address, OptionsFor(c.memory, c.doorbell), &client); });
    std::unique_ptr<Connection> server;
    Status s = listener->Accept(&server, kIoTimeoutMs);
    t.join();
    EXPECT_STATUS(s, StatusCode::kProtocol, c.why);
    EXPECT_STATUS(client_status, StatusCode::kProtocol, c.why);
  }
  // The safe default backend is served.
  std::unique_ptr<Connection> client;
  Status client_status;
  std::thread t([&] { client_status = Connect(address, DefaultConnectionOptions(), &client); });
  std::unique_ptr<Connection> server;
  EXPECT_TRUE(listener->Accept(&server, kIoTimeoutMs).ok());
  t.join();
  EXPECT_TRUE(client_status.ok()) << client_status.ToString();
}

// ====================================================== the socket file

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsRegularFileWith(const std::string& path, const std::string& content) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return got == content;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path);
  out << content;
}

TEST(ListenerSocketFile, ListenNeverRemovesARegularFile) {
  const std::string path = testing::UniqueAddress("regular");
  WriteFile(path, "precious");
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(path, Listener::Options(), &listener);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("EADDRINUSE"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("not a socket"), std::string::npos) << s.ToString();
  EXPECT_TRUE(IsRegularFileWith(path, "precious"));
  ::unlink(path.c_str());
}

// A live server whose backlog is full answers connects with EAGAIN: that is
// a server, not a stale file, and its socket must survive a second Listen.
TEST(ListenerSocketFile, ListenNeverReplacesALiveServerEvenWithAFullBacklog) {
  const std::string path = testing::UniqueAddress("live");
  UniqueHandle live;
  ASSERT_TRUE(platform::ListenLocal(path, 0, &live).ok());
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof(sun.sun_path) - 1);
  std::vector<UniqueHandle> queued;  // fill the backlog: nobody accepts
  for (int i = 0; i < 64; ++i) {
    UniqueHandle c(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(c.valid());
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
      ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
      break;
    }
    queued.push_back(std::move(c));
  }
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(path, Listener::Options(), &listener);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("a live server listens"), std::string::npos) << s.ToString();
  // The path still leads to the live server: empty its backlog, connect
  // again, and it is the live server that has the new client.
  queued.clear();
  for (;;) {
    UniqueHandle accepted;
    Status a = platform::AcceptLocal(live.get(), &accepted);
    if (a.code() == StatusCode::kWouldBlock) break;
    ASSERT_TRUE(a.ok()) << a.ToString();
  }
  UniqueHandle client;
  ASSERT_TRUE(platform::ConnectLocal(path, kIoTimeoutMs, &client).ok());
  ASSERT_TRUE(platform::WaitReadable(live.get(), kIoTimeoutMs).ok());
  UniqueHandle accepted;
  EXPECT_TRUE(platform::AcceptLocal(live.get(), &accepted).ok());
  live.reset();
  ::unlink(path.c_str());
}

TEST(ListenerSocketFile, StaleSocketFileIsReplaced) {
  const std::string path = testing::UniqueAddress("stale");
  {
    UniqueHandle gone;
    ASSERT_TRUE(platform::ListenLocal(path, 4, &gone).ok());
  }  // closed without removing the file, as a crashed server leaves it
  ASSERT_TRUE(PathExists(path));
  auto listener = MakeDefaultListener(path);
  ASSERT_NE(listener, nullptr);
  UniqueHandle client;
  EXPECT_TRUE(platform::ConnectLocal(path, kIoTimeoutMs, &client).ok());
  listener.reset();
  EXPECT_FALSE(PathExists(path)) << "a listener removes its own socket file";
}

// The path was taken over while we listened (our file replaced by another
// server's socket, or by anything else): shutting down removes only our own.
TEST(ListenerSocketFile, ShutdownLeavesAPathThatIsNoLongerOursAlone) {
  const std::string path = testing::UniqueAddress("taken");
  auto first = MakeDefaultListener(path);
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  auto second = MakeDefaultListener(path);
  ASSERT_NE(second, nullptr);
  first.reset();
  ASSERT_TRUE(PathExists(path)) << "the first listener removed the second's socket";
  UniqueHandle client;
  EXPECT_TRUE(platform::ConnectLocal(path, kIoTimeoutMs, &client).ok());

  ASSERT_EQ(::unlink(path.c_str()), 0);
  WriteFile(path, "not yours");
  second.reset();
  EXPECT_TRUE(IsRegularFileWith(path, "not yours"));
  ::unlink(path.c_str());
}

// ========================================================= fork + exec

// A process that forks and execs elsewhere (a subprocess launcher on
// another thread) must not hand our connection's descriptors to the child:
// a copy of the liveness socket in a stranger's process means we would
// never see the peer hang up.
TEST(ListenerCloexec, ExecedChildHoldsNoneOfAConnectionsDescriptors) {
  const std::set<int> before = [] {
    auto v = OpenFds();
    return std::set<int>(v.begin(), v.end());
  }();
  const std::string address = testing::UniqueAddress("exec");
  auto listener = MakeDefaultListener(address);
  std::unique_ptr<Connection> client, server;
  Status client_status;
  std::thread t([&] { client_status = Connect(address, DefaultConnectionOptions(), &client); });
  ASSERT_TRUE(listener->Accept(&server, kIoTimeoutMs).ok());
  t.join();
  ASSERT_TRUE(client_status.ok()) << client_status.ToString();

  std::set<std::string> ours;  // what our descriptors point at (socket:[inode], memfd, ...)
  for (int fd : OpenFds()) {
    if (before.count(fd) == 0) ours.insert(FdTarget(fd));
  }
  // The segment's descriptors are closed once mapped, and the connection
  // sockets are the doorbells too.
  ASSERT_EQ(ours.size(), 3u) << "listener and the two connection sockets";

  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::execl("/bin/ls", "ls", "-l", "/proc/self/fd", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  ::close(out[1]);
  std::string listing;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    listing.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  EXPECT_EQ(testing::WaitChild(pid), 0);
  ASSERT_NE(listing.find("-> "), std::string::npos) << listing;
  for (const std::string& target : ours) {
    EXPECT_EQ(listing.find("-> " + target + "\n"), std::string::npos)
        << target << " leaked into the exec'd child:\n"
        << listing;
  }
}

}  // namespace
}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm
