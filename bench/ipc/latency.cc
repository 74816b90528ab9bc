#include "bench/ipc/latency.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "bench/ipc/bare_ring.h"
#include "bench/ipc/floors.h"
#include "bench/ipc/ring_round_trip.h"

namespace grpc_shm::bench {

namespace {

struct Scenario {
  std::string key, label;
  std::function<Samples(const RoundTripBudget&)> run;
  Samples samples;
};

// Every latency scenario, in report order.
std::vector<Scenario> AllScenarios(Harness& h, const Options& o, const Backends& b) {
  const bool one_cpu = h.placement().single_cpu;
  auto ring = [&h](const ipc::ConnectionOptions& options, bool pretouch = true) {
    return [&h, options, pretouch](const RoundTripBudget& budget) {
      return RingRoundTrip(h, options, budget, pretouch);
    };
  };
  auto floor = [&h](Samples (*run)(Harness&, const RoundTripBudget&)) {
    return [&h, run](const RoundTripBudget& budget) { return run(h, budget); };
  };
  auto bare = [&h, ring_bytes = o.ring_bytes](bool fence) {
    return [&h, ring_bytes, fence](const RoundTripBudget& budget) {
      return BareRingRoundTrip(h, ring_bytes, fence, budget);
    };
  };
  return {
      {"raw_spin", "raw busy-spin ping-pong, bare atomic", floor(RawSpinPingPong), {}},
      {"raw_spin_payload",
       "raw busy-spin, 64 B payload in polled slot",
       floor(RawSpinPayloadPingPong),
       {}},
      {"raw_futex", "raw futex ping-pong, bare atomic", floor(RawFutexPingPong), {}},
      {"raw_eventfd", "raw eventfd ping-pong", floor(RawEventFdPingPong), {}},
      {"ring_spin",
       one_cpu ? "ring, 1 CPU: spin 0 (sleeps)" : "ring, spinning (spin 1 s)",
       ring(b.spin),
       {}},
      {"ring_spin_cold", "diag: ring, spinning, first lap (cold pages)", ring(b.spin, false), {}},
      {"ring_eventfd", "ring, memfd+eventfd, spin 0", ring(b.eventfd), {}},
      {"ring_futex", "ring, memfd+futex, spin 0", ring(b.futex), {}},
      {"ring_socket", "ring, memfd+socket (default), spin 0", ring(b.socket), {}},
      {"ring_posix", "ring, posix shm+socket (POSIX), spin 0", ring(b.posix), {}},
      {"bare_ring_spin", "diag: bare RingWriter/Reader, spin, no fence", bare(false), {}},
      {"bare_ring_spin_fence", "diag: bare ring + WakePeerIf's fence", bare(true), {}},
  };
}

}  // namespace

const LatencyStats& LatencyResults::Find(const std::string& key) const {
  for (const LatencyRow& r : rows) {
    if (r.key == key) return r.s;
  }
  Die("no row " + key);
}

RoundTripBudget PerRoundBudget(const Options& options) {
  RoundTripBudget b;
  b.warmup = std::max<long>(500, options.rt_warmup / options.rt_rounds);
  b.max_samples = options.rt_iters / options.rt_rounds;
  b.warm_budget_ns = options.rt_warm_budget_ns;
  b.budget_ns = options.rt_budget_ns;
  return b;
}

LatencyResults RunLatency(Harness& harness, const Options& options, const Backends& backends) {
  std::vector<Scenario> scenarios = AllScenarios(harness, options, backends);
  if (!options.only.empty()) {
    std::vector<Scenario> chosen;
    for (Scenario& sc : scenarios) {
      if (options.OnlyHas(sc.key)) chosen.push_back(std::move(sc));
    }
    if (chosen.empty() && !options.OnlyHas("paired") && !options.OnlyHas("throughput")) {
      Die("--only matched no scenario");
    }
    scenarios = std::move(chosen);
  }
  LatencyResults results;
  results.ran_paired =
      !harness.placement().single_cpu && (options.only.empty() || options.OnlyHas("paired"));
  const RoundTripBudget budget = PerRoundBudget(options);
  for (long r = 0; r < options.rt_rounds; ++r) {
    for (Scenario& sc : scenarios) {
      const Samples got = sc.run(budget);
      sc.samples.insert(sc.samples.end(), got.begin(), got.end());
    }
    for (long p = 0; results.ran_paired && p < options.paired_pairs_per_round; ++p) {
      PairedSpinRoundTrips(harness, backends.spin, options.paired_blocks, options.paired_per_block,
                           &results.paired);
    }
  }
  for (Scenario& sc : scenarios) {
    results.rows.push_back({sc.key, sc.label, Summarize(std::move(sc.samples))});
  }
  return results;
}

}  // namespace grpc_shm::bench
