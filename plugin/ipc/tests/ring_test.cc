#include "plugin/ipc/ring.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

namespace grpc_shm {
namespace ipc {
namespace {

// A ring in private memory: the same code paths as shared memory, minus the
// second process.
class TestRing {
 public:
  explicit TestRing(uint32_t capacity)
      : control_(new RingControl()),
        data_(new uint8_t[capacity]()),
        writer_(control_.get(), data_.get(), capacity),
        reader_(control_.get(), data_.get(), capacity) {
    control_->read_pos = 0;
  }
  RingWriter& writer() { return writer_; }
  RingReader& reader() { return reader_; }
  RingControl& control() { return *control_; }
  uint8_t* data() { return data_.get(); }

 private:
  std::unique_ptr<RingControl> control_;
  std::unique_ptr<uint8_t[]> data_;
  RingWriter writer_;
  RingReader reader_;
};

std::vector<uint8_t> Pattern(size_t size, uint32_t seed) {
  std::vector<uint8_t> v(size);
  for (size_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 8));
  return v;
}

Status Write(RingWriter& w, uint32_t stream, const std::vector<uint8_t>& payload) {
  FrameHeader h{};
  h.stream_id = stream;
  h.type = kFrameMessage;
  ConstByteSpan part{payload.data(), payload.size()};
  return w.TryWrite(h, &part, 1);
}

void ExpectFrame(RingReader& r, uint32_t stream, const std::vector<uint8_t>& payload) {
  FrameView f;
  ASSERT_TRUE(r.Peek(&f).ok());
  EXPECT_EQ(f.header.stream_id, stream);
  EXPECT_EQ(f.header.type, kFrameMessage);
  ASSERT_EQ(f.payload_size(), payload.size());
  std::vector<uint8_t> got(f.payload_size());
  f.CopyPayloadTo(got.data());
  EXPECT_EQ(got, payload);
  r.Consume();
}

TEST(RingTest, EmptyRingReportsWouldBlock) {
  TestRing ring(4096);
  FrameView f;
  EXPECT_EQ(ring.reader().Peek(&f).code(), StatusCode::kWouldBlock);
  EXPECT_FALSE(ring.reader().MaybeReadable());
}

TEST(RingTest, FramesWrapAroundAtEveryOffset) {
  constexpr uint32_t kCapacity = 4096;
  // For every record-aligned starting offset, a frame whose payload
  // straddles the end of the ring must come out intact.
  for (uint32_t start = 0; start < kCapacity; start += kFrameAlignment) {
    TestRing ring(kCapacity);
    if (start >= kFrameHeaderSize) {
      auto filler = Pattern(start - kFrameHeaderSize, 1);
      ASSERT_TRUE(Write(ring.writer(), 1, filler).ok());
      ExpectFrame(ring.reader(), 1, filler);
    } else if (start != 0) {
      continue;  // a record is at least a header long
    }
    for (size_t size : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{100}, size_t{2000}}) {
      auto payload = Pattern(size, start + size);
      ASSERT_TRUE(Write(ring.writer(), 2, payload).ok()) << "start " << start << " size " << size;
      ExpectFrame(ring.reader(), 2, payload);
    }
  }
}

TEST(RingTest, FramesFromZeroBytesToCapacity) {
  constexpr uint32_t kCapacity = 8192;
  TestRing ring(kCapacity);
  const size_t max = ring.writer().max_frame_payload();
  EXPECT_EQ(max, kCapacity - 2 * kFrameHeaderSize);  // its header, the next seal slot
  for (size_t size = 0; size <= max; size += (size < 64 ? 1 : 509)) {
    auto payload = Pattern(size, static_cast<uint32_t>(size));
    ASSERT_TRUE(Write(ring.writer(), 3, payload).ok()) << size;
    ExpectFrame(ring.reader(), 3, payload);
  }
  auto biggest = Pattern(max, 9);
  ASSERT_TRUE(Write(ring.writer(), 3, biggest).ok());
  ExpectFrame(ring.reader(), 3, biggest);
}

TEST(RingTest, OversizedFrameIsRejected) {
  TestRing ring(4096);
  auto payload = Pattern(ring.writer().max_frame_payload() + 1, 0);
  EXPECT_EQ(Write(ring.writer(), 1, payload).code(), StatusCode::kInvalidArgument);
}

TEST(RingTest, FullRingBlocksUntilConsumed) {
  TestRing ring(4096);
  auto payload = Pattern(992, 5);  // records of 1008 bytes: four fit, a fifth does not
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Write(ring.writer(), i, payload).ok());
  EXPECT_EQ(Write(ring.writer(), 4, payload).code(), StatusCode::kWouldBlock);
  size_t writable = 0;
  ASSERT_TRUE(ring.writer().WritableBytes(&writable).ok());
  // What is left, less the next seal slot and the frame's own header.
  EXPECT_EQ(writable, 4096 - 4 * FrameRecordSize(992) - 2 * kFrameHeaderSize);
  ExpectFrame(ring.reader(), 0, payload);
  ASSERT_TRUE(Write(ring.writer(), 4, payload).ok());
  for (int i = 1; i <= 4; ++i) ExpectFrame(ring.reader(), i, payload);
  FrameView f;
  EXPECT_EQ(ring.reader().Peek(&f).code(), StatusCode::kWouldBlock);
}

TEST(RingTest, ExactlyFullRingIsUsable) {
  TestRing ring(4096);
  auto payload = Pattern(ring.writer().max_frame_payload(), 1);
  ASSERT_TRUE(Write(ring.writer(), 1, payload).ok());
  EXPECT_EQ(Write(ring.writer(), 2, {}).code(), StatusCode::kWouldBlock);
  ExpectFrame(ring.reader(), 1, payload);
  ASSERT_TRUE(Write(ring.writer(), 2, {}).ok());
  ExpectFrame(ring.reader(), 2, {});
}

TEST(RingTest, ReserveCommitWritesInPlace) {
  TestRing ring(4096);
  // Move to an offset where the payload wraps.
  auto filler = Pattern(4096 - 64 - kFrameHeaderSize, 0);
  ASSERT_TRUE(Write(ring.writer(), 1, filler).ok());
  ExpectFrame(ring.reader(), 1, filler);
  MutableByteSpan spans[2];
  ASSERT_TRUE(ring.writer().Reserve(200, spans).ok());
  EXPECT_EQ(spans[0].size + spans[1].size, 200u);
  EXPECT_GT(spans[1].size, 0u) << "payload should wrap";
  auto payload = Pattern(200, 7);
  std::memcpy(spans[0].data, payload.data(), spans[0].size);
  std::memcpy(spans[1].data, payload.data() + spans[0].size, spans[1].size);
  FrameHeader h{};
  h.stream_id = 9;
  h.type = kFrameMessage;
  ring.writer().Commit(h);
  ExpectFrame(ring.reader(), 9, payload);
}

// A payload much larger than the ring goes through as chunks, written in
// place (no temporary copy of the whole payload) while the reader drains.
TEST(RingTest, ChunkedPayloadLargerThanRing) {
  TestRing ring(4096);
  auto payload = Pattern(1 << 20, 3);
  std::vector<uint8_t> received;
  size_t sent = 0;
  while (received.size() < payload.size()) {
    size_t writable = 0;
    ASSERT_TRUE(ring.writer().WritableBytes(&writable).ok());
    const size_t chunk = std::min({writable, payload.size() - sent, size_t{1500}});
    if (sent < payload.size() && chunk > 0) {
      MutableByteSpan spans[2];
      ASSERT_TRUE(ring.writer().Reserve(chunk, spans).ok());
      std::memcpy(spans[0].data, payload.data() + sent, spans[0].size);
      std::memcpy(spans[1].data, payload.data() + sent + spans[0].size, spans[1].size);
      FrameHeader h{};
      h.type = kFrameMessage;
      h.flags = sent + chunk < payload.size() ? kFlagMoreChunks : 0;
      ring.writer().Commit(h);
      sent += chunk;
    }
    FrameView f;
    Status s = ring.reader().Peek(&f);
    if (s.code() == StatusCode::kWouldBlock) continue;
    ASSERT_TRUE(s.ok());
    const size_t old = received.size();
    received.resize(old + f.payload_size());
    f.CopyPayloadTo(received.data() + old);
    EXPECT_EQ((f.header.flags & kFlagMoreChunks) != 0, received.size() < payload.size());
    ring.reader().Consume();
  }
  EXPECT_EQ(received, payload);
}

TEST(RingTest, RandomizedTrafficPreservesOrderAndContent) {
  TestRing ring(1 << 14);
  std::mt19937 rng(42);
  uint32_t next_write = 0, next_read = 0;
  std::vector<size_t> sizes;
  for (int step = 0; step < 200000; ++step) {
    if (rng() % 2) {
      size_t size = rng() % 64 == 0 ? rng() % 8000 : rng() % 100;
      Status s = Write(ring.writer(), next_write, Pattern(size, next_write));
      if (s.ok()) {
        sizes.push_back(size);
        ++next_write;
      } else {
        ASSERT_EQ(s.code(), StatusCode::kWouldBlock);
      }
    } else if (next_read < next_write) {
      ExpectFrame(ring.reader(), next_read, Pattern(sizes[next_read], next_read));
      ++next_read;
    }
  }
  EXPECT_GT(next_read, 50000u);
}

// The writer zeroes the next record's seal slot before it seals a record, so
// whatever an earlier lap left there can never pass for a fresh record, even
// where the seal values repeat (every 2^15 records of 16 bytes = 512 KiB).
TEST(RingTest, StaleRecordFromAnEarlierLapIsNotReadAsNew) {
  constexpr uint32_t kCapacity = 512 * 1024;
  ASSERT_EQ(FrameSeal(0), FrameSeal(kCapacity)) << "test needs a ring where seals repeat";
  TestRing ring(kCapacity);
  // Lap 1: empty frames everywhere, so every 16-byte slot holds a header
  // sealed for its lap-1 position.
  const size_t lap = kCapacity / FrameRecordSize(0);
  for (size_t i = 0; i < lap; ++i) {
    ASSERT_TRUE(Write(ring.writer(), 1, {}).ok()) << i;
    ExpectFrame(ring.reader(), 1, {});
  }
  // Lap 2: one 16-byte frame; the slot after it still holds a lap-1 header
  // whose seal equals the one expected there now.
  auto payload = Pattern(16, 2);
  ASSERT_TRUE(Write(ring.writer(), 2, payload).ok());
  ExpectFrame(ring.reader(), 2, payload);
  FrameView f;
  EXPECT_EQ(ring.reader().Peek(&f).code(), StatusCode::kWouldBlock);
  EXPECT_FALSE(ring.reader().MaybeReadable());
}

// ---- a peer that corrupts the control block or the frames

// The seal a corrupting peer stores at the reader's next record.
void StoreSeal(TestRing& ring, uint64_t pos, uint16_t seal) {
  ring_internal::SealAt(ring.data(), 4095, pos)->store(seal);
}

// The reader's next Peek must fail as CORRUPT, saying `why`.
void ExpectPeekCorrupt(TestRing& ring, const std::string& why) {
  FrameView f;
  Status s = ring.reader().Peek(&f);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_NE(s.message().find(why), std::string::npos) << s.ToString();
}

TEST(RingCorruptionTest, SealThatIsNotTheExpectedOneIsCorrupt) {
  TestRing ring(4096);
  ASSERT_TRUE(Write(ring.writer(), 1, Pattern(8, 0)).ok());
  StoreSeal(ring, 0, static_cast<uint16_t>(FrameSeal(0) + 3));
  ExpectPeekCorrupt(ring, "frame seal 32771 at position 0 is not the expected 32768");
}

TEST(RingCorruptionTest, SealWithoutTheHighBitIsCorrupt) {
  TestRing ring(4096);
  StoreSeal(ring, 0, 1);  // any non-zero value claims a record
  FrameView f;
  EXPECT_EQ(ring.reader().Peek(&f).code(), StatusCode::kCorrupt);
  EXPECT_TRUE(ring.reader().MaybeReadable()) << "a claimed record must wake the reader";
}

TEST(RingCorruptionTest, FrameLengthBeyondTheLargestFrame) {
  TestRing ring(4096);
  ASSERT_TRUE(Write(ring.writer(), 1, Pattern(16, 0)).ok());
  // The peer rewrites the header's length after sealing.
  const uint32_t evil = 4096 - 2 * kFrameHeaderSize + 1;
  std::memcpy(ring.data(), &evil, sizeof(evil));
  ExpectPeekCorrupt(ring, "frame length 4065 exceeds the ring's largest frame (4064 bytes)");
}

TEST(RingCorruptionTest, FrameLengthLargerThanRing) {
  TestRing ring(4096);
  ASSERT_TRUE(Write(ring.writer(), 1, {}).ok());
  const uint32_t evil = 0xffffffffu;
  std::memcpy(ring.data(), &evil, sizeof(evil));  // the seal stays valid
  FrameView f;
  EXPECT_EQ(ring.reader().Peek(&f).code(), StatusCode::kCorrupt);
}

TEST(RingCorruptionTest, ReadPositionAheadOfWriter) {
  TestRing ring(4096);
  ring.control().read_pos = 64;  // the consumer claims to have read unwritten bytes
  size_t writable = 0;
  Status s = ring.writer().WritableBytes(&writable);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_NE(s.message().find("read position"), std::string::npos) << s.ToString();
}

TEST(RingCorruptionTest, ReadPositionMovingBackwards) {
  TestRing ring(4096);
  auto payload = Pattern(2000, 0);
  ASSERT_TRUE(Write(ring.writer(), 1, payload).ok());
  ExpectFrame(ring.reader(), 1, payload);
  ASSERT_TRUE(Write(ring.writer(), 2, payload).ok());
  size_t writable = 0;
  ASSERT_TRUE(ring.writer().WritableBytes(&writable).ok());  // observes read_pos 2016 (one record)
  ring.control().read_pos = 0;
  // The writer trusts its cached (validated) position until it runs out of
  // room; the next fresh look must catch the step backwards.
  Status s;
  for (int i = 0; i < 4 && s.ok(); ++i) s = Write(ring.writer(), 3, payload);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt) << s.ToString();
}

}  // namespace
}  // namespace ipc
}  // namespace grpc_shm
