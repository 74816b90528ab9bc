// Layout of the shared segment of one connection. The offsets are computed by
// each side from the ring sizes agreed in the handshake, never read back from
// shared memory: the peer may scribble over anything in the segment.
//
//   [SegmentHeader][RingControl c2s][RingControl s2c][WaitWord client][WaitWord server]
//   [KeepaliveWords client][KeepaliveWords server]
//   [pad to 4 KiB][c2s data: c2s_bytes][s2c data: s2c_bytes]
#ifndef GRPC_SHM_IPC_SEGMENT_LAYOUT_H_
#define GRPC_SHM_IPC_SEGMENT_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace grpc_shm {
namespace ipc {

constexpr size_t kCacheLineSize = 64;
constexpr uint32_t kSegmentMagic = 0x4d485347;  // "GSHM"
// 2: records are published by a seal in their header, not a write position.
// 3: per-stream flow control (kFrameWindowUpdate).
// 4: the server's settings frame, refused streams, messages charged with an
//    overhead, one message at a time per connection.
// 5: socket doorbells are the handshake socket itself (no socketpairs sent).
// 6: keepalive pings answered through KeepaliveWords.
constexpr uint32_t kProtocolVersion = 6;

// Ring sizes are powers of two within these bounds.
constexpr uint32_t kMinRingBytes = 4096;
constexpr uint32_t kMaxRingBytes = 64u << 20;
constexpr uint32_t kDefaultRingBytes = 1u << 20;

// Lock-free cross-process atomics must not depend on a process-local lock.
static_assert(std::atomic<uint64_t>::is_always_lock_free, "need lock-free 64-bit atomics");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "need lock-free 32-bit atomics");

struct alignas(kCacheLineSize) SegmentHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t c2s_bytes;  // informational only: each side uses its negotiated copy
  uint32_t s2c_bytes;
};

// The consumer's position: a byte count since the connection began (it never
// wraps in practice: 2^64 bytes), on a cache line of its own. The producer
// publishes nothing here: each record carries its own seal (ring.h), so the
// consumer polls the line that holds the data instead of a second line.
struct RingControl {
  alignas(kCacheLineSize) std::atomic<uint64_t> read_pos;  // written by consumer
};
static_assert(sizeof(RingControl) == kCacheLineSize, "one cache line per index");

// What a side is blocked on. Set by the side itself just before it sleeps; a
// peer that makes progress on that condition clears the bit and rings the
// side's doorbell. The word doubles as the futex word of futex doorbells.
enum WaitBits : uint32_t {
  kWaitingForData = 1u << 0,   // its receive ring was empty
  kWaitingForSpace = 1u << 1,  // its send ring was full
};
struct alignas(kCacheLineSize) WaitWord {
  std::atomic<uint32_t> bits;
};

// Keepalive pings, outside the rings: a receiver that holds too many unread
// messages stops reading its ring (back-pressure), yet it is alive, and a
// ping queued behind those messages would not be answered. So the pinging
// side bumps `ping` and rings the other's doorbell whether or not it sleeps,
// and the other side copies `ping` to `pong` whenever its poller wakes,
// reading its ring or not. A frozen peer answers nothing; a hostile one can
// only claim to be alive. One pair per pinging side.
struct alignas(kCacheLineSize) KeepaliveWords {
  std::atomic<uint64_t> ping;  // written by the side that pings
  std::atomic<uint64_t> pong;  // written by the side that answers
};

enum class Side : uint8_t { kClient = 0, kServer = 1 };

struct SegmentLayout {
  uint32_t c2s_bytes = 0;
  uint32_t s2c_bytes = 0;

  static constexpr size_t kHeaderOffset = 0;
  static constexpr size_t kC2sControlOffset = kCacheLineSize;
  static constexpr size_t kS2cControlOffset = kC2sControlOffset + sizeof(RingControl);
  static constexpr size_t kClientWaitOffset = kS2cControlOffset + sizeof(RingControl);
  static constexpr size_t kServerWaitOffset = kClientWaitOffset + kCacheLineSize;
  // The client's pings (answered by the server), then the server's.
  static constexpr size_t kClientKeepaliveOffset = kServerWaitOffset + kCacheLineSize;
  static constexpr size_t kServerKeepaliveOffset = kClientKeepaliveOffset + sizeof(KeepaliveWords);
  static constexpr size_t kDataOffset = 4096;

  static_assert(kServerKeepaliveOffset + sizeof(KeepaliveWords) <= kDataOffset,
                "the control words fit before the data");

  size_t c2s_data_offset() const { return kDataOffset; }
  size_t s2c_data_offset() const { return kDataOffset + c2s_bytes; }
  size_t total_bytes() const { return kDataOffset + size_t{c2s_bytes} + s2c_bytes; }
};

inline bool IsValidRingSize(uint64_t bytes) {
  return bytes >= kMinRingBytes && bytes <= kMaxRingBytes && (bytes & (bytes - 1)) == 0;
}

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_SEGMENT_LAYOUT_H_
