#include "plugin/transport/outbound_queue.h"

#include <algorithm>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace grpc_shm {
namespace transport {

OutboundQueue::StreamQueue& OutboundQueue::QueueOf(uint32_t stream_id) {
  return streams_[stream_id];
}

void OutboundQueue::Schedule(uint32_t stream_id, StreamQueue* queue) {
  if (queue->scheduled || queue->held || queue->items.empty()) return;
  queue->scheduled = true;
  ready_.push_back(stream_id);
}

void OutboundQueue::PushControl(uint8_t type, uint32_t stream_id, uint32_t aux, std::string payload,
                                uint8_t flags) {
  ControlItem item;
  item.header.type = type;
  item.header.flags = flags;
  item.header.stream_id = stream_id;
  item.header.aux = aux;
  item.header.payload_size = static_cast<uint32_t>(payload.size());
  item.payload = std::move(payload);
  control_.push_back(std::move(item));
  ++queued_;
}

void OutboundQueue::PushFrame(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                              std::string payload) {
  Item item;
  item.header.type = type;
  item.header.stream_id = stream_id;
  item.header.flags = flags;
  item.header.aux = aux;
  item.header.payload_size = static_cast<uint32_t>(payload.size());
  item.payload = std::move(payload);
  StreamQueue& queue = QueueOf(stream_id);
  queue.items.push_back(std::move(item));
  ++queued_;
  Schedule(stream_id, &queue);
}

void OutboundQueue::PushMessage(uint32_t stream_id, uint8_t flags,
                                const grpc_core::SliceBuffer& message, MessageDone done) {
  Item item;
  item.header.type = ipc::kFrameMessage;
  item.header.stream_id = stream_id;
  item.header.flags = flags;
  item.is_message = true;
  item.message = message.Copy();  // references, no bytes copied
  item.done = std::move(done);
  StreamQueue& queue = QueueOf(stream_id);
  queue.items.push_back(std::move(item));
  ++queued_;
  Schedule(stream_id, &queue);
}

// A chunk of at most a quarter ring: the writer can refill the ring while
// the reader drains the rest, instead of waiting for it to empty completely.
size_t OutboundQueue::ChunkLimit(const ipc::Connection& connection) {
  size_t quarter = connection.send_ring_bytes() / 4 - ipc::kFrameHeaderSize;
  return std::min(quarter, connection.max_frame_payload());
}

void OutboundQueue::GrantWindow(uint32_t stream_id, uint32_t bytes) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;  // a stream we are done with
  StreamQueue& queue = it->second;
  // A peer cannot make a window grow without bound: at most what the
  // stream has sent plus a fresh window.
  queue.window = std::min<int64_t>(queue.window + bytes, kStreamWindow);
  if (queue.window > 0) Schedule(stream_id, &queue);
}

void OutboundQueue::HoldStream(uint32_t stream_id) { QueueOf(stream_id).held = true; }

void OutboundQueue::ReleaseStream(uint32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  it->second.held = false;
  Schedule(stream_id, &it->second);
}

void OutboundQueue::ForgetStream(uint32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  if (!it->second.items.empty()) {
    it->second.forgotten = true;
    return;
  }
  if (it->second.scheduled) {
    ready_.erase(std::find(ready_.begin(), ready_.end(), stream_id));
  }
  streams_.erase(it);
}

void OutboundQueue::Wrote(ipc::Connection* connection, size_t payload_bytes) {
  unannounced_bytes_ += ipc::kFrameHeaderSize + payload_bytes;
  // A message bigger than a chunk is announced chunk by chunk, so the peer
  // reads the first while we write the next.
  if (unannounced_bytes_ >= ChunkLimit(*connection)) Announce(connection);
}

void OutboundQueue::Announce(ipc::Connection* connection) {
  if (unannounced_bytes_ == 0) return;
  unannounced_bytes_ = 0;
  ++flushes_that_wrote_;
  connection->NotifyPeerOfData();
}

ipc::Status OutboundQueue::WriteMessageChunks(ipc::Connection* connection, Item* item) {
  const grpc_slice_buffer* slices = item->message.c_slice_buffer();
  const size_t total = item->message.Length();
  const size_t limit = ChunkLimit(*connection);
  absl::InlinedVector<ipc::ConstByteSpan, 8> parts;
  // An empty message is still one (empty) frame.
  do {
    size_t chunk = std::min(total - item->offset, limit);
    // Collect the spans of [offset, offset + chunk) across the slices.
    parts.clear();
    size_t skip = item->offset;
    size_t want = chunk;
    for (size_t i = 0; i < slices->count && want > 0; ++i) {
      size_t len = GRPC_SLICE_LENGTH(slices->slices[i]);
      if (skip >= len) {
        skip -= len;
        continue;
      }
      size_t take = std::min(len - skip, want);
      parts.push_back(ipc::ConstByteSpan{GRPC_SLICE_START_PTR(slices->slices[i]) + skip, take});
      skip = 0;
      want -= take;
    }
    ipc::FrameHeader header = item->header;
    header.payload_size = static_cast<uint32_t>(chunk);
    // The whole message's length, so the receiver can assemble a large one
    // in one buffer (large_message.h); 0 where it does not fit the field.
    header.aux = total <= UINT32_MAX ? static_cast<uint32_t>(total) : 0;
    if (item->offset + chunk < total) header.flags |= ipc::kFlagMoreChunks;
    ipc::Status status = connection->writer().TryWrite(header, parts.data(), parts.size());
    if (!status.ok()) return status;
    Wrote(connection, chunk);
    item->offset += chunk;
  } while (item->offset < total);
  return ipc::Status::Ok();
}

ipc::Status OutboundQueue::WriteFrame(ipc::Connection* connection, const ipc::FrameHeader& header,
                                      const std::string& payload) {
  ipc::ConstByteSpan part{reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
  ipc::Status status = connection->writer().TryWrite(header, &part, 1);
  if (status.ok()) Wrote(connection, payload.size());
  return status;
}

ipc::Status OutboundQueue::Blocked(size_t payload_bytes) {
  waiting_for_ring_ = true;
  space_needed_ = payload_bytes;
  return ipc::Status::WouldBlock();
}

ipc::Status OutboundQueue::Flush(ipc::Connection* connection) {
  waiting_for_ring_ = false;
  // Completions run once we are done with the queues (they may queue more).
  absl::InlinedVector<MessageDone, 4> sent;
  auto finish = [&](ipc::Status status) {
    // One wake-up for everything this flush wrote (a gRPC batch is often
    // initial metadata, a message and trailers: three frames, one doorbell),
    // and before we might wait for space: the peer must be reading.
    Announce(connection);
    for (auto& done : sent) {
      if (done) done(absl::OkStatus());
    }
    return status;
  };
  while (!control_.empty()) {
    const ControlItem& control = control_.front();
    ipc::Status status = WriteFrame(connection, control.header, control.payload);
    if (status.code() == ipc::StatusCode::kWouldBlock) {
      return finish(Blocked(control.payload.size()));
    }
    if (!status.ok()) return finish(status);
    control_.pop_front();
    --queued_;
  }
  while (!ready_.empty()) {
    const uint32_t id = ready_.front();
    StreamQueue& queue = streams_.at(id);
    if (queue.items.empty()) {  // its messages were dropped
      queue.scheduled = false;
      ready_.pop_front();
      if (queue.forgotten) streams_.erase(id);
      continue;
    }
    Item& item = queue.items.front();
    if (item.is_message && !item.charged) {
      if (queue.window <= 0) {
        // Waits for window; GrantWindow schedules the stream again.
        queue.scheduled = false;
        ready_.pop_front();
        continue;
      }
      queue.window -= MessageCharge(item.message.Length());
      item.charged = true;
    }
    ipc::Status status = item.is_message ? WriteMessageChunks(connection, &item)
                                         : WriteFrame(connection, item.header, item.payload);
    if (status.code() == ipc::StatusCode::kWouldBlock) {
      // The stream stays in front: a message partly written resumes first.
      return finish(Blocked(
          item.is_message ? std::min(item.message.Length() - item.offset, ChunkLimit(*connection))
                          : item.payload.size()));
    }
    if (!status.ok()) return finish(status);
    if (item.done) sent.push_back(std::move(item.done));
    queue.items.pop_front();
    --queued_;
    ready_.pop_front();
    queue.scheduled = false;
    if (queue.items.empty() && queue.forgotten) {
      streams_.erase(id);
    } else {
      Schedule(id, &queue);  // to the back: streams take turns
    }
  }
  return finish(ipc::Status::Ok());
}

void OutboundQueue::DropMessagesOf(uint32_t stream_id, grpc_error_handle error) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  std::vector<MessageDone> dropped;
  auto& items = it->second.items;
  for (auto item = items.begin(); item != items.end();) {
    if (item->is_message && item->offset == 0) {
      dropped.push_back(std::move(item->done));
      item = items.erase(item);
      --queued_;
    } else {
      ++item;
    }
  }
  // The stream may have waited for window only because of a dropped message.
  Schedule(stream_id, &it->second);
  for (auto& done : dropped) {
    if (done) done(error);
  }
}

void OutboundQueue::DropStream(uint32_t stream_id, grpc_error_handle error) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  std::vector<MessageDone> dropped;
  for (Item& item : it->second.items) {
    if (item.done) dropped.push_back(std::move(item.done));
  }
  queued_ -= it->second.items.size();
  it->second.items.clear();
  ForgetStream(stream_id);
  for (auto& done : dropped) done(error);
}

void OutboundQueue::Clear(grpc_error_handle error) {
  std::vector<MessageDone> dropped;
  for (auto& entry : streams_) {
    for (Item& item : entry.second.items) {
      if (item.done) dropped.push_back(std::move(item.done));
    }
  }
  control_.clear();
  streams_.clear();
  ready_.clear();
  queued_ = 0;
  waiting_for_ring_ = false;
  for (auto& done : dropped) done(error);
}

}  // namespace transport
}  // namespace grpc_shm
