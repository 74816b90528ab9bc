// The two halves (timing side, echoing side) of each spinning round-trip
// protocol: a bare shared atomic, a 64-byte polled slot, and a Connection.
// Each protocol's own scenario and the paired blocks use the same halves, so
// both time exactly the same thing.
#ifndef GRPC_SHM_BENCH_IPC_PING_PROTOCOLS_H_
#define GRPC_SHM_BENCH_IPC_PING_PROTOCOLS_H_

#include <atomic>
#include <cstdint>
#include <cstring>

#include "bench/ipc/harness.h"
#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"

namespace grpc_shm::bench {

// ------------------------------------------------------------ bare atomic

// One word on its own cache line, shared between the two processes.
struct alignas(64) SharedWord {
  std::atomic<uint32_t> w;
};

constexpr uint32_t kStopWord = 0xffffffffu;

// Timing side: publish an odd value, wait for value + 1.
inline void RawSpinPing(SharedWord* word, uint32_t* ping) {
  word->w.store(*ping, std::memory_order_release);
  while (word->w.load(std::memory_order_acquire) != *ping + 1) Relax();
  *ping += 2;
}

// Echoing side: wait for a new value and answer value + 1. False (no answer)
// on kStopWord.
inline bool RawSpinEcho(SharedWord* word, uint32_t* last) {
  uint32_t v;
  while ((v = word->w.load(std::memory_order_acquire)) == *last) Relax();
  if (v == kStopWord) return false;
  *last = v + 1;
  word->w.store(*last, std::memory_order_release);
  return true;
}

// ------------------------------------------------------------ 64-byte slot

// One direction of the slot protocol: a sequence word followed by the
// payload (72 bytes, two cache lines, like a ring record of a 64-byte frame).
// The writer copies the payload in and then publishes the sequence number
// (release); the reader polls the sequence word itself, then copies the
// payload out. The floor for moving 64 bytes, not just a flag.
struct alignas(64) PayloadSlot {
  std::atomic<uint64_t> seq;
  uint8_t payload[120];
};

constexpr uint64_t kStopSeq = ~uint64_t{0};

// Timing side: copy `msg` in, publish `seq`, wait for the echo of `seq`,
// copy its payload out to `in`.
inline void SlotPing(PayloadSlot* out, PayloadSlot* back, uint64_t seq, const uint8_t* msg,
                     uint8_t* in) {
  std::memcpy(out->payload, msg, 64);
  out->seq.store(seq, std::memory_order_release);
  while (back->seq.load(std::memory_order_acquire) != seq) Relax();
  std::memcpy(in, back->payload, 64);
  CompilerBarrier();
}

// Echoing side: wait for a new sequence number, copy the payload out to
// `buf` and back into the answer. False (no answer) on kStopSeq.
inline bool SlotEcho(PayloadSlot* in, PayloadSlot* out, uint64_t* last, uint8_t* buf) {
  uint64_t v;
  while ((v = in->seq.load(std::memory_order_acquire)) == *last) Relax();
  if (v == kStopSeq) return false;
  std::memcpy(buf, in->payload, 64);
  std::memcpy(out->payload, buf, 64);
  out->seq.store(v, std::memory_order_release);
  *last = v;
  return true;
}

// ------------------------------------------------------------ ring

inline ipc::FrameHeader MessageHeader(uint32_t stream = 1) {
  ipc::FrameHeader h{};
  h.stream_id = stream;
  h.type = ipc::kFrameMessage;
  return h;
}

// A frame that carries only `aux` (throughput runs: "go" with a count).
inline ipc::FrameHeader ControlHeader(uint32_t aux) {
  ipc::FrameHeader h{};
  h.type = ipc::kFramePing;
  h.aux = aux;
  return h;
}

// The timing side's 64-byte message and the buffer its echo is copied to.
struct PingBuffers {
  PingBuffers() { std::memset(msg, 0xab, sizeof(msg)); }
  alignas(64) uint8_t msg[64];
  alignas(64) uint8_t in[64];
};

// Timing side: send `seq` in the 64-byte message `msg`, wait for the echo,
// copy it out to `in`, consume it and check it is this round trip's.
inline void RingPing(ipc::Connection& c, uint64_t seq, uint8_t* msg, uint8_t* in,
                     ipc::FrameView* f) {
  static const ipc::FrameHeader kHeader = MessageHeader();
  std::memcpy(msg, &seq, sizeof(seq));
  const ipc::ConstByteSpan part{msg, 64};
  Check(c.WriteFrame(kHeader, &part, 1), "rt send");
  Check(c.ReadFrame(f), "rt recv");
  if (f->payload_size() != 64) Die("rt: bad reply size");
  f->CopyPayloadTo(in);
  c.Consume();
  if (std::memcmp(in, &seq, sizeof(seq)) != 0) Die("rt: reply out of order");
}

// Echoing side, once the 64-byte message is in `f`: copy it out to `buf`,
// consume it and write it back (options.spin applies).
inline void RingEcho(ipc::Connection& c, const ipc::FrameView& f, uint8_t* buf) {
  static const ipc::FrameHeader kHeader = MessageHeader();
  if (f.payload_size() != 64) Die("echo: bad size");
  f.CopyPayloadTo(buf);
  c.Consume();
  const ipc::ConstByteSpan part{buf, 64};
  Check(c.WriteFrame(kHeader, &part, 1), "echo send");
}

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_PING_PROTOCOLS_H_
