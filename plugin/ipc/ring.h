// Single-producer single-consumer frame ring over memory shared with an
// untrusted peer. One RingWriter (in one process) and one RingReader (in the
// other) share a RingControl and a power-of-two data area.
//
// Publication: the writer fills a record, then stores its header's seal
// (release), a value derived from the record's position. The reader polls
// the seal of the record at its position (acquire) and so waits on the very
// cache line that carries the header and the first 48 payload bytes: one
// line to fetch for a small message instead of a write position and then
// the data. Before sealing a record the writer zeroes the seal slot of the
// record that will follow it, so stale bytes from an earlier lap can never
// pass for a fresh seal; that slot is why one header's worth of the ring is
// always kept free.
//
// Trust rules: each side keeps its own position in a private member and only
// publishes it; the peer's position is loaded once per operation into a local
// and validated against the ring's bounds before any use. Frame headers are
// copied out of the ring before they are validated, so a peer that rewrites a
// header after validation cannot make us read out of bounds. A seal that is
// neither 0 nor the expected value, an impossible length or read position,
// returns kCorrupt and the ring must not be used again.
//
// Threading: all RingWriter methods must be called by one thread at a time,
// and likewise for RingReader. Neither blocks; waiting is the caller's job
// (see connection.h).
#ifndef GRPC_SHM_IPC_RING_H_
#define GRPC_SHM_IPC_RING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "plugin/ipc/frame_format.h"
#include "plugin/ipc/segment_layout.h"
#include "plugin/ipc/status.h"

namespace grpc_shm {
namespace ipc {

struct ConstByteSpan {
  const uint8_t* data = nullptr;
  size_t size = 0;
};
struct MutableByteSpan {
  uint8_t* data = nullptr;
  size_t size = 0;
};

// A frame as seen in place in the ring: a private copy of its header, and its
// payload as one or two spans (two when the payload wraps around the end).
// The spans stay valid until RingReader::Consume().
struct FrameView {
  FrameHeader header;
  ConstByteSpan parts[2];
  size_t payload_size() const { return header.payload_size; }
  // Copies the payload into `dest`, which must hold payload_size() bytes.
  void CopyPayloadTo(uint8_t* dest) const {
    if (parts[0].size) std::memcpy(dest, parts[0].data, parts[0].size);
    if (parts[1].size) std::memcpy(dest + parts[0].size, parts[1].data, parts[1].size);
  }
};

// The seal of the record at `pos`: never 0, which marks "not written yet".
inline uint16_t FrameSeal(uint64_t pos) {
  return static_cast<uint16_t>(0x8000u | ((pos / kFrameAlignment) & 0x7fffu));
}

namespace ring_internal {
// The seal is the only field both sides touch concurrently, so it is the
// only one accessed atomically. Records are 16-byte aligned, so the seal
// (offset 10) is naturally aligned and never wraps.
using SealWord = std::atomic<uint16_t>;
static_assert(sizeof(SealWord) == sizeof(uint16_t) && SealWord::is_always_lock_free,
              "seal must be a plain lock-free 16-bit word in shared memory");
static_assert(kFrameSealOffset % alignof(SealWord) == 0, "seal must be naturally aligned");
static_assert(kFrameAlignment % kFrameHeaderSize == 0, "headers must never wrap");

inline SealWord* SealAt(uint8_t* data, uint32_t mask, uint64_t pos) {
  return reinterpret_cast<SealWord*>(data + (pos & mask) + kFrameSealOffset);
}
inline const SealWord* SealAt(const uint8_t* data, uint32_t mask, uint64_t pos) {
  return reinterpret_cast<const SealWord*>(data + (pos & mask) + kFrameSealOffset);
}

inline void PrefetchForRead(const void* address) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(address, /*rw=*/0);
#else
  (void)address;
#endif
}

// Error statuses, built out of line so the inline hot paths stay small.
Status PayloadTooLarge(size_t payload_size, size_t max);
Status BadSeal(uint16_t seal, uint64_t read_pos);
Status BadLength(uint64_t payload_size, size_t max);
}  // namespace ring_internal

class RingWriter {
 public:
  // `control` and `data` (capacity bytes, a valid ring size) must outlive the
  // writer. The writer starts at the position the control block says only if
  // it is freshly zeroed; a new connection always starts at 0.
  RingWriter(RingControl* control, uint8_t* data, uint32_t capacity);

  uint32_t capacity() const { return capacity_; }
  // Largest payload any single frame can carry in this ring (the ring minus
  // the frame's header and the next frame's seal slot).
  size_t max_frame_payload() const { return MaxFramePayload(capacity_); }
  static size_t MaxFramePayload(uint32_t capacity) { return capacity - 2 * kFrameHeaderSize; }

  // Payload bytes that fit in one frame right now (0 if not even a header
  // fits). kCorrupt if the peer's read position is impossible.
  Status WritableBytes(size_t* payload_bytes);
  // Whether a frame of `payload_size` bytes fits right now: exactly when
  // Reserve would succeed (records are padded, and an empty payload still
  // needs its header). kCorrupt as WritableBytes.
  Status Fits(size_t payload_size, bool* fits);

  // Reserves room for a frame of `payload_size` bytes. On success `out`
  // receives one or two spans covering exactly the payload; fill them, then
  // Commit(). kWouldBlock when it does not fit yet.
  Status Reserve(size_t payload_size, MutableByteSpan out[2]);
  // Publishes the reserved frame with `header` (its payload_size is ignored:
  // the reserved size is what counts).
  void Commit(const FrameHeader& header);

  // Reserve + copy `parts` + Commit in one call.
  Status TryWrite(const FrameHeader& header, const ConstByteSpan* parts, size_t num_parts);

  // Whether the reader has consumed everything written: then it looks at
  // nothing in the ring beyond the (zeroed) seal slot at write_pos() until
  // the next record is sealed there. kCorrupt as WritableBytes.
  Status IsDrained(bool* drained);

  // Bytes written since the connection began (private; not published).
  uint64_t write_pos() const { return write_pos_; }

 private:
  Status LoadFreeBytes(size_t* free_bytes);
  // Reserve() when the cached read position shows too little room.
  Status ReserveSlow(size_t payload_size, MutableByteSpan out[2]);
  void SetReservation(size_t payload_size, MutableByteSpan out[2]);
  void CopyIn(uint64_t pos, const void* src, size_t n);

  RingControl* const control_;
  uint8_t* const data_;
  const uint32_t capacity_;
  const uint32_t mask_;
  uint64_t write_pos_ = 0;        // private; records are published by their seals
  uint64_t cached_read_pos_ = 0;  // last validated peer read position
  size_t reserved_payload_ = 0;
  bool has_reservation_ = false;
};

class RingReader {
 public:
  RingReader(RingControl* control, const uint8_t* data, uint32_t capacity);

  uint32_t capacity() const { return capacity_; }

  // Looks at the next frame without consuming it. kWouldBlock when empty;
  // kCorrupt when the frame's seal or header is invalid.
  Status Peek(FrameView* frame);
  // Releases the frame returned by the last successful Peek(); returns the
  // bytes it occupied in the ring.
  size_t Consume();
  // True if a frame may be available (cheap; no validation).
  bool MaybeReadable() const;
  // The seal word of the next frame, non-zero once it has arrived: another
  // thread may watch it (relaxed loads) until this reader next consumes.
  const ring_internal::SealWord* NextSeal() const {
    return ring_internal::SealAt(data_, mask_, read_pos_);
  }

 private:
  RingControl* const control_;
  const uint8_t* const data_;
  const uint32_t capacity_;
  const uint32_t mask_;
  uint64_t read_pos_ = 0;
  size_t peeked_record_size_ = 0;
};

// ---- inline hot paths: a spinning round trip is a few dozen instructions per
// side, and calls into another translation unit were a measurable part of it.

inline void RingWriter::CopyIn(uint64_t pos, const void* src, size_t n) {
  const size_t offset = pos & mask_;
  const size_t first = n < capacity_ - offset ? n : capacity_ - offset;
  std::memcpy(data_ + offset, src, first);
  if (n > first) std::memcpy(data_, static_cast<const uint8_t*>(src) + first, n - first);
}

inline void RingWriter::SetReservation(size_t payload_size, MutableByteSpan out[2]) {
  // The payload starts right after the header; it may wrap, so describe it
  // as up to two spans.
  const size_t offset = (write_pos_ + kFrameHeaderSize) & mask_;
  const size_t first = payload_size < capacity_ - offset ? payload_size : capacity_ - offset;
  out[0] = {data_ + offset, first};
  out[1] = {data_, payload_size - first};
  reserved_payload_ = payload_size;
  has_reservation_ = true;
}

inline Status RingWriter::Reserve(size_t payload_size, MutableByteSpan out[2]) {
  // Fast path: the cached read position already shows room for the record
  // and the seal slot after it.
  if (payload_size <= max_frame_payload() &&
      write_pos_ + FrameRecordSize(payload_size) + kFrameHeaderSize - cached_read_pos_ <=
          capacity_) {
    SetReservation(payload_size, out);
    return Status::Ok();
  }
  return ReserveSlow(payload_size, out);
}

inline void RingWriter::Commit(const FrameHeader& header) {
  const uint64_t pos = write_pos_;
  const uint64_t next = pos + FrameRecordSize(reserved_payload_);
  // Not a valid frame until sealed: the next slot must read "empty" by the
  // time the reader, having seen this record's seal, polls it.
  ring_internal::SealAt(data_, mask_, next)->store(0, std::memory_order_relaxed);
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
  ring_internal::SealAt(data_, mask_, pos)->store(FrameSeal(pos), std::memory_order_release);
  write_pos_ = next;
  has_reservation_ = false;
}

inline Status RingWriter::TryWrite(const FrameHeader& header, const ConstByteSpan* parts,
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

inline bool RingReader::MaybeReadable() const {
  return ring_internal::SealAt(data_, mask_, read_pos_)->load(std::memory_order_relaxed) != 0;
}

inline Status RingReader::Peek(FrameView* frame) {
  const uint16_t seal =
      ring_internal::SealAt(data_, mask_, read_pos_)->load(std::memory_order_acquire);
  if (seal == 0) return Status::WouldBlock();
  if (seal != FrameSeal(read_pos_)) return ring_internal::BadSeal(seal, read_pos_);
  // The header is copied before it is checked: the peer may rewrite the
  // ring at any moment, and the copy is what we trust from here on. Headers
  // never wrap (records are aligned to the header size).
  std::memcpy(&frame->header, data_ + (read_pos_ & mask_), kFrameHeaderSize);
  const uint64_t payload_size = frame->header.payload_size;
  if (payload_size > RingWriter::MaxFramePayload(capacity_)) {
    return ring_internal::BadLength(payload_size, RingWriter::MaxFramePayload(capacity_));
  }
  // A payload that runs past the seal's line needs the next line too. A
  // spinning round trip of a 64-byte message is mostly these two line
  // transfers per side: asking for the second line now, rather than when the
  // caller's copy reaches it, overlaps its transfer with the bookkeeping in
  // between (paired ipc_bench blocks: ~2.0x -> ~1.75x the bare atomic). Only
  // lines of this record: the writer may still be filling the ones after it.
  if ((read_pos_ & (kCacheLineSize - 1)) + kFrameHeaderSize + payload_size > kCacheLineSize) {
    ring_internal::PrefetchForRead(data_ + ((read_pos_ + kCacheLineSize) & mask_));
  }
  const size_t offset = (read_pos_ + kFrameHeaderSize) & mask_;
  const size_t first = payload_size < capacity_ - offset ? payload_size : capacity_ - offset;
  frame->parts[0] = {data_ + offset, first};
  frame->parts[1] = {data_, payload_size - first};
  peeked_record_size_ = FrameRecordSize(payload_size);
  return Status::Ok();
}

inline size_t RingReader::Consume() {
  const size_t freed = peeked_record_size_;
  read_pos_ += freed;
  peeked_record_size_ = 0;
  control_->read_pos.store(read_pos_, std::memory_order_release);
  return freed;
}

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_RING_H_
