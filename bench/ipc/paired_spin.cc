#include "bench/ipc/paired_spin.h"

#include <sys/mman.h>

#include <algorithm>

#include "bench/ipc/ping_protocols.h"
#include "bench/ipc/stats.h"

namespace grpc_shm::bench {

namespace {

constexpr long kBlockWarmup = 200;  // untimed round trips after each switch
constexpr int kBatch = PairedSpin::kBatch;
constexpr int kKinds = 3;  // 0: bare atomic, 1: 64 B slot, 2: ring

// Which kind block `b` runs `k`-th: the order rotates so that no kind always
// follows the same other one.
int KindAt(long b, int k) { return static_cast<int>((b + k) % kKinds); }

// The floors' shared memory, mapped before the fork.
struct Floors {
  SharedWord* word;
  PayloadSlot* slots;  // [0]: to the child, [1]: back
};

// One ring lap each way before the first block, so no block sees the page
// faults of first touches.
long PretouchRoundTrips(const ipc::Connection& c) { return c.send_ring_bytes() / 80 + 1; }

// This block's samples: [0: one round trip per sample, 1: kBatch][kind].
using BlockSamples = std::vector<Samples>[2];

// Times `per_block` samples of one and of kBatch round trips of `rt` after
// an untimed warm-up.
template <class RoundTrip>
void TimeKind(RoundTrip& rt, long per_block, Samples* single, Samples* batched) {
  for (long i = 0; i < kBlockWarmup; ++i) rt();
  for (long i = 0; i < per_block; ++i) {
    const uint64_t t0 = NowNs();
    rt();
    (*single)[static_cast<size_t>(i)] = NowNs() - t0;
  }
  for (long i = 0; i < per_block; ++i) {
    const uint64_t t0 = NowNs();
    for (int k = 0; k < kBatch; ++k) rt();
    (*batched)[static_cast<size_t>(i)] = NowNs() - t0;
  }
}

// Adds one block's ratios and samples to the views of `out`.
void AddBlock(const BlockSamples& block, PairedSpin* out) {
  for (int batched = 0; batched < 2; ++batched) {
    PairedView& v = batched ? out->batched : out->single;
    const std::vector<Samples>& got = block[batched];
    const double raw = std::max(Summarize(got[0]).p50_ns, 1.0);
    const double payload = std::max(Summarize(got[1]).p50_ns, 1.0);
    const double ring = Summarize(got[2]).p50_ns;
    v.ratios.push_back(ring / raw);
    v.payload_ratios.push_back(ring / payload);
    v.raw_p50s.push_back(raw / (batched ? kBatch : 1));
    v.raw.insert(v.raw.end(), got[0].begin(), got[0].end());
    v.payload.insert(v.payload.end(), got[1].begin(), got[1].end());
    v.ring.insert(v.ring.end(), got[2].begin(), got[2].end());
  }
}

void TimeBlocks(ipc::Connection& c, const Floors& floors, long blocks, long per_block,
                PairedSpin* out) {
  PingBuffers buffers;
  ipc::FrameView f;
  uint32_t ping = 1;
  uint64_t seq = 0, slot_seq = 0;
  BlockSamples block;
  for (auto& b : block) b.assign(kKinds, Samples(static_cast<size_t>(per_block)));
  auto raw_rt = [&] { RawSpinPing(floors.word, &ping); };
  auto payload_rt = [&] {
    SlotPing(&floors.slots[0], &floors.slots[1], ++slot_seq, buffers.msg, buffers.in);
  };
  auto ring_rt = [&] { RingPing(c, seq++, buffers.msg, buffers.in, &f); };
  for (long lap = 0; lap < PretouchRoundTrips(c); ++lap) ring_rt();
  for (long b = 0; b < blocks; ++b) {
    for (int k = 0; k < kKinds; ++k) {
      const int kind = KindAt(b, k);
      Samples* single = &block[0][static_cast<size_t>(kind)];
      Samples* batched = &block[1][static_cast<size_t>(kind)];
      if (kind == 0) TimeKind(raw_rt, per_block, single, batched);
      if (kind == 1) TimeKind(payload_rt, per_block, single, batched);
      if (kind == 2) TimeKind(ring_rt, per_block, single, batched);
    }
    AddBlock(block, out);
  }
}

// The echoing side answers exactly as many round trips of each kind, in the
// same order, as TimeBlocks makes.
void EchoBlocks(ipc::Connection& c, const Floors& floors, long blocks, long per_block) {
  alignas(64) uint8_t buf[64];
  ipc::FrameView f;
  uint32_t last = 0;
  uint64_t last_slot = 0;
  const long per_kind = kBlockWarmup + per_block + per_block * kBatch;
  auto raw_echo = [&] { RawSpinEcho(floors.word, &last); };
  auto payload_echo = [&] { SlotEcho(&floors.slots[0], &floors.slots[1], &last_slot, buf); };
  auto ring_echo = [&] {
    Check(c.ReadFrame(&f), "paired echo recv");
    RingEcho(c, f, buf);
  };
  for (long lap = 0; lap < PretouchRoundTrips(c); ++lap) ring_echo();
  for (long b = 0; b < blocks; ++b) {
    for (int k = 0; k < kKinds; ++k) {
      const int kind = KindAt(b, k);
      for (long i = 0; i < per_kind; ++i) {
        if (kind == 0) raw_echo();
        if (kind == 1) payload_echo();
        if (kind == 2) ring_echo();
      }
    }
  }
}

}  // namespace

void PairedSpinRoundTrips(Harness& harness, const ipc::ConnectionOptions& options, long blocks,
                          long per_block, PairedSpin* out) {
  const Floors floors{static_cast<SharedWord*>(SharedAlloc(4096)),
                      static_cast<PayloadSlot*>(SharedAlloc(4096))};
  ++out->pairs;
  harness.ConnectedRun(
      options, [&](ipc::Connection& c) { TimeBlocks(c, floors, blocks, per_block, out); },
      [&](ipc::Connection& c) { EchoBlocks(c, floors, blocks, per_block); });
  munmap(floors.word, 4096);
  munmap(floors.slots, 4096);
}

PairedSummary SummarizePaired(const PairedSpin& paired) {
  PairedSummary s;
  if (paired.single.ratios.empty()) return s;
  Quartiles(paired.single.ratios, &s.q1, &s.ratio, &s.q3);
  s.payload_ratio = Median(paired.single.payload_ratios);
  s.batched_ratio = Median(paired.batched.ratios);
  s.batched_payload_ratio = Median(paired.batched.payload_ratios);
  // The host places the two vCPUs differently from second to second; the
  // bare floor's own p50 (batched: no clock in it) says where a block ran.
  struct Range {
    const char* name;
    double lo, hi;
  };
  const Range ranges[] = {
      {"floor < 60 ns", 0, 60}, {"floor 60-250 ns", 60, 250}, {"floor >= 250 ns", 250, 1e18}};
  for (const Range& r : ranges) {
    std::vector<double> s_bare, s_slot, b_bare, b_slot;
    for (size_t i = 0; i < paired.batched.raw_p50s.size(); ++i) {
      if (paired.batched.raw_p50s[i] < r.lo || paired.batched.raw_p50s[i] >= r.hi) continue;
      s_bare.push_back(paired.single.ratios[i]);
      s_slot.push_back(paired.single.payload_ratios[i]);
      b_bare.push_back(paired.batched.ratios[i]);
      b_slot.push_back(paired.batched.payload_ratios[i]);
    }
    if (s_bare.empty()) continue;
    s.bands.push_back(
        {r.name, s_bare.size(), Median(s_bare), Median(b_bare), Median(s_slot), Median(b_slot)});
  }
  return s;
}

}  // namespace grpc_shm::bench
