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
// Not thread-safe: the owner (the transport) holds its lock around every
// call, which also serialises use of the connection's writer side.
#ifndef GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_
#define GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "plugin/ipc/connection.h"
#include "src/core/lib/iomgr/error.h"
#include "src/core/lib/slice/slice_buffer.h"

namespace grpc_shm {
namespace transport {

class OutboundQueue {
 public:
  // Runs once per message, with OK when its last chunk is in the ring, or
  // with an error when the message is dropped.
  using MessageDone = std::function<void(grpc_error_handle)>;

  // A control or metadata frame with an owned payload.
  void PushFrame(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                 std::string payload);
  // A message; its bytes are moved out of `message`.
  void PushMessage(uint32_t stream_id, uint8_t flags, grpc_core::SliceBuffer* message,
                   MessageDone done);

  // Writes as much as fits. OK when the queue is empty, kWouldBlock when it
  // waits for space (see payload_bytes_needed), another error when the
  // connection is broken.
  ipc::Status Flush(ipc::Connection* connection);
  bool empty() const { return items_.empty(); }
  // Payload bytes the next frame needs, for Connection::PrepareToSleep.
  size_t payload_bytes_needed(const ipc::Connection& connection) const;

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
    size_t offset = 0;  // bytes of `message` already in the ring
    MessageDone done;
  };
  static size_t ChunkLimit(const ipc::Connection& connection);
  ipc::Status WriteMessageChunks(ipc::Connection* connection, Item* item);

  std::deque<Item> items_;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_OUTBOUND_QUEUE_H_
