// The JSON file (see report.h). Written with printf so the layout (one key
// per line where the text report has a row) stays exactly as readers expect.
#include <cstdio>

#include "bench/ipc/report.h"

namespace grpc_shm::bench {

namespace {

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o;
}

void WriteLatency(FILE* out, const std::vector<LatencyRow>& rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const LatencyStats& s = rows[i].s;
    std::fprintf(out,
                 "    \"%s\": {\"label\": \"%s\", \"samples\": %ld, \"mean\": %.1f, \"p50\": "
                 "%.1f, \"p99\": %.1f, \"p999\": %.1f, \"min\": %.1f, \"max\": %.1f}%s\n",
                 rows[i].key.c_str(), JsonEscape(rows[i].label).c_str(), s.samples, s.mean_ns,
                 s.p50_ns, s.p99_ns, s.p999_ns, s.min_ns, s.max_ns, i + 1 < rows.size() ? "," : "");
  }
}

void WritePaired(FILE* out, const PairedSpin& paired, const PairedSummary& s,
                 const Options& options) {
  std::fprintf(out,
               "  \"paired_spin\": {\"pairs\": %ld, \"blocks\": %ld, \"per_block\": %ld, "
               "\"ratio_median\": %.3f, \"ratio_q1\": %.3f, \"ratio_q3\": %.3f, "
               "\"ratio_vs_64b_slot_median\": %.3f, \"batched_ratio_median\": %.3f, "
               "\"batched_ratio_vs_64b_slot_median\": %.3f, \"raw_p50\": %.1f, "
               "\"ring_p50\": %.1f},\n",
               paired.pairs, options.paired_blocks, options.paired_per_block, s.ratio, s.q1, s.q3,
               s.payload_ratio, s.batched_ratio, s.batched_payload_ratio,
               Summarize(paired.single.raw).p50_ns, Summarize(paired.single.ring).p50_ns);
}

void WriteThroughput(FILE* out, const ThroughputResults& tp) {
  std::fprintf(out, "  \"throughput\": {\n");
  std::fprintf(out, "    \"msg64_spin_msgs_per_s\": %.0f,\n", tp.msg64_spin.best_msgs_per_s);
  std::fprintf(out, "    \"msg64_default_sleep_msgs_per_s\": %.0f,\n",
               tp.msg64_sleep.best_msgs_per_s);
  std::fprintf(out, "    \"msg64_default_sleep_sleeps_per_msg\": [%.5f, %.5f],\n",
               tp.msg64_sleep.parent_cs_per_msg, tp.msg64_sleep.child_cs_per_msg);
  std::fprintf(out, "    \"diag_bare_ring_msg64_msgs_per_s\": %.0f,\n", tp.bare64.best_msgs_per_s);
  std::fprintf(out, "    \"diag_bare_ring_fence_msg64_msgs_per_s\": %.0f,\n",
               tp.bare64_fence.best_msgs_per_s);
  std::fprintf(out, "    \"msg64k_spin_gb_per_s\": %.3f,\n", tp.msg64k_spin.best_gb_per_s);
  std::fprintf(out, "    \"msg1m_spin_gb_per_s\": %.3f,\n", tp.msg1m_spin.best_gb_per_s);
  std::fprintf(out, "    \"memcpy64_gb_per_s\": %.3f,\n", tp.memcpy64);
  std::fprintf(out, "    \"memcpy64k_gb_per_s\": %.3f,\n", tp.memcpy64k);
  std::fprintf(out, "    \"memcpy1m_gb_per_s\": %.3f,\n", tp.memcpy1m);
  std::fprintf(out, "    \"memcpy64m_gb_per_s\": %.3f\n  },\n", tp.memcpy64m);
}

void WriteTargets(FILE* out, const std::vector<Target>& targets) {
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    std::fprintf(out,
                 "    {\"name\": \"%s\", \"value\": %.4f, \"target\": %.4f, \"lower_is_better\": "
                 "%s, \"pass\": %s}%s\n",
                 JsonEscape(t.name).c_str(), t.value, t.target,
                 t.lower_is_better ? "true" : "false", t.pass() ? "true" : "false",
                 i + 1 < targets.size() ? "," : "");
  }
}

}  // namespace

void WriteJson(const std::string& path, const Options& options, const Placement& placement,
               const Results& results) {
  FILE* out = std::fopen(path.c_str(), "w");
  if (!out) Die("cannot write " + path);
  std::fprintf(out, "{\n  \"mode\": \"%s\",\n  \"parent_cpu\": %d,\n  \"child_cpu\": %d,\n",
               options.quick ? "quick" : "default", placement.parent_cpu, placement.child_cpu);
  std::fprintf(out, "  \"cpus\": %d,\n  \"ring_bytes\": %u,\n  \"latency_ns\": {\n", placement.cpus,
               options.ring_bytes);
  WriteLatency(out, results.latency.rows);
  std::fprintf(out, "  },\n");
  WritePaired(out, results.latency.paired, results.paired, options);
  WriteThroughput(out, results.throughput);
  std::fprintf(out, "  \"targets\": [\n");
  WriteTargets(out, results.targets);
  const RunConditions& run = results.run;
  std::fprintf(out, "  ],\n  \"load_start\": \"%s\",\n  \"load_end\": \"%s\",\n",
               run.load_start.c_str(), run.load_end.c_str());
  std::fprintf(out, "  \"preemptions\": {\"parent\": %ld, \"children\": %ld},\n",
               run.preempt_parent, run.preempt_children);
  std::fprintf(out, "  \"seconds\": %.1f\n}\n", run.seconds);
  std::fclose(out);
}

}  // namespace grpc_shm::bench
