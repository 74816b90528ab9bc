// Connection::TrimIdleSendRing: a drained send ring gives its pages back
// (they then cost no memory in either process), the ring reads as empty
// afterwards, and traffic goes on intact, also while the peer reads in
// another process at the same moment.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/tests/hostile_peer.h"
#include "plugin/ipc/tests/test_util.h"

namespace grpc_shm {
namespace ipc {
namespace testing {
namespace {

// Pages of [data, data + size) that are resident in memory.
size_t ResidentPages(const uint8_t* data, size_t size) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v((size + page - 1) / page);
  EXPECT_EQ(::mincore(const_cast<uint8_t*>(data), size, v.data()), 0);
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

class RingTrim : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    address_ = NewAddress();
    listener_ = MakeListener(address_);
    ASSERT_NO_FATAL_FAILURE(RawHandshake(listener_.get(), address_, &raw_, &server_, kRing,
                                         GetParam().memory, GetParam().doorbell));
  }
  // The raw client consumes everything the server wrote, as a reader does.
  void ConsumeAll() {
    raw_.s2c()->read_pos.store(server_->writer().write_pos(), std::memory_order_release);
  }

  // `size` bytes of the s2c ring from ring position `pos` on, wrapping.
  std::vector<uint8_t> BytesAt(uint64_t pos, size_t size) const {
    std::vector<uint8_t> v(size);
    for (size_t i = 0; i < size; ++i) v[i] = raw_.s2c_data()[(pos + i) & (kRing - 1)];
    return v;
  }

  static constexpr uint32_t kRing = 1 << 16;
  std::string address_;
  std::unique_ptr<Listener> listener_;
  RawClient raw_;
  std::unique_ptr<Connection> server_;
};

TEST_P(RingTrim, DrainedRingGivesItsPagesBackAndReadsEmpty) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  // More than a lap of frames, so every page of the ring is touched.
  for (uint32_t i = 0; i < 40; ++i) {
    ASSERT_TRUE(ServerWrite(server_.get(), Pattern(3000, i)).ok());
    ConsumeAll();
  }
  ASSERT_TRUE(ServerWrite(server_.get(), Pattern(3000, 99)).ok());
  EXPECT_EQ(ResidentPages(raw_.s2c_data(), kRing), kRing / page);
  EXPECT_EQ(server_->TrimIdleSendRing(), 0u) << "trimmed a ring with an unread frame";
  // Untouched: the unread frame is still whole.
  const uint64_t last = server_->writer().write_pos() - FrameRecordSize(3000);
  EXPECT_EQ(BytesAt(last + kFrameHeaderSize, 3000), Pattern(3000, 99));

  ConsumeAll();
  const size_t released = server_->TrimIdleSendRing();
  const uint64_t pos = server_->writer().write_pos();
#ifdef __linux__
  EXPECT_EQ(released, kRing);
  EXPECT_EQ(ResidentPages(raw_.s2c_data(), kRing), 0u)
      << "the peer's view of the ring still holds the pages";
#else
  EXPECT_EQ(released, 0u) << "platform::ReleaseSharedPages keeps pages here";
#endif
  // What the reader looks at next, the seal slot at the write position,
  // says "not written yet"; with the pages given back, so does every other
  // record slot.
  auto seal_at = [&](uint64_t p) {
    uint16_t seal;
    std::memcpy(&seal, raw_.s2c_data() + (p & (kRing - 1)) + kFrameSealOffset, sizeof(seal));
    return seal;
  };
  EXPECT_EQ(seal_at(pos), 0);
#ifdef __linux__
  for (uint64_t p = pos; p < pos + kRing; p += kFrameAlignment) {
    ASSERT_EQ(seal_at(p), 0) << "offset " << (p & (kRing - 1));
  }
#endif
  EXPECT_EQ(server_->TrimIdleSendRing(), 0u) << "nothing was written since the last trim";

  // Traffic goes on where it stopped: the next record is sealed at `pos`.
  const std::vector<uint8_t> next = Pattern(5000, 7);
  ASSERT_TRUE(ServerWrite(server_.get(), next).ok());
  FrameHeader h;
  std::memcpy(&h, raw_.s2c_data() + (pos & (kRing - 1)), sizeof(h));
  EXPECT_EQ(h.seal, FrameSeal(pos));
  ASSERT_EQ(h.payload_size, next.size());
  EXPECT_EQ(BytesAt(pos + kFrameHeaderSize, next.size()), next);
}

INSTANTIATE_TEST_SUITE_P(Backends, RingTrim, ::testing::Values(kBackends[3], kBackends[2]),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

// Two processes, real connections: the child streams messages of many sizes
// and trims after each one, racing the server's reads; the server checks
// every byte. Every 64 messages the child waits for the server's ack, so
// that some trims find the ring drained and really give pages back; its last
// message says how many did.
TEST(RingTrimAcrossProcesses, TrimsRacingThePeersReadsLoseNoByte) {
  constexpr int kMessages = 1500;
  constexpr uint32_t kRing = 1 << 16;
  const std::string address = UniqueAddress("trim");
  std::unique_ptr<Listener> listener;
  ASSERT_TRUE(Listener::Listen(address, Listener::Options(), &listener).ok());
  auto size_of = [](int i) { return static_cast<size_t>((i * 7919) % 40000 + (i % 3)); };
  pid_t child = ForkChild([&]() -> int {
    ConnectionOptions o = DefaultConnectionOptions();
    o.ring_bytes = kRing;
    std::unique_ptr<Connection> c;
    if (!Connect(address, o, &c).ok()) return 1;
    uint32_t trims = 0;
    for (int i = 0; i < kMessages; ++i) {
      const std::vector<uint8_t> msg = Pattern(size_of(i), static_cast<uint32_t>(i));
      if (!c->WriteMessage(static_cast<uint32_t>(i), 0, msg.data(), msg.size(), Deadline(30000))
               .ok()) {
        return 2;
      }
      if (c->TrimIdleSendRing() > 0) ++trims;
      if (i % 64 == 63) {
        FrameView f;
        if (!c->ReadFrame(&f, Deadline(30000)).ok()) return 3;
        c->Consume();
        if (c->TrimIdleSendRing() > 0) ++trims;
      }
    }
    FrameHeader h = MessageHeader(0, 0xffffffffu);
    h.aux = trims;
    if (!c->WriteFrame(h, nullptr, 0, Deadline(30000)).ok()) return 4;
    FrameView f;  // stay until the server has read it all
    (void)c->ReadFrame(&f, Deadline(30000));
    return 0;
  });
  ASSERT_GT(child, 0);
  std::unique_ptr<Connection> server;
  ASSERT_TRUE(listener->Accept(&server, 10000).ok());
  for (int i = 0; i < kMessages; ++i) {
    std::vector<uint8_t> got;
    for (;;) {
      FrameView f;
      Status s = server->ReadFrame(&f, Deadline(30000));
      ASSERT_TRUE(s.ok()) << "message " << i << ": " << s.ToString();
      ASSERT_EQ(f.header.stream_id, static_cast<uint32_t>(i));
      const std::vector<uint8_t> part = Payload(f);
      got.insert(got.end(), part.begin(), part.end());
      const bool more = (f.header.flags & kFlagMoreChunks) != 0;
      server->Consume();
      if (!more) break;
    }
    ASSERT_EQ(got, Pattern(size_of(i), static_cast<uint32_t>(i))) << "message " << i;
    if (i % 64 == 63) {
      ASSERT_TRUE(ServerWrite(server.get(), Pattern(4, 1)).ok());
      (void)server->TrimIdleSendRing();  // races the child's read of the ack
    }
  }
  FrameView last;
  ASSERT_TRUE(server->ReadFrame(&last, Deadline(30000)).ok());
  EXPECT_EQ(last.header.stream_id, 0xffffffffu);
#ifdef __linux__
  EXPECT_GT(last.header.aux, 0u) << "no trim ever found the ring drained: the test proved nothing";
#endif
  server->Consume();
  ASSERT_TRUE(ServerWrite(server.get(), Pattern(1, 1)).ok());
  EXPECT_EQ(WaitChild(child), 0);
}

}  // namespace
}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm
