#include "bench/ipc/bare_ring.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "bench/ipc/ping_protocols.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/ipc/ring.h"

namespace grpc_shm::bench {

namespace {

// One shared mapping: a control page (both rings' control blocks, the two
// wait words, the one-way run's round counter and messages per repetition),
// then the parent's receive ring (direction 0), then the child's (1).
struct BareSegment {
  static constexpr size_t kCtl = 4096;
  uint8_t* base;
  uint32_t ring;
  explicit BareSegment(uint32_t ring_bytes) : ring(ring_bytes) {
    base = static_cast<uint8_t*>(SharedAlloc(kCtl + 2 * size_t{ring_bytes}));
  }
  ~BareSegment() { munmap(base, kCtl + 2 * size_t{ring}); }
  BareSegment(const BareSegment&) = delete;
  BareSegment& operator=(const BareSegment&) = delete;

  ipc::RingControl* control(int dir) {
    return reinterpret_cast<ipc::RingControl*>(base + 128 * dir);
  }
  uint8_t* data(int dir) { return base + kCtl + size_t{ring} * dir; }
  // Maps every page in this process (the parent's mappings are populated by
  // SharedAlloc's memset; a forked child starts without them).
  void Pretouch() {
    const size_t bytes = kCtl + 2 * size_t{ring};
    for (size_t off = 0; off < bytes; off += 4096) {
      (void)*reinterpret_cast<volatile uint8_t*>(base + off);
    }
  }
  std::atomic<uint32_t>* wait_word(int side) {
    return reinterpret_cast<std::atomic<uint32_t>*>(base + 1024 + 64 * side);
  }
  std::atomic<uint32_t>* go() { return reinterpret_cast<std::atomic<uint32_t>*>(base + 2048); }
  std::atomic<long>* per_rep() { return reinterpret_cast<std::atomic<long>*>(base + 3072); }
};

inline void MaybeFence(bool fence, std::atomic<uint32_t>* peer_wait) {
  if (!fence) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (peer_wait->load(std::memory_order_relaxed) != 0) Die("bare ring: unexpected waiter");
}

// Writes one frame, spinning while the ring is full.
void SpinWrite(ipc::RingWriter& w, const ipc::FrameHeader& h, const ipc::ConstByteSpan* part,
               size_t parts, bool fence, std::atomic<uint32_t>* peer_wait) {
  ipc::Status s;
  while ((s = w.TryWrite(h, part, parts)).code() == ipc::StatusCode::kWouldBlock) Relax();
  Check(s, "bare write");
  MaybeFence(fence, peer_wait);
}

// Waits for the next frame and puts it in `f` (consume it with r.Consume()).
void SpinPeek(ipc::RingReader& r, ipc::FrameView* f) {
  ipc::Status s;
  while ((s = r.Peek(f)).code() == ipc::StatusCode::kWouldBlock) Relax();
  Check(s, "bare peek");
}

// One side of the round trip: the parent times 64-byte round trips into
// `lat`, then sends a goaway; the child echoes until the goaway.
void RoundTripSide(BareSegment& seg, bool parent, bool fence, const RoundTripBudget& budget,
                   Samples* lat) {
  ipc::RingWriter w(seg.control(parent ? 0 : 1), seg.data(parent ? 0 : 1), seg.ring);
  ipc::RingReader r(seg.control(parent ? 1 : 0), seg.data(parent ? 1 : 0), seg.ring);
  std::atomic<uint32_t>* peer_wait = seg.wait_word(parent ? 1 : 0);
  alignas(64) uint8_t msg[64];
  std::memset(msg, 0xab, sizeof(msg));
  const ipc::ConstByteSpan part{msg, sizeof(msg)};
  ipc::FrameView f;
  // False on anything but a message (the goaway).
  auto recv = [&] {
    SpinPeek(r, &f);
    const bool message = f.header.type == ipc::kFrameMessage;
    if (message) f.CopyPayloadTo(msg);
    r.Consume();
    MaybeFence(fence, peer_wait);
    return message;
  };
  const ipc::FrameHeader h = MessageHeader();
  if (parent) {
    *lat = DriveRoundTrips(budget, [&] {
      SpinWrite(w, h, &part, 1, fence, peer_wait);
      recv();
    });
    ipc::FrameHeader stop{};
    stop.type = ipc::kFrameGoaway;
    SpinWrite(w, stop, &part, 0, fence, peer_wait);
  } else {
    while (recv()) SpinWrite(w, h, &part, 1, fence, peer_wait);
  }
}

// The one-way run goes in rounds: round 1 is the warm-up (`warm` messages),
// after which the consumer sets per_rep() from its rate; every later round
// is one measured repetition. go() holds the round the consumer is ready for.
struct OneWayRounds {
  uint32_t count;  // the warm-up and the repetitions
  long warm;
  long MessagesIn(BareSegment& seg, uint32_t round) const {
    return round == 1 ? warm : seg.per_rep()->load(std::memory_order_relaxed);
  }
};

// Consumer (parent): returns the measured repetitions' rates, msgs/s.
std::vector<double> ConsumeRounds(BareSegment& seg, const OneWayRounds& rounds, size_t size,
                                  bool fence, const RepetitionPlan& plan, long max_per_rep) {
  ipc::RingReader r(seg.control(0), seg.data(0), seg.ring);
  std::atomic<uint32_t>* peer_wait = seg.wait_word(1);
  std::vector<uint8_t> dst(size + 64);
  ipc::FrameView f;
  std::vector<double> rates;
  for (uint32_t round = 1; round <= rounds.count; ++round) {
    const long n = rounds.MessagesIn(seg, round);
    const uint64_t t0 = NowNs();
    seg.go()->store(round, std::memory_order_release);
    for (long m = 0; m < n; ++m) {
      for (size_t off = 0; off < size;) {
        SpinPeek(r, &f);
        if (off + f.payload_size() > size) Die("bare: message too long");
        f.CopyPayloadTo(dst.data() + off);
        off += f.payload_size();
        r.Consume();
        MaybeFence(fence, peer_wait);
      }
    }
    const uint64_t t1 = NowNs();
    const double rate = static_cast<double>(n) / (static_cast<double>(t1 - t0) * 1e-9);
    if (round > 1) {
      rates.push_back(rate);
    } else {
      seg.per_rep()->store(RepCount(plan, rate, max_per_rep), std::memory_order_relaxed);
    }
  }
  return rates;
}

// Producer (child).
void ProduceRounds(BareSegment& seg, const OneWayRounds& rounds, size_t size, bool fence) {
  seg.Pretouch();
  ipc::RingWriter w(seg.control(0), seg.data(0), seg.ring);
  std::atomic<uint32_t>* peer_wait = seg.wait_word(0);
  std::vector<uint8_t> src(size, 0x5a);
  const ipc::FrameHeader h = MessageHeader();
  const size_t chunk_limit = seg.ring / 4 - ipc::kFrameHeaderSize;
  for (uint32_t round = 1; round <= rounds.count; ++round) {
    while (seg.go()->load(std::memory_order_acquire) != round) Relax();
    const long n = rounds.MessagesIn(seg, round);
    for (long m = 0; m < n; ++m) {
      for (size_t off = 0; off < size;) {
        const ipc::ConstByteSpan part{src.data() + off, std::min(size - off, chunk_limit)};
        SpinWrite(w, h, &part, 1, fence, peer_wait);
        off += part.size;
      }
    }
  }
}

}  // namespace

Samples BareRingRoundTrip(Harness& harness, uint32_t ring_bytes, bool fence,
                          const RoundTripBudget& budget) {
  BareSegment seg(ring_bytes);
  Samples lat;
  harness.ForkRun([&] { RoundTripSide(seg, true, fence, budget, &lat); },
                  [&] {
                    seg.Pretouch();
                    RoundTripSide(seg, false, fence, budget, nullptr);
                  });
  return lat;
}

Throughput BareRingOneWay(Harness& harness, uint32_t ring_bytes, size_t size, bool fence,
                          long count, long warm, const RepetitionPlan& plan) {
  BareSegment seg(ring_bytes);
  const OneWayRounds rounds{static_cast<uint32_t>(1 + std::max<long>(1, plan.reps)), warm};
  const long max_per_rep = std::max<long>(1, count / (rounds.count - 1));
  seg.per_rep()->store(max_per_rep);
  std::vector<double> rates;
  harness.ForkRun([&] { rates = ConsumeRounds(seg, rounds, size, fence, plan, max_per_rep); },
                  [&] { ProduceRounds(seg, rounds, size, fence); });
  Throughput t;
  FillRates(rates, size, &t);
  return t;
}

}  // namespace grpc_shm::bench
