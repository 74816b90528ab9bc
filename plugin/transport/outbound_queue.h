// Frames waiting to enter the send ring, in the order gRPC produced them.
//
// gRPC threads must never block on a full ring, so every frame goes through
// this queue: it is written at once when there is room, and otherwise stays
// here until the poller, woken by the peer freeing space, flushes it. A
// message is kept as the caller's SliceBuffer and copied into the ring one
// chunk at a time straight from its slices: a 64 MiB message through a 1 MiB
// ring costs no staging copy, and its sender learns it is done (on_complete)
// only when its last chunk is in the ring, which is the back-pressure.
//
// Per-stream flow control, as HTTP/2 gives every stream a window: a stream
// may start a message only while its window (message bytes the receiver has
// room for) is above zero, and the receiver hands window back as gRPC takes
// the messages (kFrameWindowUpdate). A started message always finishes, so a
// message larger than the window still goes through, one at a time. A stream
// whose window is spent waits, with the frames queued behind it on that
// stream, while other streams' frames go ahead: a stream nobody reads cannot
// stall the others, nor pile up more than a window and a message at the
// receiver.
//
// Not thread-safe: the owner (the transport) holds its lock around every
// call, which also serialises use of the connection's writer side.
#ifndef GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_
#define GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include "plugin/ipc/connection.h"
#include "src/core/lib/iomgr/error.h"
#include "src/core/lib/slice/slice_buffer.h"

namespace grpc_shm {
namespace transport {

class OutboundQueue {
 public:
  // The window every stream starts with; receivers return window in steps
  // of a quarter of it.
  static constexpr int64_t kStreamWindow = 4 << 20;

  // Runs once per message, with OK when its last chunk is in the ring, or
  // with an error when the message is dropped.
  using MessageDone = std::function<void(grpc_error_handle)>;

  // A control or metadata frame with an owned payload.
  void PushFrame(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                 std::string payload);
  // A message; its bytes are moved out of `message`.
  void PushMessage(uint32_t stream_id, uint8_t flags, grpc_core::SliceBuffer* message,
                   MessageDone done);

  // Writes as much as fits. OK when all that may be sent is in the ring
  // (frames of streams waiting for window may remain), kWouldBlock when it
  // waits for ring space (see payload_bytes_needed), another error when the
  // connection is broken.
  ipc::Status Flush(ipc::Connection* connection);
  bool empty() const { return items_.empty(); }
  // The last Flush stopped at a full ring.
  bool waiting_for_ring() const { return waiting_for_ring_; }
  // Payload bytes the frame that did not fit needs, for
  // Connection::PrepareToSleep.
  size_t payload_bytes_needed() const { return space_needed_; }

  // The peer took `bytes` more of `stream_id`'s messages (kFrameWindowUpdate).
  // Call Flush() next.
  void GrantWindow(uint32_t stream_id, uint32_t bytes);
  // The stream is gone: forget its window.
  void ForgetStream(uint32_t stream_id) { windows_.erase(stream_id); }

  // Removes the unsent messages of `stream_id` (a cancelled stream), running
  // their callbacks with `error`. A message partly in the ring stays: the
  // peer must see its remaining chunks to keep framing intact.
  void DropMessagesOf(uint32_t stream_id, grpc_error_handle error);
  // Empties the queue (connection gone), failing every message with `error`.
  void Clear(grpc_error_handle error);

 private:
  struct Item {
    ipc::FrameHeader header{};
    std::string payload;
    bool is_message = false;
    grpc_core::SliceBuffer message;
    size_t offset = 0;     // bytes of `message` already in the ring
    bool charged = false;  // its length was taken from the stream's window
    MessageDone done;
  };
  static size_t ChunkLimit(const ipc::Connection& connection);
  ipc::Status WriteMessageChunks(ipc::Connection* connection, Item* item);

  std::deque<Item> items_;
  // Window left per stream that has queued a message; absent: kStreamWindow.
  std::unordered_map<uint32_t, int64_t> windows_;
  bool waiting_for_ring_ = false;
  size_t space_needed_ = 0;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_
