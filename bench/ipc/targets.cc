#include "bench/ipc/targets.h"

namespace grpc_shm::bench {

std::vector<Target> MakeTargets(const LatencyResults& latency, const PairedSummary& paired,
                                const ThroughputResults& tp, bool single_cpu) {
  const double futex_floor = latency.Find("raw_futex").p50_ns;
  const double spin_floor = latency.Find("raw_spin").p50_ns;
  return {
      {"sleeping RT (default, socket doorbell) p50 / futex p50",
       latency.Find("ring_socket").p50_ns / futex_floor, 1.5, true, "x"},
      {"sleeping RT (futex doorbell) p50 / raw futex p50",
       latency.Find("ring_futex").p50_ns / futex_floor, 1.5, true, "x"},
      {"sleeping RT (eventfd doorbell) p50 / raw futex p50",
       latency.Find("ring_eventfd").p50_ns / futex_floor, 1.5, true, "x"},
      {single_cpu ? "spinning RT p50 / raw spin p50 (1 CPU: not meaningful)"
                  : "spinning RT p50 / raw spin p50 (paired blocks)",
       single_cpu ? latency.Find("ring_spin").p50_ns / spin_floor : paired.ratio, 2.0, true, "x"},
      {"64 B one-way, spinning consumer (M msgs/s)", tp.msg64_spin.best_msgs_per_s * 1e-6, 10.0,
       false, "M/s"},
      {"64 KiB bandwidth / memcpy 64 KiB", tp.msg64k_spin.best_gb_per_s / tp.memcpy64k, 0.5, false,
       ""},
      {"1 MiB bandwidth / memcpy 1 MiB", tp.msg1m_spin.best_gb_per_s / tp.memcpy1m, 0.5, false, ""},
  };
}

}  // namespace grpc_shm::bench
