// The text report on stdout (see report.h).
#include <algorithm>
#include <cstdio>

#include "bench/ipc/report.h"

namespace grpc_shm::bench {

void PrintHeader(const Options& options, const Placement& placement,
                 const std::string& load_start) {
  std::printf("grpc-shm IPC core benchmark (%s mode)\n", options.quick ? "quick" : "default");
  if (placement.parent_cpu >= 0) {
    std::printf(
        "processes: parent (server, timing side) pinned to CPU %d, child (client) to CPU "
        "%d; %d CPUs available\n",
        placement.parent_cpu, placement.child_cpu, placement.cpus);
  } else {
    std::printf("processes: NOT pinned (%s; %d CPUs available)\n",
                options.pin ? "fewer than 2 CPUs" : "--no-pin", placement.cpus);
  }
  std::printf("load average at start: %s (1/5/15 min, runnable/total tasks)\n", load_start.c_str());
  std::printf("ring: %u bytes per direction requested\n", options.ring_bytes);
  std::printf(
      "latency: scenarios interleaved in %ld rounds, samples pooled; per scenario up to "
      "%ld timed round trips\n  (fewer where a round's %.1f s budget runs out), each round "
      "after up to %ld warm-up round trips (not counted)\n\n",
      options.rt_rounds, options.rt_iters, static_cast<double>(options.rt_budget_ns) * 1e-9,
      PerRoundBudget(options).warmup);
  std::fflush(stdout);
  if (placement.single_cpu) {
    std::printf(
        "NOTE: only one CPU: busy-waits yield and the client does not spin; spinning "
        "figures are not meaningful\n\n");
  }
}

void PrintLatency(const LatencyResults& latency) {
  std::printf(
      "Round-trip latency, 64-byte message (ns)      mean      p50      p99    p99.9  "
      "samples\n");
  for (const LatencyRow& r : latency.rows) {
    std::printf("  %-42s %8.0f %8.0f %8.0f %8.0f %8ld\n", r.label.c_str(), r.s.mean_ns, r.s.p50_ns,
                r.s.p99_ns, r.s.p999_ns, r.s.samples);
  }
  std::printf("\n");
  std::fflush(stdout);
}

void PrintPaired(const PairedSpin& paired, const PairedSummary& s, const Options& options) {
  constexpr int kBatch = PairedSpin::kBatch;
  std::printf(
      "Spinning round trip against its floors, paired: %ld process pairs x %ld blocks; each\n"
      "block times the bare-atomic spin, the 64 B slot spin and the ring (spin 1 s) in\n"
      "rotating order in one process pair, %ld samples each of 1 and of %d round trips\n",
      paired.pairs, options.paired_blocks, options.paired_per_block, kBatch);
  std::printf("  median of per-block p50 ratios      1 round trip/sample    %d per sample\n",
              kBatch);
  std::printf("  ring / bare atomic                  %5.2fx (%.2fx - %.2fx)   %5.2fx\n", s.ratio,
              s.q1, s.q3, s.batched_ratio);
  std::printf("  ring / 64 B slot                    %5.2fx                   %5.2fx\n",
              s.payload_ratio, s.batched_payload_ratio);
  std::printf("  by placement (bare floor p50, %d/sample)  blocks   vs bare     vs 64 B slot\n",
              kBatch);
  for (const PlacementBand& b : s.bands) {
    std::printf("    %-38s %6zu   %.2f / %.2fx  %.2f / %.2fx\n", b.name, b.blocks, b.vs_bare_single,
                b.vs_bare_batched, b.vs_slot_single, b.vs_slot_batched);
  }
  std::printf("    (each pair of figures: 1 round trip per sample / %d per sample)\n", kBatch);
  const double k = kBatch;
  std::printf(
      "  pooled p50 per round trip, 1/sample: bare %.0f ns, 64 B slot %.0f ns, ring %.0f ns\n"
      "                             %d/sample: bare %.1f ns, 64 B slot %.1f ns, ring %.1f ns\n\n",
      Summarize(paired.single.raw).p50_ns, Summarize(paired.single.payload).p50_ns,
      Summarize(paired.single.ring).p50_ns, kBatch, Summarize(paired.batched.raw).p50_ns / k,
      Summarize(paired.batched.payload).p50_ns / k, Summarize(paired.batched.ring).p50_ns / k);
  std::fflush(stdout);
}

namespace {

// "best (median)" msgs/s and GB/s, and with `sleeps` the consumer's and the
// producer's sleeps per message.
void PrintThroughputRow(const char* label, const Throughput& t, bool sleeps) {
  char rate[64], gbs[64];
  if (t.best_msgs_per_s >= 1e5) {
    std::snprintf(rate, sizeof(rate), "%.2fM (%.2fM)", t.best_msgs_per_s * 1e-6,
                  t.median_msgs_per_s * 1e-6);
  } else {
    std::snprintf(rate, sizeof(rate), "%.0f (%.0f)", t.best_msgs_per_s, t.median_msgs_per_s);
  }
  std::snprintf(gbs, sizeof(gbs), "%.2f (%.2f)", t.best_gb_per_s, t.median_gb_per_s);
  std::printf("  %-48s %18s %16s", label, rate, gbs);
  if (sleeps) std::printf(" %.4f / %.4f", t.parent_cs_per_msg, t.child_cs_per_msg);
  std::printf("\n");
}

}  // namespace

void PrintThroughput(const ThroughputResults& tp, const Options& options) {
  std::printf(
      "One-way throughput, child -> parent, payload copied out; best (median) of %ld "
      "reps in %ld rounds (each <= %.2f s, after a warm-up)\n",
      options.tp_reps * options.tp_rounds, options.tp_rounds, options.tp_rep_budget_s);
  std::printf("  %-48s %18s %16s %s\n", "", "msgs/s", "GB/s", "sleeps/msg cons/prod");
  PrintThroughputRow("64 B, spinning producer and consumer", tp.msg64_spin, true);
  PrintThroughputRow("64 B, default backend, spin 0 (sleeping wakeups)", tp.msg64_sleep, true);
  PrintThroughputRow("64 KiB, spinning (WriteMessage / Peek+copy)", tp.msg64k_spin, true);
  PrintThroughputRow("1 MiB, spinning (WriteMessage / Peek+copy)", tp.msg1m_spin, true);
  PrintThroughputRow("diag: 64 B, bare RingWriter/Reader, no fence", tp.bare64, false);
  PrintThroughputRow("diag: 64 B, bare ring + WakePeerIf's fence", tp.bare64_fence, false);
  std::printf("Single-core memcpy (same run)                                          GB/s\n");
  std::printf("  %-56s %20.2f\n", "memcpy 64 B blocks", tp.memcpy64);
  std::printf("  %-56s %20.2f\n", "memcpy 64 KiB blocks (cache-resident)", tp.memcpy64k);
  std::printf("  %-56s %20.2f\n", "memcpy 1 MiB blocks", tp.memcpy1m);
  std::printf("  %-56s %20.2f\n", "memcpy 64 MiB blocks (DRAM, for reference)", tp.memcpy64m);
  std::printf("\n");
}

namespace {

// A target's value or threshold in its unit: "1.23x", "45%" or "12.34"
// (thresholds of rates without decimals).
std::string FormatTargetFigure(const Target& t, double v, bool threshold) {
  char buf[32];
  if (t.unit == "x") {
    std::snprintf(buf, sizeof(buf), "%.2fx", v);
  } else if (t.unit.empty()) {
    std::snprintf(buf, sizeof(buf), "%.0f%%", v * 100);
  } else {
    std::snprintf(buf, sizeof(buf), threshold ? "%.0f" : "%.2f", v);
  }
  return buf;
}

}  // namespace

void PrintTargets(const Results& results, bool single_cpu) {
  std::printf(
      "Targets (issue 2)                                          value    target  result\n");
  for (const Target& t : results.targets) {
    const std::string tgt =
        (t.lower_is_better ? "<= " : ">= ") + FormatTargetFigure(t, t.target, true);
    std::printf("  %-54s %8s %9s  %s\n", t.name.c_str(),
                FormatTargetFigure(t, t.value, false).c_str(), tgt.c_str(),
                t.pass() ? "PASS" : "MISS");
  }
  const PairedSummary& paired = results.paired;
  if (!single_cpu) {
    std::printf(
        "  (spinning RT, paired blocks: %.2fx the 64 B slot spin, which carries the same\n"
        "  payload with no framing; timing %d round trips per sample, %.2fx the bare atomic\n"
        "  and %.2fx the 64 B slot)\n",
        paired.payload_ratio, PairedSpin::kBatch, paired.batched_ratio,
        paired.batched_payload_ratio);
  }
  const LatencyResults& l = results.latency;
  const LatencyStats& futex_floor = l.Find("raw_futex");
  const LatencyStats& spin_floor = l.Find("raw_spin");
  std::printf("  (spinning RT p50 / raw spin p50, pooled over the interleaved rounds: %.2fx)\n",
              l.Find("ring_spin").p50_ns / spin_floor.p50_ns);
  std::printf("  (spinning RT p50 / raw spin with 64 B payload p50: %.2fx)\n",
              l.Find("ring_spin").p50_ns / l.Find("raw_spin_payload").p50_ns);
  std::printf("  (mean ratios: socket %.2fx, futex %.2fx, eventfd %.2fx, spin %.2fx)\n",
              l.Find("ring_socket").mean_ns / futex_floor.mean_ns,
              l.Find("ring_futex").mean_ns / futex_floor.mean_ns,
              l.Find("ring_eventfd").mean_ns / futex_floor.mean_ns,
              l.Find("ring_spin").mean_ns / spin_floor.mean_ns);
}

void PrintRunConditions(const RunConditions& run) {
  // More than 50 preemptions a second: someone else wanted our CPUs.
  const bool competed =
      static_cast<double>(run.preempt_parent + run.preempt_children) > 50.0 * run.seconds;
  std::printf(
      "\npreemptions (involuntary context switches) during the run: parent %ld, children "
      "%ld%s",
      run.preempt_parent, run.preempt_children,
      competed ? "\n  WARNING: other work competed for the CPUs; spinning figures and "
                 "throughput are pessimistic"
               : "");
  std::printf("\nload average at end: %s; total time %.1f s\n", run.load_end.c_str(), run.seconds);
}

}  // namespace grpc_shm::bench
