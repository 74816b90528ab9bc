#include "bench/ipc/throughput.h"

#include <algorithm>

#include "bench/ipc/bare_ring.h"
#include "bench/ipc/floors.h"
#include "bench/ipc/one_way.h"

namespace grpc_shm::bench {

ThroughputResults RunThroughput(Harness& harness, const Options& o, const Backends& backends) {
  constexpr size_t kKiB64 = 64 << 10;
  constexpr size_t kMiB1 = 1 << 20;
  const RepetitionPlan plan{o.tp_reps, o.tp_rep_budget_s};
  const long n = o.tp_rounds;
  // Big messages: the same bytes per run whatever the message size.
  auto big_count = [&](size_t size) { return static_cast<long>(o.big_bytes / size) / n; };
  auto big_warm = [&](size_t size) { return static_cast<long>(o.big_warmup_bytes / size); };
  ThroughputResults t;
  for (long r = 0; r < n; ++r) {
    t.msg64_spin =
        Merge(t.msg64_spin, OneWay(harness, backends.spin, 64, o.tp_msgs / n, o.tp_warmup, plan));
    // Sleeping wake-ups are slower: a quarter of the messages.
    t.msg64_sleep = Merge(t.msg64_sleep, OneWay(harness, backends.socket, 64, o.tp_msgs / 4 / n,
                                                o.tp_warmup / 4, plan));
    t.msg64k_spin = Merge(t.msg64k_spin, OneWay(harness, backends.spin, kKiB64, big_count(kKiB64),
                                                big_warm(kKiB64), plan));
    t.msg1m_spin = Merge(t.msg1m_spin, OneWay(harness, backends.spin, kMiB1, big_count(kMiB1),
                                              big_warm(kMiB1), plan));
    t.bare64 = Merge(t.bare64, BareRingOneWay(harness, o.ring_bytes, 64, false, o.tp_msgs / n,
                                              o.tp_warmup, plan));
    t.bare64_fence = Merge(t.bare64_fence, BareRingOneWay(harness, o.ring_bytes, 64, true,
                                                          o.tp_msgs / n, o.tp_warmup, plan));
    t.memcpy64 = std::max(t.memcpy64, MemcpyGBs(64, o.memcpy_bytes / 8 / n, o.tp_reps));
    t.memcpy64k = std::max(t.memcpy64k, MemcpyGBs(kKiB64, o.memcpy_bytes / n, o.tp_reps));
    t.memcpy1m = std::max(t.memcpy1m, MemcpyGBs(kMiB1, o.memcpy_bytes / n, o.tp_reps));
    t.memcpy64m = std::max(t.memcpy64m, MemcpyGBs(64 << 20, o.memcpy_bytes / 2 / n, o.tp_reps));
  }
  return t;
}

}  // namespace grpc_shm::bench
