#include "plugin/ipc/ring.h"

#include <atomic>
#include <cstddef>
#include <cstring>
#include <string>

#if defined(__GNUC__) || defined(__clang__)
#define GRPC_SHM_PREFETCH(addr) __builtin_prefetch(addr)
#else
#define GRPC_SHM_PREFETCH(addr) ((void)(addr))
#endif

namespace grpc_shm {
namespace ipc {
namespace {

// The seal is the only field both sides touch concurrently, so it is the
// only one accessed atomically. Records are 16-byte aligned, so the seal
// (offset 10) is naturally aligned and never wraps.
using SealWord = std::atomic<uint16_t>;
static_assert(sizeof(SealWord) == sizeof(uint16_t) && SealWord::is_always_lock_free,
              "seal must be a plain lock-free 16-bit word in shared memory");
static_assert(kFrameSealOffset % alignof(SealWord) == 0, "seal must be naturally aligned");
static_assert(kFrameAlignment % kFrameHeaderSize == 0, "headers must never wrap");
static_assert(offsetof(FrameHeader, seal) == kFrameSealOffset, "seal offset");

inline SealWord* SealAt(uint8_t* data, uint32_t mask, uint64_t pos) {
  return reinterpret_cast<SealWord*>(data + (pos & mask) + kFrameSealOffset);
}
inline const SealWord* SealAt(const uint8_t* data, uint32_t mask, uint64_t pos) {
  return reinterpret_cast<const SealWord*>(data + (pos & mask) + kFrameSealOffset);
}

// Error statuses are built out of line so the hot paths stay small leaf
// functions (no string formatting code, no large stack frame).
#if defined(__GNUC__) || defined(__clang__)
#define GRPC_SHM_COLD __attribute__((cold, noinline))
#else
#define GRPC_SHM_COLD
#endif

GRPC_SHM_COLD Status BadReadPosition(uint64_t read_pos, uint64_t write_pos, uint32_t capacity) {
  return Status(StatusCode::kCorrupt, "ring read position " + std::to_string(read_pos) +
                                          " is inconsistent with write position " +
                                          std::to_string(write_pos) + " (capacity " +
                                          std::to_string(capacity) + ")");
}

GRPC_SHM_COLD Status PayloadTooLarge(size_t payload_size, size_t max) {
  return Status(StatusCode::kInvalidArgument, "frame payload " + std::to_string(payload_size) +
                                                  " exceeds ring maximum " + std::to_string(max));
}

GRPC_SHM_COLD Status BadSeal(uint16_t seal, uint64_t read_pos) {
  return Status(StatusCode::kCorrupt, "frame seal " + std::to_string(seal) + " at position " +
                                          std::to_string(read_pos) + " is not the expected " +
                                          std::to_string(FrameSeal(read_pos)));
}

GRPC_SHM_COLD Status BadLength(uint64_t payload_size, size_t max) {
  return Status(StatusCode::kCorrupt, "frame length " + std::to_string(payload_size) +
                                          " exceeds the ring's largest frame (" +
                                          std::to_string(max) + " bytes)");
}

}  // namespace

void FrameView::CopyPayloadTo(uint8_t* dest) const {
  if (parts[0].size) std::memcpy(dest, parts[0].data, parts[0].size);
  if (parts[1].size) std::memcpy(dest + parts[0].size, parts[1].data, parts[1].size);
}

RingWriter::RingWriter(RingControl* control, uint8_t* data, uint32_t capacity)
    : control_(control), data_(data), capacity_(capacity), mask_(capacity - 1) {}

Status RingWriter::LoadFreeBytes(size_t* free_bytes) {
  // The peer's position, read once. It must lie in [write_pos - capacity,
  // write_pos] and, being record-granular, be aligned and not move
  // backwards. Unsigned subtraction turns "ahead of us" into a huge value.
  const uint64_t read_pos = control_->read_pos.load(std::memory_order_acquire);
  const uint64_t used = write_pos_ - read_pos;
  if (used > capacity_ || read_pos < cached_read_pos_ || (read_pos % kFrameAlignment) != 0) {
    return BadReadPosition(read_pos, write_pos_, capacity_);
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

void RingWriter::CopyIn(uint64_t pos, const void* src, size_t n) {
  const size_t offset = pos & mask_;
  const size_t first = n < capacity_ - offset ? n : capacity_ - offset;
  std::memcpy(data_ + offset, src, first);
  if (n > first) std::memcpy(data_, static_cast<const uint8_t*>(src) + first, n - first);
}

Status RingWriter::Reserve(size_t payload_size, MutableByteSpan out[2]) {
  if (payload_size > max_frame_payload()) return PayloadTooLarge(payload_size, max_frame_payload());
  const size_t needed = FrameRecordSize(payload_size) + kFrameHeaderSize;
  // Fast path: the cached read position already shows enough room.
  if (write_pos_ + needed - cached_read_pos_ > capacity_) {
    size_t free_bytes = 0;
    Status s = LoadFreeBytes(&free_bytes);
    if (!s.ok()) return s;
    if (free_bytes < FrameRecordSize(payload_size)) return Status::WouldBlock();
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
  const uint64_t pos = write_pos_;
  const uint64_t next = pos + FrameRecordSize(reserved_payload_);
  // Not a valid frame until sealed: the next slot must read "empty" by the
  // time the reader, having seen this record's seal, polls it.
  SealAt(data_, mask_, next)->store(0, std::memory_order_relaxed);
  // Field by field, around the seal. (Patching a local copy and copying it
  // out would read back a half-overwritten stack slot: a store-forwarding
  // stall on the hot path.)
  uint8_t* dest = data_ + (pos & mask_);
  const uint32_t payload_size = static_cast<uint32_t>(reserved_payload_);
  std::memcpy(dest + offsetof(FrameHeader, payload_size), &payload_size, sizeof(payload_size));
  std::memcpy(dest + offsetof(FrameHeader, stream_id), &header.stream_id, sizeof(header.stream_id));
  dest[offsetof(FrameHeader, type)] = header.type;
  dest[offsetof(FrameHeader, flags)] = header.flags;
  std::memcpy(dest + offsetof(FrameHeader, aux), &header.aux, sizeof(header.aux));
  SealAt(data_, mask_, pos)->store(FrameSeal(pos), std::memory_order_release);
  write_pos_ = next;
  has_reservation_ = false;
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

// Called while the ring is empty, typically from a polling loop. A 64-byte
// message's record spans two lines and the seal is in the first: asking for
// the second one now lets the two misses overlap once the writer is done,
// instead of taking the second only after the seal was seen.
static inline void PrefetchNextRecord(const uint8_t* data, uint32_t mask, uint64_t read_pos) {
  GRPC_SHM_PREFETCH(data + ((read_pos + kCacheLineSize) & mask));
}

bool RingReader::MaybeReadable() const {
  if (SealAt(data_, mask_, read_pos_)->load(std::memory_order_relaxed) != 0) return true;
  PrefetchNextRecord(data_, mask_, read_pos_);
  return false;
}

Status RingReader::Peek(FrameView* frame) {
  const uint16_t seal = SealAt(data_, mask_, read_pos_)->load(std::memory_order_acquire);
  if (seal == 0) {
    PrefetchNextRecord(data_, mask_, read_pos_);
    return Status::WouldBlock();
  }
  if (seal != FrameSeal(read_pos_)) return BadSeal(seal, read_pos_);
  // The header is copied before it is checked: the peer may rewrite the
  // ring at any moment, and the copy is what we trust from here on. Headers
  // never wrap (records are aligned to the header size).
  std::memcpy(&frame->header, data_ + (read_pos_ & mask_), kFrameHeaderSize);
  frame->header.seal = seal;
  const uint64_t payload_size = frame->header.payload_size;
  if (payload_size > RingWriter::MaxFramePayload(capacity_)) {
    return BadLength(payload_size, RingWriter::MaxFramePayload(capacity_));
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
