#include "plugin/ipc/ring.h"

#include <atomic>
#include <cstring>
#include <string>

namespace grpc_shm {
namespace ipc {

void FrameView::CopyPayloadTo(uint8_t* dest) const {
  if (parts[0].size) std::memcpy(dest, parts[0].data, parts[0].size);
  if (parts[1].size) std::memcpy(dest + parts[0].size, parts[1].data, parts[1].size);
}

RingWriter::RingWriter(RingControl* control, uint8_t* data, uint32_t capacity)
    : control_(control), data_(data), capacity_(capacity), mask_(capacity - 1) {}

Status RingWriter::LoadFreeBytes(size_t* free_bytes) {
  // The peer's position, read once. It must lie in [write_pos - capacity,
  // write_pos] and, being record-granular, be 8-byte aligned and not move
  // backwards. Unsigned subtraction turns "ahead of us" into a huge value.
  const uint64_t read_pos = control_->read_pos.load(std::memory_order_acquire);
  const uint64_t used = write_pos_ - read_pos;
  if (used > capacity_ || read_pos < cached_read_pos_ || (read_pos % kFrameAlignment) != 0) {
    return Status(StatusCode::kCorrupt, "ring read position " + std::to_string(read_pos) +
                                            " is inconsistent with write position " +
                                            std::to_string(write_pos_) + " (capacity " +
                                            std::to_string(capacity_) + ")");
  }
  cached_read_pos_ = read_pos;
  *free_bytes = capacity_ - used;
  return Status::Ok();
}

Status RingWriter::WritableBytes(size_t* payload_bytes) {
  size_t free_bytes = 0;
  Status s = LoadFreeBytes(&free_bytes);
  if (!s.ok()) return s;
  *payload_bytes = free_bytes < kFrameHeaderSize ? 0 : free_bytes - kFrameHeaderSize;
  return Status::Ok();
}

void RingWriter::CopyIn(uint64_t pos, const void* src, size_t n) {
  const size_t offset = pos & mask_;
  const size_t first = n < capacity_ - offset ? n : capacity_ - offset;
  std::memcpy(data_ + offset, src, first);
  if (n > first) std::memcpy(data_, static_cast<const uint8_t*>(src) + first, n - first);
}

Status RingWriter::Reserve(size_t payload_size, MutableByteSpan out[2]) {
  if (payload_size > max_frame_payload()) {
    return Status(StatusCode::kInvalidArgument, "frame payload " + std::to_string(payload_size) +
                                                    " exceeds ring maximum " +
                                                    std::to_string(max_frame_payload()));
  }
  const size_t record = FrameRecordSize(payload_size);
  // Fast path: the cached read position already shows enough room.
  if (write_pos_ + record - cached_read_pos_ > capacity_) {
    size_t free_bytes = 0;
    Status s = LoadFreeBytes(&free_bytes);
    if (!s.ok()) return s;
    if (free_bytes < record) return Status::WouldBlock();
  }
  // The payload starts right after the header; it may wrap, so describe it
  // as up to two spans.
  const size_t offset = (write_pos_ + kFrameHeaderSize) & mask_;
  const size_t first = payload_size < capacity_ - offset ? payload_size : capacity_ - offset;
  out[0] = {data_ + offset, first};
  out[1] = {data_, payload_size - first};
  reserved_payload_ = payload_size;
  has_reservation_ = true;
  return Status::Ok();
}

void RingWriter::Commit(const FrameHeader& header) {
  FrameHeader h = header;
  h.payload_size = static_cast<uint32_t>(reserved_payload_);
  CopyIn(write_pos_, &h, sizeof(h));
  write_pos_ += FrameRecordSize(reserved_payload_);
  has_reservation_ = false;
  control_->write_pos.store(write_pos_, std::memory_order_release);
}

Status RingWriter::TryWrite(const FrameHeader& header, const ConstByteSpan* parts,
                            size_t num_parts) {
  size_t total = 0;
  for (size_t i = 0; i < num_parts; ++i) total += parts[i].size;
  MutableByteSpan spans[2];
  Status s = Reserve(total, spans);
  if (!s.ok()) return s;
  uint64_t pos = write_pos_ + kFrameHeaderSize;
  for (size_t i = 0; i < num_parts; ++i) {
    if (parts[i].size == 0) continue;
    CopyIn(pos, parts[i].data, parts[i].size);
    pos += parts[i].size;
  }
  Commit(header);
  return Status::Ok();
}

RingReader::RingReader(RingControl* control, const uint8_t* data, uint32_t capacity)
    : control_(control), data_(data), capacity_(capacity), mask_(capacity - 1) {}

bool RingReader::MaybeReadable() const {
  return control_->write_pos.load(std::memory_order_relaxed) != read_pos_;
}

void RingReader::CopyOut(uint64_t pos, void* dest, size_t n) const {
  const size_t offset = pos & mask_;
  const size_t first = n < capacity_ - offset ? n : capacity_ - offset;
  std::memcpy(dest, data_ + offset, first);
  if (n > first) std::memcpy(static_cast<uint8_t*>(dest) + first, data_, n - first);
}

Status RingReader::Peek(FrameView* frame) {
  uint64_t available = cached_write_pos_ - read_pos_;
  if (available == 0) {
    const uint64_t write_pos = control_->write_pos.load(std::memory_order_acquire);
    available = write_pos - read_pos_;
    if (available == 0) return Status::WouldBlock();
    // Whole records only: at least a header, 8-byte granular, never more
    // than the ring holds, never backwards (which shows as a huge value).
    if (available > capacity_ || available < kFrameHeaderSize ||
        (available % kFrameAlignment) != 0) {
      return Status(StatusCode::kCorrupt, "ring write position " + std::to_string(write_pos) +
                                              " is inconsistent with read position " +
                                              std::to_string(read_pos_) + " (capacity " +
                                              std::to_string(capacity_) + ")");
    }
    cached_write_pos_ = write_pos;
  }
  // The header is copied before it is checked: the peer may rewrite the
  // ring at any moment, and the copy is what we trust from here on.
  CopyOut(read_pos_, &frame->header, kFrameHeaderSize);
  const uint64_t payload_size = frame->header.payload_size;
  if (payload_size > capacity_ - kFrameHeaderSize || FrameRecordSize(payload_size) > available) {
    return Status(StatusCode::kCorrupt, "frame length " + std::to_string(payload_size) +
                                            " exceeds the " + std::to_string(available) +
                                            " bytes published in the ring");
  }
  const size_t offset = (read_pos_ + kFrameHeaderSize) & mask_;
  const size_t first = payload_size < capacity_ - offset ? payload_size : capacity_ - offset;
  frame->parts[0] = {data_ + offset, first};
  frame->parts[1] = {data_, payload_size - first};
  peeked_record_size_ = FrameRecordSize(payload_size);
  return Status::Ok();
}

size_t RingReader::Consume() {
  const size_t freed = peeked_record_size_;
  read_pos_ += freed;
  peeked_record_size_ = 0;
  control_->read_pos.store(read_pos_, std::memory_order_release);
  return freed;
}

}  // namespace ipc
}  // namespace grpc_shm
