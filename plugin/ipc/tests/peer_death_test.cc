// A peer that dies mid-frame: a raw client killed after writing a header it
// never published or in the middle of a chunked message, and a real client
// killed while blocked in a chunked write. The server reads exactly the
// frames that were published, then kPeerClosed, and serves the next client.
// Every case runs on every backend.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/ipc/handshake_format.h"
#include "plugin/ipc/status.h"
#include "plugin/ipc/tests/hostile_peer.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace ipc {
namespace testing {
namespace {

// The segment, and for eventfd the two doorbell ends (socket doorbells are
// the handshake socket itself).
size_t HandlesFor(DoorbellKind kind) { return kind == DoorbellKind::kEventFd ? 3 : 1; }

class PeerDeath : public ::testing::TestWithParam<Backend> {
 protected:
  // A killed client may die while its wait word says "sleeping"; with the
  // pipe doorbell the server's next ring then raises SIGPIPE in this process
  // (see HostileDoorbellPeerGone, which exposes that bug on its own). Here
  // we test what the server reads, so SIGPIPE is ignored for the duration.
  void SetUp() override { old_sigpipe_ = ::signal(SIGPIPE, SIG_IGN); }
  void TearDown() override { ::signal(SIGPIPE, old_sigpipe_); }

 private:
  sighandler_t old_sigpipe_ = SIG_DFL;
};

// Child: hand-made handshake with the given backend; `body` then writes into
// the c2s ring; `ready_fd` receives one byte when the child has done its part.
Child ForkRawClient(const std::string& address, const Backend& b, int ready_fd,
                    const std::function<void(RawClient*)>& body) {
  return ForkIsolatedChild(
      [&]() -> int {
        RawClient raw;
        if (!RawSendHello(address, GoodHello(4096, b.memory, b.doorbell), &raw, false).ok()) {
          return 20;
        }
        if (!RawReceiveReply(&raw, b.memory).ok()) return 21;
        if (raw.handles.size() != HandlesFor(b.doorbell)) return 22;
        ClientReady ready{kReadyMagic, 0};
        if (!platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs)
                 .ok()) {
          return 23;
        }
        body(&raw);
        const char c = 'r';
        if (::write(ready_fd, &c, 1) != 1) return 24;
        // Wait to be killed (or, if the parent went away, give up).
        char x;
        ReadByte(ready_fd, 30000, &x);
        return 25;
      },
      {ready_fd});
}

TEST_P(PeerDeath, HeaderWrittenButNotPublishedThenDeathIsPeerClosed) {
  const Backend b = GetParam();
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  Child child = ForkRawClient(address, b, sp[1], [](RawClient* raw) {
    uint64_t pos = 0;
    // A header (and half its payload) written, never sealed.
    RawPutFrame(raw->c2s_data(), raw->reply.c2s_bytes, &pos, MessageHeader(500), Pattern(500, 1),
                false, 250);
  });
  ::close(sp[1]);
  ASSERT_GT(child.pid, 0);
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs)) << "child did not write its header";
  FrameView f;
  EXPECT_EQ(server->Peek(&f).code(), StatusCode::kWouldBlock);
  ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
  const auto killed = Clock::now();
  s = server->ReadFrame(&f, Deadline());
  const auto detect = Clock::now() - killed;
  EXPECT_STATUS(s, StatusCode::kPeerClosed, "peer");
  EXPECT_LT(detect, milliseconds(1000));
  EXPECT_EQ(WaitChild(&child), 1000 + SIGKILL);
  // Nothing left to read; a socket doorbell has seen the hang-up too.
  EXPECT_EQ(server->Peek(&f).code(),
            b.doorbell == DoorbellKind::kSocket ? StatusCode::kPeerClosed : StatusCode::kWouldBlock)
      << "garbage after death";
  EXPECT_STATUS(server->CheckAlive(), StatusCode::kPeerClosed, "peer hung up");
  ::close(sp[0]);
  server.reset();
  ExpectListenerServesChildClient(listener.get(), b.memory, b.doorbell);
}

TEST_P(PeerDeath, KilledMidChunkedMessageServerReadsPublishedChunksThenPeerClosed) {
  const Backend b = GetParam();
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  constexpr size_t kChunk = 1000;
  constexpr int kPublished = 3;
  Child child = ForkRawClient(address, b, sp[1], [](RawClient* raw) {
    uint64_t pos = 0;
    const uint32_t cap = raw->reply.c2s_bytes;
    // Three complete chunks of one message, published one by one...
    for (int i = 0; i < kPublished; ++i) {
      RawPutFrame(raw->c2s_data(), cap, &pos, MessageHeader(kChunk, 7, kFlagMoreChunks),
                  Pattern(kChunk, i), true);
    }
    // ...and a fourth one half written, never published.
    RawPutFrame(raw->c2s_data(), cap, &pos, MessageHeader(kChunk, 7, kFlagMoreChunks),
                Pattern(kChunk, 99), false, 300);
  });
  ::close(sp[1]);
  ASSERT_GT(child.pid, 0);
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs)) << "child did not write its chunks";
  // Read the first chunk while the peer is alive, then kill it.
  FrameView f;
  s = server->ReadFrame(&f, Deadline());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Payload(f), Pattern(kChunk, 0));
  server->Consume();
  ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(&child), 1000 + SIGKILL);
  for (int i = 1; i < kPublished; ++i) {
    s = server->ReadFrame(&f, Deadline());
    ASSERT_TRUE(s.ok()) << "published chunk " << i << ": " << s.ToString();
    EXPECT_EQ(f.header.stream_id, 7u);
    EXPECT_EQ(f.header.flags, kFlagMoreChunks);
    EXPECT_EQ(Payload(f), Pattern(kChunk, static_cast<uint32_t>(i)));
    server->Consume();
  }
  s = server->ReadFrame(&f, Deadline());
  EXPECT_STATUS(s, StatusCode::kPeerClosed, "peer");
  // Nothing left to read; a socket doorbell has seen the hang-up too.
  EXPECT_EQ(server->Peek(&f).code(),
            b.doorbell == DoorbellKind::kSocket ? StatusCode::kPeerClosed : StatusCode::kWouldBlock)
      << "garbage after death";
  ::close(sp[0]);
  server.reset();
  ExpectListenerServesChildClient(listener.get(), b.memory, b.doorbell);
}

TEST_P(PeerDeath, RealClientKilledWhileBlockedInChunkedWriteLeavesOnlyWholeChunks) {
  // A real client (Connect + WriteMessage) sends a message four times the
  // ring; the server reads a little, then the client is SIGKILLed while it
  // waits for space. Everything the server reads is whole chunks of the
  // message, in order, then kPeerClosed.
  const Backend b = GetParam();
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  const size_t kMessage = 4 * 8192;
  const auto message = Pattern(kMessage, 77);
  Child child = ForkIsolatedChild(
      [&]() -> int {
        std::unique_ptr<Connection> c;
        if (!Connect(address, OptionsFor(b.memory, b.doorbell), &c).ok()) return 30;
        const char go = 'g';
        if (::write(sp[1], &go, 1) != 1) return 31;
        (void)c->WriteMessage(9, 0, message.data(), message.size(), Deadline(30000));
        char x;
        ReadByte(sp[1], 30000, &x);
        return 32;
      },
      {sp[1]});
  ::close(sp[1]);
  ASSERT_GT(child.pid, 0);
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs));
  size_t offset = 0;
  FrameView f;
  // Take the first chunk, so the writer is mid-message and mid-back-pressure.
  s = server->ReadFrame(&f, Deadline());
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(f.header.flags, kFlagMoreChunks);
  auto chunk = Payload(f);
  ASSERT_EQ(std::memcmp(chunk.data(), message.data(), chunk.size()), 0);
  offset += chunk.size();
  server->Consume();
  ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(&child), 1000 + SIGKILL);
  for (;;) {
    s = server->ReadFrame(&f, Deadline());
    if (!s.ok()) break;
    chunk = Payload(f);
    ASSERT_LE(offset + chunk.size(), kMessage);
    ASSERT_EQ(std::memcmp(chunk.data(), message.data() + offset, chunk.size()), 0)
        << "garbage at offset " << offset;
    offset += chunk.size();
    server->Consume();
  }
  EXPECT_STATUS(s, StatusCode::kPeerClosed, "peer");
  EXPECT_LT(offset, kMessage) << "the whole message got through before the kill";
  ::close(sp[0]);
  server.reset();
  ExpectListenerServesChildClient(listener.get(), b.memory, b.doorbell);
}

INSTANTIATE_TEST_SUITE_P(Backends, PeerDeath, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm
