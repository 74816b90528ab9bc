// LargeMessageBuffer and its pool: a released buffer is reused by the next
// large message, the announced length still bounds what a reused (longer)
// buffer accepts, and the idle trim's release empties the pool.
#include "plugin/transport/large_message.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace grpc_shm {
namespace transport {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// A frame whose payload is `bytes`, as the ring would show it.
ipc::FrameView FrameOf(const std::vector<uint8_t>& bytes) {
  ipc::FrameView frame{};
  frame.header.payload_size = static_cast<uint32_t>(bytes.size());
  frame.parts[0] = {bytes.data(), bytes.size()};
  return frame;
}

class LargeMessageTest : public ::testing::Test {
 protected:
  void SetUp() override { ReleasePooledLargeBuffers(); }
  void TearDown() override { ReleasePooledLargeBuffers(); }
};

TEST_F(LargeMessageTest, AReleasedBufferIsReusedAndStillBoundedByTheNewLength) {
  const std::vector<uint8_t> chunk(kMiB, 'a');
  const uint8_t* first_data;
  {
    auto buffer = LargeMessageBuffer::Create(8 * kMiB);
    ASSERT_NE(buffer, nullptr);
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(buffer->Append(FrameOf(chunk)));
    EXPECT_FALSE(buffer->Append(FrameOf(chunk))) << "accepted more than the announced length";
    grpc_core::Slice slice = buffer->TakeSlice();
    ASSERT_EQ(slice.size(), 8 * kMiB);
    first_data = slice.data();
    EXPECT_EQ(PooledLargeBuffers(), 0u) << "pooled while gRPC still holds the slice";
  }
  ASSERT_EQ(PooledLargeBuffers(), 1u) << "a released slice's buffer must return to the pool";

  // A shorter message reuses the 8 MiB buffer but accepts only its own 5 MiB.
  auto reused = LargeMessageBuffer::Create(5 * kMiB);
  ASSERT_NE(reused, nullptr);
  EXPECT_EQ(PooledLargeBuffers(), 0u);
  const std::vector<uint8_t> other(kMiB, 'b');
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(reused->Append(FrameOf(other)));
  EXPECT_FALSE(reused->Append(FrameOf(other))) << "a reused buffer accepted past the new length";
  grpc_core::Slice slice = reused->TakeSlice();
  EXPECT_EQ(slice.data(), first_data) << "the pooled buffer was not reused";
  ASSERT_EQ(slice.size(), 5 * kMiB);
  for (size_t i = 0; i < slice.size(); i += 4096) ASSERT_EQ(slice.data()[i], 'b');
}

TEST_F(LargeMessageTest, AnUnfinishedMessageIsNotPooled) {
  {
    auto buffer = LargeMessageBuffer::Create(6 * kMiB);
    ASSERT_NE(buffer, nullptr);
    ASSERT_TRUE(buffer->Append(FrameOf(std::vector<uint8_t>(kMiB, 'c'))));
  }  // its stream or connection ended mid-message
  EXPECT_EQ(PooledLargeBuffers(), 0u);
}

TEST_F(LargeMessageTest, AMessageHeldAcrossAReleaseIsNotPooledAfterIt) {
  auto buffer = LargeMessageBuffer::Create(4 * kMiB);
  ASSERT_NE(buffer, nullptr);
  grpc_core::Slice held = buffer->TakeSlice();  // a handler still has it
  ReleasePooledLargeBuffers();                  // e.g. its connection closed
  held = grpc_core::Slice();
  EXPECT_EQ(PooledLargeBuffers(), 0u) << "a closed connection's message came back to the pool";
}

TEST_F(LargeMessageTest, ThePoolIsBoundedAndEmptiedByTheIdleRelease) {
  std::vector<grpc_core::Slice> slices;
  for (size_t i = 0; i < kPooledLargeBuffers + 2; ++i) {
    auto buffer = LargeMessageBuffer::Create(4 * kMiB);
    ASSERT_NE(buffer, nullptr);
    slices.push_back(buffer->TakeSlice());
  }
  slices.clear();
  EXPECT_EQ(PooledLargeBuffers(), kPooledLargeBuffers);
  // One buffer longer than the pool's byte bound is never kept.
  { auto huge = LargeMessageBuffer::Create(kPooledLargeBytes + kMiB); }
  EXPECT_EQ(PooledLargeBuffers(), kPooledLargeBuffers);
  ReleasePooledLargeBuffers();
  EXPECT_EQ(PooledLargeBuffers(), 0u);
}

}  // namespace
}  // namespace transport
}  // namespace grpc_shm
