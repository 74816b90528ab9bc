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

#include <cstddef>
#include <cstdint>

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
  void CopyPayloadTo(uint8_t* dest) const;
};

// The seal of the record at `pos`: never 0, which marks "not written yet".
inline uint16_t FrameSeal(uint64_t pos) {
  return static_cast<uint16_t>(0x8000u | ((pos / kFrameAlignment) & 0x7fffu));
}

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

  // Reserves room for a frame of `payload_size` bytes. On success `out`
  // receives one or two spans covering exactly the payload; fill them, then
  // Commit(). kWouldBlock when it does not fit yet.
  Status Reserve(size_t payload_size, MutableByteSpan out[2]);
  // Publishes the reserved frame with `header` (payload_size must match).
  void Commit(const FrameHeader& header);

  // Reserve + copy `parts` + Commit in one call.
  Status TryWrite(const FrameHeader& header, const ConstByteSpan* parts, size_t num_parts);

  // Bytes written since the connection began (private; not published).
  uint64_t write_pos() const { return write_pos_; }

 private:
  Status LoadFreeBytes(size_t* free_bytes);
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
  // True if a frame may be available (cheap; no validation). Meant for
  // polling loops: when empty it also prefetches the line after the next
  // header, so a frame that spans two lines arrives in one round of misses.
  bool MaybeReadable() const;

 private:

  RingControl* const control_;
  const uint8_t* const data_;
  const uint32_t capacity_;
  const uint32_t mask_;
  uint64_t read_pos_ = 0;
  size_t peeked_record_size_ = 0;
};

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_RING_H_
