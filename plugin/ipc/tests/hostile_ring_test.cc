// Hostile clients after a good handshake: they scribble on the shared
// control blocks and ring data (HostileRing), turn the doorbell descriptors
// the server shares with them into weapons (HostileDoorbell,
// HostileDoorbellPeerGone), or shrink the shared segment under the server
// (SegmentShrink). The server must answer with a clear status, never crash,
// block or read outside its ring, and keep serving the next client.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/ipc/handshake_format.h"
#include "plugin/ipc/ring.h"
#include "plugin/ipc/segment_layout.h"
#include "plugin/ipc/status.h"
#include "plugin/ipc/tests/hostile_peer.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace ipc {
namespace testing {
namespace {

// ============================== corrupt control blocks after a good handshake

class HostileRing : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = NewAddress();
    listener_ = MakeListener(address_);
    ASSERT_NO_FATAL_FAILURE(RawHandshake(listener_.get(), address_, &raw_, &server_, kRing));
    ASSERT_EQ(server_->receive_ring_bytes(), kRing);
    ASSERT_EQ(server_->send_ring_bytes(), kRing);
  }
  void TearDown() override {
    // The hostile connection is done with; the listener must serve the next
    // well-behaved client (another process, real Connect()).
    server_.reset();
    raw_ = RawClient();
    if (listener_ && !HasFatalFailure()) ExpectListenerServesChildClient(listener_.get());
  }

  // Publishes `n` good frames c2s; returns their payloads.
  std::vector<std::vector<uint8_t>> PutGoodFrames(int n, size_t size = 100) {
    std::vector<std::vector<uint8_t>> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(Pattern(size, static_cast<uint32_t>(i)));
      RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(static_cast<uint32_t>(size), 1),
                  out.back(), true);
    }
    return out;
  }
  void ReadGoodFrames(const std::vector<std::vector<uint8_t>>& frames) {
    for (const auto& want : frames) {
      FrameView f;
      Status s = server_->ReadFrame(&f, Deadline());
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(Payload(f), want);
      server_->Consume();
    }
  }
  // The server writes until something other than Ok comes back.
  Status ServerWriteUntilError(size_t payload = 200) {
    const auto data = Pattern(payload, 5);
    for (int i = 0; i < 1000; ++i) {
      Status s = ServerWrite(server_.get(), data);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  static constexpr uint32_t kRing = 4096;
  std::string address_;
  std::unique_ptr<Listener> listener_;
  RawClient raw_;
  std::unique_ptr<Connection> server_;
  uint64_t c2s_pos_ = 0;
};
constexpr uint32_t HostileRing::kRing;

TEST_F(HostileRing, WrongSealIsCorrupt) {
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(4), Pattern(4, 1), true, SIZE_MAX,
              FrameSeal(0) + 1);
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kCorrupt,
                "frame seal 32769 at position 0 is not the expected 32768");
}

TEST_F(HostileRing, SealOfAnotherPositionIsCorrupt) {
  // A seal that would be right one lap later (or one record earlier) is a
  // replayed or misplaced record, not the next one.
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(4), Pattern(4, 1), true, SIZE_MAX,
              FrameSeal(kRing));
  FrameView f;
  EXPECT_STATUS(server_->Peek(&f), StatusCode::kCorrupt, "frame seal");
}

TEST_F(HostileRing, StaleSealAfterGoodFramesIsCorrupt) {
  auto frames = PutGoodFrames(2);
  ASSERT_NO_FATAL_FAILURE(ReadGoodFrames(frames));
  const uint64_t read_pos = c2s_pos_;
  ASSERT_EQ(raw_.c2s()->read_pos.load(), read_pos);
  // The next slot sealed as if it were the record before.
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(8), Pattern(8, 1), true, SIZE_MAX,
              FrameSeal(read_pos - kFrameAlignment));
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kCorrupt,
                "frame seal " + std::to_string(FrameSeal(read_pos - kFrameAlignment)) +
                    " at position " + std::to_string(read_pos));
}

TEST_F(HostileRing, UnsealedFrameIsNotRead) {
  // Header and payload written, seal never stored: nothing to read yet.
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(16), Pattern(16, 1), false);
  FrameView f;
  EXPECT_EQ(server_->Peek(&f).code(), StatusCode::kWouldBlock);
  EXPECT_STATUS(server_->ReadFrame(&f, Clock::now() + milliseconds(50)), StatusCode::kTimeout,
                "deadline");
}

TEST_F(HostileRing, FrameLengthBeyondTheLargestFrameIsCorrupt) {
  // One byte more than a frame can carry in this ring (the ring minus this
  // header and the next record's seal slot).
  const uint32_t too_long = kRing - 2 * kFrameHeaderSize + 1;
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(too_long), Pattern(8, 1), true, 8);
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kCorrupt,
                "frame length 4065 exceeds the ring's largest frame (4064 bytes)");
}

TEST_F(HostileRing, FrameLengthLargerThanTheRingIsCorrupt) {
  auto frames = PutGoodFrames(1);
  // Then a sealed header claiming 4 GiB.
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(0xffffffffu), {}, true);
  ASSERT_NO_FATAL_FAILURE(ReadGoodFrames(frames));
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kCorrupt,
                "frame length 4294967295 exceeds the");
}

TEST_F(HostileRing, HeaderRewrittenAfterPeekIsNotTrustedTwice) {
  auto frames = PutGoodFrames(1, 64);
  FrameView f;
  ASSERT_TRUE(server_->ReadFrame(&f, Deadline()).ok());
  // The peer rewrites the length after the server validated it.
  FrameHeader evil = MessageHeader(0xfffffff0u);
  std::memcpy(raw_.c2s_data(), &evil, sizeof(evil));
  EXPECT_EQ(f.payload_size(), 64u);
  EXPECT_EQ(f.parts[0].size + f.parts[1].size, 64u);
  EXPECT_EQ(Payload(f), frames[0]);
  server_->Consume();
  EXPECT_EQ(raw_.c2s()->read_pos.load(), FrameRecordSize(64));
}

TEST_F(HostileRing, ReadPosAheadOfServerWritePosIsCorrupt) {
  raw_.s2c()->read_pos.store(4096);
  EXPECT_STATUS(ServerWriteUntilError(), StatusCode::kCorrupt,
                "ring read position 4096 is inconsistent with write position");
  size_t writable = 0;
  EXPECT_STATUS(server_->writer().WritableBytes(&writable), StatusCode::kCorrupt,
                "ring read position 4096");
}

TEST_F(HostileRing, UnalignedReadPosIsCorrupt) {
  ASSERT_TRUE(ServerWrite(server_.get(), Pattern(200, 1)).ok());
  raw_.s2c()->read_pos.store(12);
  EXPECT_STATUS(ServerWriteUntilError(), StatusCode::kCorrupt,
                "ring read position 12 is inconsistent with write position");
}

TEST_F(HostileRing, ReadPosGoingBackwardsIsCorrupt) {
  // Fill the ring; the server has then seen read position 0.
  EXPECT_EQ(ServerWriteUntilError().code(), StatusCode::kWouldBlock);
  const uint64_t full = server_->writer().write_pos();
  // The client "consumes" everything; the server's next write sees that.
  raw_.s2c()->read_pos.store(full);
  ASSERT_TRUE(ServerWrite(server_.get(), Pattern(200, 2)).ok());
  // Then it moves its read position back (still aligned, still within one
  // ring of the write position).
  raw_.s2c()->read_pos.store(full - 64);
  EXPECT_STATUS(ServerWriteUntilError(), StatusCode::kCorrupt,
                "ring read position " + std::to_string(full - 64) + " is inconsistent");
}

TEST_F(HostileRing, BytesOnTheLivenessSocketArePeerClosed) {
  const char byte = 'x';
  ASSERT_EQ(::send(raw_.socket.get(), &byte, 1, MSG_NOSIGNAL), 1);
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kPeerClosed,
                "unexpected bytes on the liveness socket");
  EXPECT_STATUS(server_->CheckAlive(), StatusCode::kPeerClosed, "unexpected bytes");
}

TEST_F(HostileRing, RandomScribblesNeverEscapeTheRing) {
  // Random control values and frame headers: every answer is a frame that
  // lies inside the receive ring, "empty", or kCorrupt; never a crash.
  std::mt19937_64 rng(42);
  for (int round = 0; round < 200; ++round) {
    RawClient raw;
    std::unique_ptr<Connection> server;
    ASSERT_NO_FATAL_FAILURE(RawHandshake(listener_.get(), address_, &raw, &server, kRing));
    for (int step = 0; step < 8; ++step) {
      for (int i = 0; i < 6; ++i) {
        const size_t off = rng() % kRing;
        raw.c2s_data()[off] = static_cast<uint8_t>(rng());
        if (rng() % 2) {
          uint32_t len = static_cast<uint32_t>(rng() % (2 * kRing));
          std::memcpy(raw.c2s_data() + (off & ~size_t{7}), &len, sizeof(len));
        }
      }
      // The seal the server looks at next: right, random, or zero.
      const uint64_t read_pos = raw.c2s()->read_pos.load();
      uint16_t seal;
      switch (rng() % 3) {
        case 0:
          seal = FrameSeal(read_pos);
          break;
        case 1:
          seal = static_cast<uint16_t>(rng());
          break;
        default:
          seal = 0;
          break;
      }
      ring_internal::SealAt(raw.c2s_data(), kRing - 1, read_pos)->store(seal);
      raw.s2c()->read_pos.store(rng() % 3 == 0 ? rng() : (rng() % (kRing / 16)) * 16);
      FrameView f;
      Status s = server->Peek(&f);
      if (s.ok()) {
        ASSERT_LE(f.payload_size(), kRing - 2 * kFrameHeaderSize);
        ASSERT_EQ(f.parts[0].size + f.parts[1].size, f.payload_size());
        std::vector<uint8_t> copy = Payload(f);  // in bounds, or ASan/SEGV says so
        (void)copy;
        server->Consume();
      } else {
        ASSERT_TRUE(s.code() == StatusCode::kWouldBlock || s.code() == StatusCode::kCorrupt)
            << s.ToString();
        if (s.code() == StatusCode::kCorrupt) break;
      }
      s = ServerWrite(server.get(), Pattern(rng() % 600, 1));
      ASSERT_TRUE(s.ok() || s.code() == StatusCode::kWouldBlock || s.code() == StatusCode::kCorrupt)
          << s.ToString();
      if (s.code() == StatusCode::kCorrupt) break;
    }
  }
}

// ======================== the peer's doorbell descriptors as a weapon

// With eventfd doorbells the server keeps one descriptor of each eventfd and
// hands the client a dup of it: both share one open file description, so
// the file status flags (O_NONBLOCK) are shared too. A hostile client that
// clears O_NONBLOCK on its copy turns the server's own "non-blocking" reads
// and writes into blocking ones. The server must never block on a doorbell:
// one stuck connection would stall the poller that serves all of them.
class HostileDoorbell : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    address_ = NewAddress();
    listener_ = MakeListener(address_);
    ASSERT_NO_FATAL_FAILURE(RawHandshake(listener_.get(), address_, &raw_, &server_, 4096,
                                         GetParam().memory, GetParam().doorbell));
    ASSERT_EQ(raw_.handles.size(), GetParam().doorbell == DoorbellKind::kEventFd ? 3u : 1u);
  }
  static void ClearNonBlocking(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    ASSERT_GE(fl, 0);
    ASSERT_EQ(::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK), 0);
  }
  // Runs `op` on a thread; if it has not finished within `ms`, records a
  // failure, calls `unblock` (which must free the thread) and joins.
  static void ExpectFinishesWithin(int ms, const std::function<Status()>& op,
                                   const std::function<void()>& unblock, Status* result,
                                   const char* what) {
    std::promise<Status> done;
    std::future<Status> future = done.get_future();
    std::thread t([&] { done.set_value(op()); });
    if (future.wait_for(milliseconds(ms)) != std::future_status::ready) {
      ADD_FAILURE() << what;
      unblock();
    }
    t.join();
    *result = future.get();
  }

  std::string address_;
  std::unique_ptr<Listener> listener_;
  RawClient raw_;
  std::unique_ptr<Connection> server_;
};

TEST_P(HostileDoorbell, ClientClearingNonBlockOnServerBellCannotBlockServerDrain) {
  // The client's end of the server's own doorbell.
  ASSERT_NO_FATAL_FAILURE(ClearNonBlocking(raw_.server_bell()));
  Status s;
  ExpectFinishesWithin(
      3000,
      [&] {
        FrameView f;
        return server_->ReadFrame(&f, Clock::now() + milliseconds(200));
      },
      [&] {
        const uint64_t one = 1;  // makes the stuck read return
        (void)!::write(raw_.server_bell(), &one, sizeof(one));
      },
      &s,
      "server ReadFrame blocked in its doorbell Drain() after the client cleared O_NONBLOCK "
      "on the shared eventfd description");
  EXPECT_STATUS(s, StatusCode::kTimeout, "deadline passed");
}

TEST_P(HostileDoorbell, ClientSaturatingItsBellCannotBlockServerWrite) {
  // The client's end of its own doorbell, which the server rings whenever
  // the client says it sleeps on data.
  const int bell = raw_.client_bell();
  ASSERT_NO_FATAL_FAILURE(ClearNonBlocking(bell));
  if (GetParam().doorbell == DoorbellKind::kEventFd) {
    const uint64_t max = 0xfffffffffffffffeull;  // one more would overflow
    ASSERT_EQ(::write(bell, &max, sizeof(max)), 8);
  }
  raw_.client_wait()->bits.store(kWaitingForData);
  Status s;
  ExpectFinishesWithin(
      3000, [&] { return ServerWrite(server_.get(), Pattern(10, 1)); },
      [&] {
        uint64_t v;  // resets the counter: the stuck write completes
        (void)!::read(bell, &v, sizeof(v));
      },
      &s,
      "server TryWriteFrame blocked ringing the client's doorbell after the client cleared "
      "O_NONBLOCK on the shared eventfd description and saturated its counter");
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// The socket doorbell is the handshake socket: a client that floods it with
// bytes (as many as the socket takes) only costs the server bounded reads.
// Its waits still time out, the bytes are no hang-up and no protocol breach,
// and the next real frame is read as usual.
TEST_P(HostileDoorbell, ClientFloodingTheSocketIsOnlyRings) {
  const std::vector<uint8_t> junk(64 << 10, 0xee);
  size_t flooded = 0;
  for (;;) {
    const ssize_t n = ::send(raw_.server_bell(), junk.data(), junk.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    flooded += static_cast<size_t>(n);
  }
  ASSERT_GT(flooded, 0u);
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Clock::now() + milliseconds(200)), StatusCode::kTimeout,
                "deadline passed");
  EXPECT_TRUE(server_->CheckAlive().ok());
  uint64_t pos = 0;
  RawPutFrame(raw_.c2s_data(), raw_.reply.c2s_bytes, &pos, MessageHeader(8), Pattern(8, 3), true);
  const char ring = 1;
  (void)!::send(raw_.server_bell(), &ring, 1, MSG_DONTWAIT);
  Status s = server_->ReadFrame(&f, Deadline());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Payload(f), Pattern(8, 3));
}

// eventfd is refused by default listeners for exactly this reason (see
// DefaultListenerRefusesUnsafeBackends); the socket doorbell must hold.
INSTANTIATE_TEST_SUITE_P(Backends, HostileDoorbell, ::testing::Values(kBackends[3], kBackends[2]),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

// ================================ shrinking the shared segment under the server

// The server creates the segment so that a client cannot shrink it under the
// server (an access past the end of a shrunk file is SIGBUS, which kills the
// whole server). memfd is sealed against that. A client may also ask for the
// POSIX backend, whose descriptor has no seals: if it truncates it, the
// server must still survive. The server runs in a child process here, since
// the failure mode is a signal.
class SegmentShrink : public ::testing::TestWithParam<Backend> {};

TEST_P(SegmentShrink, ClientTruncatingTheSegmentCannotKillTheServer) {
  const Backend b = GetParam();
  const std::string address = NewAddress();
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  Child server = ForkIsolatedChild(
      [&]() -> int {
        std::unique_ptr<Listener> listener;
        Listener::Options options;
        if (!Listener::Listen(address, options, &listener).ok()) return 40;
        const char l = 'L';
        if (::write(sp[1], &l, 1) != 1) return 41;
        std::unique_ptr<Connection> c;
        if (!listener->Accept(&c, kIoTimeoutMs).ok()) return 42;
        char go;
        if (!ReadByte(sp[1], kIoTimeoutMs, &go)) return 43;
        // Touch the rings: read what the client published, then write.
        FrameView f;
        (void)c->ReadFrame(&f, Clock::now() + milliseconds(200));
        (void)ServerWrite(c.get(), Pattern(100, 1));
        return 0;  // survived
      },
      {sp[1]});
  ::close(sp[1]);
  ASSERT_GT(server.pid, 0);
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs)) << "server did not start listening";
  RawClient raw;
  ASSERT_TRUE(RawSendHello(address, GoodHello(4096, b.memory, b.doorbell), &raw, false).ok());
  ASSERT_TRUE(RawReceiveReply(&raw, b.memory).ok());
  ClientReady ready{kReadyMagic, 0};
  ASSERT_TRUE(
      platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs).ok());
  // Publish a frame, then try to shrink the segment to nothing.
  uint64_t pos = 0;
  RawPutFrame(raw.c2s_data(), raw.reply.c2s_bytes, &pos, MessageHeader(8), Pattern(8, 1), true);
  const int truncated = ::ftruncate(raw.handles[0].get(), 0);
  if (b.memory == SharedMemoryKind::kMemfd) {
    EXPECT_NE(truncated, 0) << "memfd segment is not sealed against shrinking";
  }
  raw.segment = platform::MappedRegion();  // our mapping is past EOF now
  const char go = 'g';
  ASSERT_EQ(::send(sp[0], &go, 1, MSG_NOSIGNAL), 1);
  const int rc = WaitChild(&server);
  EXPECT_EQ(rc, 0) << (rc == 1000 + SIGBUS ? "the server died of SIGBUS: the client shrank the " +
                                                 std::string(b.name) + " segment under it"
                                           : "server child exit " + std::to_string(rc));
  ::close(sp[0]);
}

// POSIX shm cannot be sealed on Linux, so default listeners refuse it there.
INSTANTIATE_TEST_SUITE_P(Backends, SegmentShrink, ::testing::Values(kBackends[1], kBackends[3]),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

// ======================================= a doorbell nobody listens to any more

// With a pipe doorbell the client would hold the only read end of its doorbell.
// A client that closes it (or dies) while its wait word says "sleeping"
// makes the server's next ring a write to a pipe without readers: SIGPIPE,
// whose default action kills the whole server. The server runs in a child
// with the default SIGPIPE disposition, as a real server would.
TEST(HostileDoorbellPeerGone, ClosedDoorbellReadEndCannotKillTheServer) {
  const Backend b = kBackends[3];  // MemfdSocket
  const std::string address = NewAddress();
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  Child server = ForkIsolatedChild(
      [&]() -> int {
        ::signal(SIGPIPE, SIG_DFL);
        std::unique_ptr<Listener> listener;
        if (!Listener::Listen(address, Listener::Options(), &listener).ok()) return 40;
        const char l = 'L';
        if (::write(sp[1], &l, 1) != 1) return 41;
        std::unique_ptr<Connection> c;
        if (!listener->Accept(&c, kIoTimeoutMs).ok()) return 42;
        char go;
        if (!ReadByte(sp[1], kIoTimeoutMs, &go)) return 43;
        FrameView f;
        if (!c->ReadFrame(&f, Deadline()).ok()) return 44;
        c->Consume();                                // rings "space" for the client
        (void)ServerWrite(c.get(), Pattern(10, 1));  // rings "data" for the client
        return 0;                                    // survived
      },
      {sp[1]});
  ::close(sp[1]);
  ASSERT_GT(server.pid, 0);
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs)) << "server did not start listening";
  RawClient raw;
  ASSERT_TRUE(RawSendHello(address, GoodHello(4096, b.memory, b.doorbell), &raw, false).ok());
  ASSERT_TRUE(RawReceiveReply(&raw, b.memory).ok());
  ASSERT_EQ(raw.handles.size(), 1u);
  ClientReady ready{kReadyMagic, 0};
  ASSERT_TRUE(
      platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs).ok());
  uint64_t pos = 0;
  RawPutFrame(raw.c2s_data(), raw.reply.c2s_bytes, &pos, MessageHeader(8), Pattern(8, 1), true);
  // "I sleep on data and on space", then stop reading our bell (the
  // socket's read side), as a pipe's only reader closing it would.
  raw.client_wait()->bits.store(kWaitingForData | kWaitingForSpace);
  ASSERT_EQ(::shutdown(raw.socket.get(), SHUT_RD), 0);
  const char go = 'g';
  ASSERT_EQ(::send(sp[0], &go, 1, MSG_NOSIGNAL), 1);
  const int rc = WaitChild(&server);
  EXPECT_EQ(rc, 0) << (rc == 1000 + SIGPIPE
                           ? std::string("the server died of SIGPIPE ringing a pipe doorbell "
                                         "whose read end the client closed")
                           : "server child exit " + std::to_string(rc));
  ::close(sp[0]);
}

}  // namespace
}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm
