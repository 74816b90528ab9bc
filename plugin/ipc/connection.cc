#include "plugin/ipc/connection.h"

#include <algorithm>
#include <atomic>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GRPC_SHM_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define GRPC_SHM_CPU_RELAX() asm volatile("yield")
#else
#define GRPC_SHM_CPU_RELAX() std::this_thread::yield()
#endif

namespace grpc_shm {
namespace ipc {
namespace {

int RemainingMs(Connection::Clock::time_point deadline) {
  if (deadline == Connection::Clock::time_point::max()) return -1;
  auto left = deadline - Connection::Clock::now();
  if (left <= left.zero()) return 0;
  // Round up so we never wake a hair before the deadline and spin.
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(left + std::chrono::microseconds(999))
          .count());
}

// A word each side owns in the segment (at `client_offset` for the client,
// `server_offset` for the server): this side's own (`own`) or its peer's.
template <class Word>
Word* SideWord(const platform::MappedRegion& segment, Side side, bool own, size_t client_offset,
               size_t server_offset) {
  const bool clients = (side == Side::kClient) == own;
  return reinterpret_cast<Word*>(segment.data() + (clients ? client_offset : server_offset));
}

// Spin loops look at the clock once per this many checks: reading it costs
// more than a check, and a message usually lands within the first batch.
constexpr int kChecksPerClockRead = 64;

// Polls `done` until it returns true (then true) or `spin`, bounded by
// `deadline`, has passed (then false). The end is computed after the first
// batch of checks, not up front, so a message that arrives at once never
// waits behind a clock read. With `yield`, each batch after the first also
// offers the CPU to any other runnable thread (sched_yield).
template <class Done>
bool SpinUntil(std::chrono::nanoseconds spin, Connection::Clock::time_point deadline, Done done,
               bool yield = false) {
  if (spin.count() <= 0) return false;
  Connection::Clock::time_point end{};
  for (bool first = true;; first = false) {
    for (int i = 0; i < kChecksPerClockRead; ++i) {
      if (done()) return true;
      GRPC_SHM_CPU_RELAX();
    }
    if (yield && !first) std::this_thread::yield();
    const Connection::Clock::time_point now = Connection::Clock::now();
    if (first) end = std::min(deadline, now + spin);
    if (now >= end) return false;
  }
}

}  // namespace

ConnectionOptions DefaultConnectionOptions() {
  ConnectionOptions o;
#ifdef _WIN32
  o.memory = platform::SharedMemoryKind::kSection;
  o.doorbell = platform::DoorbellKind::kEvent;
  return o;
#endif
#ifdef __linux__
  o.memory = platform::SharedMemoryKind::kMemfd;
#else
  o.memory = platform::SharedMemoryKind::kPosixShm;
#endif
  o.doorbell = platform::DoorbellKind::kSocket;
  return o;
}

ConnectionOptions PosixConnectionOptions() {
  ConnectionOptions o;
  o.memory = platform::SharedMemoryKind::kPosixShm;
  o.doorbell = platform::DoorbellKind::kSocket;
  return o;
}

Connection::Connection(Side side, const ConnectionOptions& options, uint32_t c2s_bytes,
                       uint32_t s2c_bytes, platform::MappedRegion segment,
                       platform::UniqueHandle socket,
                       std::unique_ptr<platform::WakeReceiver> receiver,
                       std::unique_ptr<platform::WakeSender> sender, platform::PeerCredentials peer)
    : side_(side),
      options_(options),
      segment_(std::move(segment)),
      socket_(std::move(socket)),
      receiver_(std::move(receiver)),
      sender_(std::move(sender)),
      peer_(peer),
      own_wait_(SideWord<WaitWord>(segment_, side, /*own=*/true, SegmentLayout::kClientWaitOffset,
                                   SegmentLayout::kServerWaitOffset)),
      peer_wait_(SideWord<WaitWord>(segment_, side, /*own=*/false, SegmentLayout::kClientWaitOffset,
                                    SegmentLayout::kServerWaitOffset)),
      own_pings_(SideWord<KeepaliveWords>(segment_, side, /*own=*/true,
                                          SegmentLayout::kClientKeepaliveOffset,
                                          SegmentLayout::kServerKeepaliveOffset)),
      peer_pings_(SideWord<KeepaliveWords>(segment_, side, /*own=*/false,
                                           SegmentLayout::kClientKeepaliveOffset,
                                           SegmentLayout::kServerKeepaliveOffset)),
      writer_(reinterpret_cast<RingControl*>(
                  segment_.data() + (side == Side::kClient ? SegmentLayout::kC2sControlOffset
                                                           : SegmentLayout::kS2cControlOffset)),
              segment_.data() + (side == Side::kClient
                                     ? SegmentLayout{c2s_bytes, s2c_bytes}.c2s_data_offset()
                                     : SegmentLayout{c2s_bytes, s2c_bytes}.s2c_data_offset()),
              side == Side::kClient ? c2s_bytes : s2c_bytes),
      reader_(reinterpret_cast<RingControl*>(
                  segment_.data() + (side == Side::kClient ? SegmentLayout::kS2cControlOffset
                                                           : SegmentLayout::kC2sControlOffset)),
              segment_.data() + (side == Side::kClient
                                     ? SegmentLayout{c2s_bytes, s2c_bytes}.s2c_data_offset()
                                     : SegmentLayout{c2s_bytes, s2c_bytes}.c2s_data_offset()),
              side == Side::kClient ? s2c_bytes : c2s_bytes),
      send_data_offset_(side == Side::kClient
                            ? SegmentLayout{c2s_bytes, s2c_bytes}.c2s_data_offset()
                            : SegmentLayout{c2s_bytes, s2c_bytes}.s2c_data_offset()) {}

Connection::~Connection() { Close(); }

void Connection::Close() {
  if (socket_.valid()) platform::ShutdownLocal(socket_.get());
  sender_->Close();
}

Status Connection::CheckAlive() {
  if (options_.doorbell == platform::DoorbellKind::kSocket) {
    // The socket carries rings too: unread bytes are no protocol breach.
    if (receiver_->PeerHungUp() || platform::PeerHungUp(socket_.get())) {
      return Status(StatusCode::kPeerClosed, "peer hung up");
    }
    return Status::Ok();
  }
  return platform::CheckAlive(socket_.get());
}

void Connection::RingPeer(uint32_t bit) {
  // Only the waker that actually clears the bit rings, so a burst of writes
  // costs one syscall.
  if (peer_wait_->bits.fetch_and(~bit, std::memory_order_acq_rel) & bit) {
    sender_->Ring(&peer_wait_->bits);
  }
}

size_t Connection::TrimIdleSendRing() {
  const uint64_t write_pos = writer_.write_pos();
  if (write_pos == trimmed_at_pos_) return 0;  // nothing touched since
  bool drained = false;
  if (!writer_.IsDrained(&drained).ok() || !drained) return 0;
  // The whole ring, the page where the next record goes included: its seal
  // slot reads 0 either way, and giving back pages that hold nothing costs
  // the system next to nothing, so there is no range to keep track of.
  size_t released = 0;
  (void)platform::ReleaseSharedPages(segment_, send_data_offset_, writer_.capacity(), &released);
  trimmed_at_pos_ = write_pos;
  return released;
}

Status Connection::WriteFrame(const FrameHeader& header, const ConstByteSpan* parts,
                              size_t num_parts, Clock::time_point deadline) {
  for (;;) {
    Status s = TryWriteFrame(header, parts, num_parts);
    if (s.code() != StatusCode::kWouldBlock) return s;
    size_t payload = 0;  // only needed when it did not fit
    for (size_t i = 0; i < num_parts; ++i) payload += parts[i].size;
    s = Wait(kWaitingForSpace, payload, deadline);
    if (!s.ok()) return s;
  }
}

Status Connection::WriteMessage(uint32_t stream_id, uint8_t flags, const uint8_t* data, size_t size,
                                Clock::time_point deadline) {
  // Chunks of a quarter ring let the reader copy one chunk out while we copy
  // the next one in; a full-ring chunk would serialise the two copies.
  const size_t chunk_limit =
      std::max<size_t>(kFrameAlignment, writer_.capacity() / 4 - kFrameHeaderSize);
  size_t offset = 0;
  do {
    const size_t chunk = std::min(size - offset, chunk_limit);
    FrameHeader h{};
    h.stream_id = stream_id;
    h.type = kFrameMessage;
    h.flags = static_cast<uint8_t>((flags & ~kFlagMoreChunks) |
                                   (offset + chunk < size ? kFlagMoreChunks : 0));
    ConstByteSpan part{data + offset, chunk};
    Status s = WriteFrame(h, &part, 1, deadline);
    if (!s.ok()) return s;
    offset += chunk;
  } while (offset < size);
  return Status::Ok();
}

Status Connection::ReadFrame(FrameView* frame, Clock::time_point deadline) {
  // Peek(), not reader_.Peek(): before we wait on an empty ring, a writer
  // waiting for the space we freed must hear of it, or both would sleep.
  Status s = Peek(frame);
  if (s.code() != StatusCode::kWouldBlock) return s;
  // Spin on Peek itself: the frame is ready to use the moment its seal shows,
  // with no second look (this is the latency-critical path when spinning).
  if (SpinUntil(options_.spin, deadline, [&] {
        s = reader_.Peek(frame);
        return s.code() != StatusCode::kWouldBlock;
      })) {
    return s;
  }
  for (;;) {
    s = Sleep(kWaitingForData, 0, deadline);
    if (s.code() == StatusCode::kPeerClosed) {
      // Frames the peer wrote before it died are still ours to read.
      Status last = reader_.Peek(frame);
      return last.code() == StatusCode::kWouldBlock ? s : last;
    }
    if (!s.ok()) return s;
    s = reader_.Peek(frame);
    if (s.code() != StatusCode::kWouldBlock) return s;
  }
}

bool Connection::ConditionHolds(uint32_t wait_bits, size_t space_needed) {
  if ((wait_bits & kWaitingForData) && reader_.MaybeReadable()) return true;
  if (wait_bits & kWaitingForSpace) {
    // The same test as the write that waits on it: payload bytes alone
    // would say "fits" for an empty frame in a full ring (or a padded one in
    // an almost full ring), and the writer would spin instead of sleeping,
    // never noticing a dead reader. A corrupt read position also "holds":
    // the caller's next write reports it.
    bool fits = false;
    if (!writer_.Fits(space_needed, &fits).ok() || fits) return true;
  }
  return false;
}

bool Connection::PrepareToSleep(uint32_t wait_bits, size_t space_needed) {
  own_wait_->bits.store(wait_bits, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (ConditionHolds(wait_bits, space_needed)) {
    own_wait_->bits.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

uint64_t Connection::SendKeepalivePing() {
  own_pings_->ping.store(++pings_sent_, std::memory_order_release);
  // Unconditionally: a peer that stopped reading its ring (back-pressure)
  // does not announce that it waits for data, and must still wake to answer.
  sender_->Ring(&peer_wait_->bits);
  return pings_sent_;
}

bool Connection::KeepalivePingAnswered(uint64_t seq) const {
  return own_pings_->pong.load(std::memory_order_acquire) >= seq;
}

bool Connection::AnswerKeepalivePings() {
  const uint64_t ping = peer_pings_->ping.load(std::memory_order_acquire);
  if (peer_pings_->pong.load(std::memory_order_relaxed) == ping) return false;
  peer_pings_->pong.store(ping, std::memory_order_release);
  return true;
}

void Connection::Drain() {
  own_wait_->bits.store(0, std::memory_order_relaxed);
  receiver_->Drain();
}

Status Connection::Wait(uint32_t wait_bits, size_t space_needed, Clock::time_point deadline) {
  if (ConditionHolds(wait_bits, space_needed) ||
      SpinUntil(options_.spin, deadline, [&] { return ConditionHolds(wait_bits, space_needed); })) {
    return Status::Ok();
  }
  return Sleep(wait_bits, space_needed, deadline);
}

bool Connection::SpinForFrame(const ring_internal::SealWord* seal, std::chrono::nanoseconds budget,
                              bool yield) {
  return SpinUntil(
      budget, Clock::time_point::max(),
      [seal] { return seal->load(std::memory_order_relaxed) != 0; }, yield);
}

Status Connection::Sleep(uint32_t wait_bits, size_t space_needed, Clock::time_point deadline) {
  for (;;) {
    if (!PrepareToSleep(wait_bits, space_needed)) return Status::Ok();
    Status s = receiver_->Wait(&own_wait_->bits, wait_bits, socket_.get(), RemainingMs(deadline));
    Drain();
    if (ConditionHolds(wait_bits, space_needed)) return Status::Ok();
    if (s.code() == StatusCode::kPeerClosed || s.code() == StatusCode::kSystem) return s;
    if (Clock::now() >= deadline) {
      return Status(StatusCode::kTimeout, "deadline passed waiting for the peer");
    }
  }
}

}  // namespace ipc
}  // namespace grpc_shm
