#include "plugin/ipc/ring.h"

#include <string>

namespace grpc_shm {
namespace ipc {
namespace ring_internal {

Status PayloadTooLarge(size_t payload_size, size_t max) {
  return Status(StatusCode::kInvalidArgument, "frame payload " + std::to_string(payload_size) +
                                                  " exceeds ring maximum " + std::to_string(max));
}

Status BadSeal(uint16_t seal, uint64_t read_pos) {
  return Status(StatusCode::kCorrupt, "frame seal " + std::to_string(seal) + " at position " +
                                          std::to_string(read_pos) + " is not the expected " +
                                          std::to_string(FrameSeal(read_pos)));
}

Status BadLength(uint64_t payload_size, size_t max) {
  return Status(StatusCode::kCorrupt, "frame length " + std::to_string(payload_size) +
                                          " exceeds the ring's largest frame (" +
                                          std::to_string(max) + " bytes)");
}

}  // namespace ring_internal

static_assert(offsetof(FrameHeader, seal) == kFrameSealOffset, "seal offset");

RingWriter::RingWriter(RingControl* control, uint8_t* data, uint32_t capacity)
    : control_(control), data_(data), capacity_(capacity), mask_(capacity - 1) {}

Status RingWriter::LoadFreeBytes(size_t* free_bytes) {
  // The peer's position, read once. It must lie in [write_pos - capacity,
  // write_pos] and, being record-granular, be aligned and not move
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
  // One header's worth stays free for the next record's seal slot.
  const size_t unused = capacity_ - used;
  *free_bytes = unused < kFrameHeaderSize ? 0 : unused - kFrameHeaderSize;
  return Status::Ok();
}

Status RingWriter::WritableBytes(size_t* payload_bytes) {
  size_t free_bytes = 0;
  Status s = LoadFreeBytes(&free_bytes);
  if (!s.ok()) return s;
  *payload_bytes = free_bytes < kFrameHeaderSize ? 0 : free_bytes - kFrameHeaderSize;
  return Status::Ok();
}

Status RingWriter::IsDrained(bool* drained) {
  size_t free_bytes = 0;
  Status s = LoadFreeBytes(&free_bytes);
  if (!s.ok()) return s;
  *drained = cached_read_pos_ == write_pos_;
  return Status::Ok();
}

Status RingWriter::Fits(size_t payload_size, bool* fits) {
  size_t free_bytes = 0;
  Status s = LoadFreeBytes(&free_bytes);
  if (!s.ok()) return s;
  *fits = free_bytes >= FrameRecordSize(payload_size);
  return Status::Ok();
}

Status RingWriter::ReserveSlow(size_t payload_size, MutableByteSpan out[2]) {
  if (payload_size > max_frame_payload()) {
    return ring_internal::PayloadTooLarge(payload_size, max_frame_payload());
  }
  size_t free_bytes = 0;
  Status s = LoadFreeBytes(&free_bytes);
  if (!s.ok()) return s;
  if (free_bytes < FrameRecordSize(payload_size)) return Status::WouldBlock();
  SetReservation(payload_size, out);
  return Status::Ok();
}

RingReader::RingReader(RingControl* control, const uint8_t* data, uint32_t capacity)
    : control_(control), data_(data), capacity_(capacity), mask_(capacity - 1) {}

}  // namespace ipc
}  // namespace grpc_shm
