#include "plugin/transport/outbound_queue.h"

#include <algorithm>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace grpc_shm {
namespace transport {

void OutboundQueue::PushFrame(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                              std::string payload) {
  Item item;
  item.header.type = type;
  item.header.stream_id = stream_id;
  item.header.flags = flags;
  item.header.aux = aux;
  item.header.payload_size = static_cast<uint32_t>(payload.size());
  item.payload = std::move(payload);
  items_.push_back(std::move(item));
}

void OutboundQueue::PushMessage(uint32_t stream_id, uint8_t flags, grpc_core::SliceBuffer* message,
                                MessageDone done) {
  Item item;
  item.header.type = ipc::kFrameMessage;
  item.header.stream_id = stream_id;
  item.header.flags = flags;
  item.is_message = true;
  item.message.Swap(message);
  windows_.emplace(stream_id, kStreamWindow);
  item.done = std::move(done);
  items_.push_back(std::move(item));
}

// A chunk of at most a quarter ring: the writer can refill the ring while
// the reader drains the rest, instead of waiting for it to empty completely.
size_t OutboundQueue::ChunkLimit(const ipc::Connection& connection) {
  size_t quarter = connection.send_ring_bytes() / 4 - ipc::kFrameHeaderSize;
  return std::min(quarter, connection.max_frame_payload());
}

void OutboundQueue::GrantWindow(uint32_t stream_id, uint32_t bytes) {
  auto it = windows_.find(stream_id);
  if (it == windows_.end()) return;  // a stream we are done with
  // A peer cannot make a window grow without bound: at most what the
  // stream has sent plus a fresh window.
  it->second = std::min<int64_t>(it->second + bytes, kStreamWindow);
}

ipc::Status OutboundQueue::WriteMessageChunks(ipc::Connection* connection, Item* item) {
  const grpc_slice_buffer* slices = item->message.c_slice_buffer();
  const size_t total = item->message.Length();
  const size_t limit = ChunkLimit(*connection);
  std::vector<ipc::ConstByteSpan> parts;
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
    if (item->offset + chunk < total) header.flags |= ipc::kFlagMoreChunks;
    ipc::Status status = connection->TryWriteFrame(header, parts.data(), parts.size());
    if (!status.ok()) return status;
    item->offset += chunk;
  } while (item->offset < total);
  return ipc::Status::Ok();
}

ipc::Status OutboundQueue::Flush(ipc::Connection* connection) {
  waiting_for_ring_ = false;
  // Streams whose next message waits for window: their later frames wait
  // too (a stream's frames stay in order), other streams' frames go on.
  absl::InlinedVector<uint32_t, 4> blocked;
  // Completions run once we are done with items_ (they may queue more).
  absl::InlinedVector<MessageDone, 4> sent;
  auto finish = [&](ipc::Status status) {
    for (auto& done : sent) {
      if (done) done(absl::OkStatus());
    }
    return status;
  };
  auto is_blocked = [&](uint32_t id) {
    return std::find(blocked.begin(), blocked.end(), id) != blocked.end();
  };
  for (auto it = items_.begin(); it != items_.end();) {
    Item& item = *it;
    const uint32_t id = item.header.stream_id;
    if (!blocked.empty() && is_blocked(id)) {
      ++it;
      continue;
    }
    ipc::Status status;
    if (item.is_message) {
      if (!item.charged) {
        auto window = windows_.find(id);
        if (window != windows_.end()) {
          if (window->second <= 0) {
            blocked.push_back(id);
            ++it;
            continue;
          }
          window->second -= static_cast<int64_t>(item.message.Length());
        }
        item.charged = true;
      }
      status = WriteMessageChunks(connection, &item);
    } else {
      ipc::ConstByteSpan part{reinterpret_cast<const uint8_t*>(item.payload.data()),
                              item.payload.size()};
      status = connection->TryWriteFrame(item.header, &part, 1);
    }
    if (status.code() == ipc::StatusCode::kWouldBlock) {
      waiting_for_ring_ = true;
      space_needed_ = item.is_message
                          ? std::min(item.message.Length() - item.offset, ChunkLimit(*connection))
                          : item.payload.size();
      return finish(status);
    }
    if (!status.ok()) return finish(status);
    if (item.done) sent.push_back(std::move(item.done));
    it = items_.erase(it);
  }
  return finish(ipc::Status::Ok());
}

void OutboundQueue::DropMessagesOf(uint32_t stream_id, grpc_error_handle error) {
  std::vector<MessageDone> dropped;
  for (auto it = items_.begin(); it != items_.end();) {
    if (it->is_message && it->header.stream_id == stream_id && it->offset == 0) {
      dropped.push_back(std::move(it->done));
      it = items_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& done : dropped) {
    if (done) done(error);
  }
}

void OutboundQueue::Clear(grpc_error_handle error) {
  std::deque<Item> items;
  items.swap(items_);
  windows_.clear();
  waiting_for_ring_ = false;
  for (auto& item : items) {
    if (item.done) item.done(error);
  }
}

}  // namespace transport
}  // namespace grpc_shm
