// Frames waiting to enter the send ring.
//
// gRPC threads must never block on a full ring, so every frame goes through
// this queue: it is written at once when there is room, and otherwise stays
// here until the poller, woken by the peer freeing space, flushes it. A
// message is kept as the caller's SliceBuffer and copied into the ring one
// chunk at a time straight from its slices: a 64 MiB message through a 1 MiB
// ring costs no staging copy, and its sender learns it is done (on_complete)
// only when its last chunk is in the ring, which is the back-pressure.
//
// Two kinds of frames, written in this order by every Flush:
// - control frames (window updates, ping acks, goaways, settings) are never
//   held back by anything but ring space: a stream whose message waits for
//   window must not hold up the grant that would let the peer's messages,
//   and so eventually our own window, move (both directions blocked at once
//   would otherwise wait on each other for ever);
// - stream frames (metadata, messages, resets) keep their stream's order and
//   take turns across streams, one frame per turn.
//
// Per-stream flow control, as HTTP/2 gives every stream a window: a stream
// may start a message only while its window is above zero; a message costs
// MessageCharge(its length), and the receiver hands window back as gRPC takes
// the messages (kFrameWindowUpdate). A stream whose window is spent waits,
// with the frames queued behind it on that stream, while other streams'
// frames go ahead.
//
// One message at a time is in the ring: once a message's first chunk is
// written, only control frames may come between its chunks. A message
// larger than the window still goes through, and the receiver never holds
// more than one unfinished message per connection (it enforces this).
//
// Not thread-safe: the owner (the transport) holds its lock around every
// call, which also serialises use of the connection's writer side. Every
// operation is O(frames written + streams that change state).
#ifndef GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_
#define GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include "plugin/ipc/connection.h"
#include "plugin/transport/limits.h"
#include "src/core/lib/iomgr/error.h"
#include "src/core/lib/slice/slice_buffer.h"

namespace grpc_shm {
namespace transport {

class OutboundQueue {
 public:
  // Runs once per message, with OK when its last chunk is in the ring, or
  // with an error when the message is dropped.
  using MessageDone = std::function<void(grpc_error_handle)>;

  // A frame that waits for nothing but ring space.
  void PushControl(uint8_t type, uint32_t stream_id, uint32_t aux, std::string payload = {},
                   uint8_t flags = 0);
  // A metadata or reset frame, after the stream's earlier frames.
  void PushFrame(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                 std::string payload);
  // A message. Its slices are referenced, not taken: `message` stays as it
  // is, as gRPC's retry filter needs (it sends the same buffer again with
  // each attempt; chttp2 references it too).
  void PushMessage(uint32_t stream_id, uint8_t flags, const grpc_core::SliceBuffer& message,
                   MessageDone done);

  // Writes as much as fits. OK when all that may be sent is in the ring
  // (frames of streams waiting for window, or held, may remain), kWouldBlock
  // when it waits for ring space (see payload_bytes_needed), another error
  // when the connection is broken.
  ipc::Status Flush(ipc::Connection* connection);
  bool empty() const { return queued_ == 0; }
  // Times Flush has put frames into the ring, ever (tells an idle
  // connection from a busy one).
  uint64_t flushes_that_wrote() const { return flushes_that_wrote_; }
  // Control frames not yet in the ring.
  size_t control_frames() const { return control_.size(); }
  // The last Flush stopped at a full ring.
  bool waiting_for_ring() const { return waiting_for_ring_; }
  // Payload bytes the frame that did not fit needs, for
  // Connection::PrepareToSleep.
  size_t payload_bytes_needed() const { return space_needed_; }

  // The peer took `bytes` more of `stream_id`'s messages (kFrameWindowUpdate).
  // Call Flush() next.
  void GrantWindow(uint32_t stream_id, uint32_t bytes);
  // A held stream's frames stay queued, unsent, until ReleaseStream (a client
  // stream waiting for the server's concurrency limit).
  void HoldStream(uint32_t stream_id);
  void ReleaseStream(uint32_t stream_id);
  // The stream is gone: forget its window once its remaining frames (the
  // rest of a message partly in the ring, a reset) are written.
  void ForgetStream(uint32_t stream_id);

  // Removes the unsent messages of `stream_id` (a cancelled stream), running
  // their callbacks with `error`. A message partly in the ring stays: the
  // peer must see its remaining chunks to keep framing intact.
  void DropMessagesOf(uint32_t stream_id, grpc_error_handle error);
  // Removes every frame of a stream that never reached the wire (held).
  void DropStream(uint32_t stream_id, grpc_error_handle error);
  // Empties the queue (connection gone), failing every message with `error`.
  void Clear(grpc_error_handle error);

 private:
  struct Item {
    ipc::FrameHeader header{};
    std::string payload;
    bool is_message = false;
    grpc_core::SliceBuffer message;
    size_t offset = 0;     // bytes of `message` already in the ring
    bool charged = false;  // its charge was taken from the stream's window
    MessageDone done;
  };
  // A control frame: no message, so none of Item's slice storage (10000 of
  // them may be queued for a peer that does not read).
  struct ControlItem {
    ipc::FrameHeader header{};
    std::string payload;
  };
  struct StreamQueue {
    std::deque<Item> items;
    int64_t window = kStreamWindow;
    bool held = false;
    bool scheduled = false;  // in ready_
    bool forgotten = false;  // erase once its last frame is written
  };
  static size_t ChunkLimit(const ipc::Connection& connection);
  ipc::Status WriteMessageChunks(ipc::Connection* connection, Item* item);
  ipc::Status WriteFrame(ipc::Connection* connection, const ipc::FrameHeader& header,
                         const std::string& payload);
  // Frames go into the ring unannounced; the peer is woken (if it sleeps)
  // once per flush, or per chunk of a large message (Announce).
  void Wrote(ipc::Connection* connection, size_t payload_bytes);
  void Announce(ipc::Connection* connection);
  StreamQueue& QueueOf(uint32_t stream_id);
  // Gives the stream a turn if it has frames and is not held.
  void Schedule(uint32_t stream_id, StreamQueue* queue);
  // Records that the ring is full for a frame with `payload_bytes` to write.
  ipc::Status Blocked(size_t payload_bytes);

  std::deque<ControlItem> control_;
  std::unordered_map<uint32_t, StreamQueue> streams_;
  // Streams with a frame to send, in turn order. The front one is the
  // stream being written; a message partly in the ring keeps it there.
  std::deque<uint32_t> ready_;
  size_t queued_ = 0;  // items in control_ and every stream queue
  bool waiting_for_ring_ = false;
  size_t space_needed_ = 0;
  // Bytes written to the ring since the peer was last told (Announce).
  size_t unannounced_bytes_ = 0;
  uint64_t flushes_that_wrote_ = 0;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_
