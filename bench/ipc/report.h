// ipc_bench's output: the text report on stdout and the JSON file. Both keep
// their layout stable; bench/run.sh, bench/report.py and the README read
// them.
#ifndef GRPC_SHM_BENCH_IPC_REPORT_H_
#define GRPC_SHM_BENCH_IPC_REPORT_H_

#include <string>
#include <vector>

#include "bench/ipc/harness.h"
#include "bench/ipc/latency.h"
#include "bench/ipc/options.h"
#include "bench/ipc/paired_spin.h"
#include "bench/ipc/targets.h"
#include "bench/ipc/throughput.h"

namespace grpc_shm::bench {

// The machine around the run: other work on it skews every figure.
struct RunConditions {
  std::string load_start, load_end;  // LoadAverage()
  double seconds = 0;
  long preempt_parent = 0, preempt_children = 0;  // Preemptions()
};

// Everything a full run measured.
struct Results {
  LatencyResults latency;
  PairedSummary paired;
  ThroughputResults throughput;
  std::vector<Target> targets;
  RunConditions run;
};

// Text sections, in the order they appear.
void PrintHeader(const Options& options, const Placement& placement, const std::string& load_start);
void PrintLatency(const LatencyResults& latency);
void PrintPaired(const PairedSpin& paired, const PairedSummary& summary, const Options& options);
void PrintThroughput(const ThroughputResults& tp, const Options& options);
void PrintTargets(const Results& results, bool single_cpu);
void PrintRunConditions(const RunConditions& run);

// Writes every figure of a full run to `path` as JSON; dies if it cannot.
void WriteJson(const std::string& path, const Options& options, const Placement& placement,
               const Results& results);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_REPORT_H_
