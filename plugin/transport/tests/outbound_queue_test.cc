// OutboundQueue against a real connection pair in one process: per-stream
// windows hold back only their own stream, a started message always
// finishes, and a peer cannot grow a window past its size.
#include "plugin/transport/outbound_queue.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "plugin/ipc/connection.h"
#include "test_address.h"

namespace grpc_shm {
namespace transport {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

struct Received {
  uint32_t stream_id;
  uint8_t type;
  size_t bytes;  // whole message (chunks joined) or frame payload
};

class OutboundQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { ConnectPair(32 * kMiB); }  // everything below fits at once

  void ConnectPair(uint32_t ring_bytes) {
    static int pairs = 0;
    const std::string address = grpc_shm::testing::TestIpcAddress(
        "grpc-shm-outbound-queue-test-" + std::to_string(getpid()) + "-" + std::to_string(pairs++));
    std::unique_ptr<ipc::Listener> listener;
    ipc::Listener::Options listen_options;
    listen_options.max_ring_bytes = ring_bytes;
    ASSERT_TRUE(ipc::Listener::Listen(address, listen_options, &listener).ok());
    ipc::ConnectionOptions options = ipc::DefaultConnectionOptions();
    options.ring_bytes = ring_bytes;
    ipc::Status connected;
    std::thread client([&] { connected = ipc::Connect(address, options, &receiver_); });
    ipc::Status accepted = listener->Accept(&sender_, 5000);
    client.join();
    ASSERT_TRUE(accepted.ok()) << accepted.ToString();
    ASSERT_TRUE(connected.ok()) << connected.ToString();
  }

  void PushMessage(uint32_t stream_id, size_t bytes) {
    grpc_core::SliceBuffer message;
    message.Append(grpc_core::Slice::FromCopiedString(std::string(bytes, 'm')));
    queue_.PushMessage(stream_id, 0, message, [this](grpc_error_handle error) {
      ++(error.ok() ? messages_sent_ : messages_dropped_);
    });
  }

  // Everything in the receive ring now, chunked messages joined.
  std::vector<Received> ReadAll() {
    std::vector<Received> got;
    size_t assembling = 0;
    ipc::FrameView frame;
    while (receiver_->Peek(&frame).ok()) {
      const ipc::FrameHeader& h = frame.header;
      if (h.type == ipc::kFrameMessage && (h.flags & ipc::kFlagMoreChunks)) {
        assembling += frame.payload_size();
      } else {
        got.push_back({h.stream_id, h.type, assembling + frame.payload_size()});
        assembling = 0;
      }
      receiver_->Consume();
    }
    return got;
  }

  std::unique_ptr<ipc::Connection> sender_, receiver_;
  OutboundQueue queue_;
  int messages_sent_ = 0;
  int messages_dropped_ = 0;
};

// gRPC's retry filter sends one cached buffer with every attempt: a queued
// message references the caller's slices and leaves them as they were,
// whether it is written or dropped.
TEST_F(OutboundQueueTest, MessagesLeaveTheCallersBufferIntact) {
  grpc_core::SliceBuffer sent, dropped;
  sent.Append(grpc_core::Slice::FromCopiedString("first half "));
  sent.Append(grpc_core::Slice::FromCopiedString("second half"));
  dropped.Append(grpc_core::Slice::FromCopiedString("never written"));
  queue_.PushMessage(1, 0, sent, [this](grpc_error_handle e) { ++messages_sent_; });
  queue_.HoldStream(3);
  queue_.PushMessage(3, 0, dropped, [this](grpc_error_handle e) { ++messages_dropped_; });
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  queue_.DropStream(3, GRPC_ERROR_CREATE("cancelled"));
  EXPECT_EQ(messages_sent_, 1);
  EXPECT_EQ(messages_dropped_, 1);
  std::vector<Received> got = ReadAll();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, sent.Length());
  EXPECT_EQ(sent.JoinIntoString(), "first half second half");
  EXPECT_EQ(dropped.JoinIntoString(), "never written");
}

TEST_F(OutboundQueueTest, StreamOutOfWindowWaitsWhileOtherStreamsPass) {
  const size_t big = kStreamWindow + 1;  // starts, then overdraws
  PushMessage(1, big);
  PushMessage(1, 10);  // waits: stream 1's window is spent
  queue_.PushFrame(ipc::kFrameTrailingMetadata, 1, 0, 0, "t1");  // waits behind it
  PushMessage(3, 20);
  queue_.PushFrame(ipc::kFrameTrailingMetadata, 3, 0, 0, "t3");

  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  EXPECT_FALSE(queue_.waiting_for_ring());
  EXPECT_FALSE(queue_.empty());
  std::vector<Received> got = ReadAll();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].stream_id, 1u);
  EXPECT_EQ(got[0].bytes, big);
  EXPECT_EQ(got[1].stream_id, 3u);
  EXPECT_EQ(got[1].bytes, 20u);
  EXPECT_EQ(got[2].stream_id, 3u);
  EXPECT_EQ(got[2].type, ipc::kFrameTrailingMetadata);
  EXPECT_EQ(messages_sent_, 2);

  // Window for someone else changes nothing; window back for stream 1
  // releases its message and then its trailers, in order.
  queue_.GrantWindow(3, 1 << 20);
  queue_.GrantWindow(77, 1 << 20);
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  EXPECT_TRUE(ReadAll().empty());
  queue_.GrantWindow(1, static_cast<uint32_t>(big));
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  EXPECT_TRUE(queue_.empty());
  got = ReadAll();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].stream_id, 1u);
  EXPECT_EQ(got[0].bytes, 10u);
  EXPECT_EQ(got[1].type, ipc::kFrameTrailingMetadata);
  EXPECT_EQ(messages_sent_, 3);
}

TEST_F(OutboundQueueTest, PeerCannotGrowAWindowPastItsSize) {
  PushMessage(5, 1);
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  for (int i = 0; i < 8; ++i) queue_.GrantWindow(5, UINT32_MAX);
  // Five 1 MiB messages: four fit a 4 MiB window, the fifth must wait.
  for (int i = 0; i < 5; ++i) PushMessage(5, kMiB);
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  std::vector<Received> got = ReadAll();
  ASSERT_EQ(got.size(), 5u);  // the 1-byte message and four of the five
  EXPECT_FALSE(queue_.empty());
  EXPECT_EQ(messages_sent_, 5);
}

TEST_F(OutboundQueueTest, ForgottenStreamIgnoresLateWindow) {
  PushMessage(7, kStreamWindow);
  PushMessage(7, 1);
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  EXPECT_EQ(ReadAll().size(), 1u);
  queue_.DropMessagesOf(7, absl::CancelledError("gone"));
  EXPECT_EQ(messages_dropped_, 1);
  EXPECT_TRUE(queue_.empty());
  queue_.ForgetStream(7);
  // A late (or forged) window for the forgotten stream must not leave a
  // window behind: were it kept (1 byte), the second message would wait.
  queue_.GrantWindow(7, 1);
  PushMessage(7, kMiB);
  PushMessage(7, kMiB);
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  EXPECT_EQ(ReadAll().size(), 2u);
  EXPECT_TRUE(queue_.empty());
}

// The cause of full-duplex stalls: our grant for the peer's stream sat
// behind our own message on that stream, which waited for the peer's grant.
TEST_F(OutboundQueueTest, ControlFramesAreNeverHeldBehindAMessageWaitingForWindow) {
  PushMessage(1, kStreamWindow);  // spends stream 1's window
  PushMessage(1, 10);             // waits for window
  queue_.PushControl(ipc::kFrameWindowUpdate, 1, 1 << 20);
  queue_.PushControl(ipc::kFramePingAck, 0, 7);
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  std::vector<Received> got = ReadAll();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].type, ipc::kFrameWindowUpdate);
  EXPECT_EQ(got[0].stream_id, 1u);
  EXPECT_EQ(got[1].type, ipc::kFramePingAck);
  EXPECT_EQ(got[2].type, ipc::kFrameMessage);
  EXPECT_EQ(got[2].bytes, static_cast<size_t>(kStreamWindow));
  EXPECT_EQ(queue_.control_frames(), 0u);
  EXPECT_FALSE(queue_.empty());  // the 10-byte message still waits
}

TEST_F(OutboundQueueTest, HeldStreamSendsNothingUntilReleased) {
  queue_.HoldStream(3);
  queue_.PushFrame(ipc::kFrameInitialMetadata, 3, 0, 0, "h3");
  PushMessage(3, 5);
  queue_.PushFrame(ipc::kFrameInitialMetadata, 5, 0, 0, "h5");
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  std::vector<Received> got = ReadAll();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].stream_id, 5u);
  queue_.ReleaseStream(3);
  ASSERT_TRUE(queue_.Flush(sender_.get()).ok());
  got = ReadAll();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, ipc::kFrameInitialMetadata);
  EXPECT_EQ(got[1].type, ipc::kFrameMessage);
  EXPECT_TRUE(queue_.empty());
  // A held stream that is dropped fails its messages and leaves nothing.
  queue_.HoldStream(7);
  PushMessage(7, 5);
  queue_.DropStream(7, absl::CancelledError("never opened"));
  EXPECT_EQ(messages_dropped_, 1);
  EXPECT_TRUE(queue_.empty());
}

// The receiver holds at most one unfinished message per connection, so a
// message whose chunks stopped at a full ring must finish before any other
// stream's message starts; control frames may come in between.
TEST_F(OutboundQueueTest, ChunksOfTwoMessagesNeverInterleave) {
  ConnectPair(64 * 1024);
  PushMessage(1, 1 << 20);
  PushMessage(3, 1 << 20);
  int flushes = 0;
  uint32_t assembling = 0;  // stream with an unfinished message at the receiver
  int messages = 0;
  while (!queue_.empty() && flushes < 10000) {
    ipc::Status status = queue_.Flush(sender_.get());
    ASSERT_TRUE(status.ok() || status.code() == ipc::StatusCode::kWouldBlock);
    ++flushes;
    if (flushes % 3 == 0) queue_.PushControl(ipc::kFramePingAck, 0, flushes);
    ipc::FrameView frame;
    while (receiver_->Peek(&frame).ok()) {
      const ipc::FrameHeader& h = frame.header;
      if (h.type == ipc::kFrameMessage) {
        if (assembling != 0) {
          ASSERT_EQ(h.stream_id, assembling) << "interleaved chunks";
        }
        assembling = (h.flags & ipc::kFlagMoreChunks) ? h.stream_id : 0;
        if (assembling == 0) ++messages;
      }
      receiver_->Consume();
    }
  }
  EXPECT_EQ(messages, 2);
  EXPECT_GT(flushes, 2);  // the ring really did fill mid-message
}

}  // namespace
}  // namespace transport
}  // namespace grpc_shm
