// ipc_bench: the IPC core between two processes, next to the physical floors,
// all measured in one run.
//
//   1. Round-trip latency of a 64-byte message (mean/p50/p99/p99.9) through a
//      Connection: sleeping wakeups (spin 0) with the default backend (memfd +
//      socketpair doorbell), the eventfd and futex doorbells, and the
//      portable POSIX backend (shm_open + socketpair), and spinning (spin so
//      long it never sleeps).
//   2. Raw floors: busy-spin and futex ping-pong on one bare shared atomic
//      (MAP_SHARED|MAP_ANONYMOUS before fork, no ring), an eventfd ping-pong,
//      and a busy-spin ping-pong that carries 64 bytes in the polled slot.
//   2b. The spinning round trip against its floors in paired blocks: in
//      fresh process pairs, blocks of the bare-atomic spin, the 64-byte slot
//      spin and the ring alternate; the median of per-block p50 ratios is the
//      spinning target's figure, broken down by the floor each block saw (the
//      host moves the vCPUs between placements where a cache-line transfer
//      costs 2-10x more or less). Each block also times samples of 8 round
//      trips, which leave the clock read (~30 ns here) out of both sides.
//   3. One-way throughput: 64-byte messages/s with spinning producer and
//      consumer, and GB/s for 64 KiB and 1 MiB messages (WriteMessage on one
//      side, Peek + copy out + Consume on the other), next to single-core
//      memcpy of the same sizes.
//   4. Ratios against the targets of issue 2, PASS/MISS each.
//
// Rows marked "diag:" locate costs: the bare RingWriter/RingReader without a
// Connection (with and without the seq_cst fence Connection::WakePeerIf adds
// per frame), a spinning round trip on a fresh connection's first lap (page
// faults on untouched ring pages), a 64 B one-way stream with sleeping
// wakeups (and how often each side went to sleep).
//
// Method: latency scenarios run interleaved in rounds (samples pooled), each
// on a fresh connection whose rings are first swept once with bulk data (so
// page faults of first touches are not timed), then warmed up; the number of
// timed round trips is capped by count and by a time budget. Throughput
// figures are the best and median of time-bounded repetitions after a
// warm-up, run in rounds spread over the run. The load average is printed:
// other work on the machine skews everything, spinning figures most.
//
// Processes: the parent listens (Listener::Listen), forks, and the child
// Connect()s. Parent and child are pinned to different CPUs when two or more
// are available. The parent is the server side of every connection, the
// child the client.
//
// Note on spinning: in the spinning scenarios both sides use the library's
// own spin (options.spin) in ReadFrame()/WriteFrame()/WriteMessage().
//
// Usage: ipc_bench [--quick] [--json FILE] [--ring-bytes N] [--no-pin]
//                  [--rounds N] [--only KEY,...]
//
// Code: harness.h (process pairs, pinning, the timing loop), options.h (flags),
// one file per scenario family (floors, ring_round_trip, paired_spin,
// one_way, bare_ring), the sections that run them (latency, throughput,
// targets) and report.h (text and JSON output).
#include <signal.h>
#include <sys/resource.h>

#include "bench/ipc/backends.h"
#include "bench/ipc/harness.h"
#include "bench/ipc/latency.h"
#include "bench/ipc/options.h"
#include "bench/ipc/report.h"
#include "bench/ipc/targets.h"
#include "bench/ipc/throughput.h"

int main(int argc, char** argv) {
  using namespace grpc_shm::bench;  // NOLINT(build/namespaces): main only
  Options options;
  if (const int status = ParseOptions(argc, argv, &options); status >= 0) return status;
  signal(SIGPIPE, SIG_IGN);
  const Placement placement = DetectPlacement(options.pin);
  Harness harness(placement, options.scenario_timeout_s);
  const uint64_t start = NowNs();
  Results results;
  results.run.load_start = LoadAverage();
  PrintHeader(options, placement, results.run.load_start);
  const Backends backends = MakeBackends(options.ring_bytes, placement.single_cpu);

  // 1, 2 and 2b: latency.
  results.latency = RunLatency(harness, options, backends);
  PrintLatency(results.latency);
  if (results.latency.ran_paired) {
    results.paired = SummarizePaired(results.latency.paired);
    PrintPaired(results.latency.paired, results.paired, options);
  }
  if (!options.only.empty() && !options.OnlyHas("throughput")) return 0;

  // 3: throughput.
  results.throughput = RunThroughput(harness, options, backends);
  PrintThroughput(results.throughput, options);
  // The targets need every scenario.
  if (!options.only.empty()) return 0;

  // 4: targets.
  results.targets =
      MakeTargets(results.latency, results.paired, results.throughput, placement.single_cpu);
  PrintTargets(results, placement.single_cpu);
  results.run.seconds = static_cast<double>(NowNs() - start) * 1e-9;
  results.run.load_end = LoadAverage();
  results.run.preempt_parent = Preemptions(RUSAGE_SELF);
  results.run.preempt_children = Preemptions(RUSAGE_CHILDREN);
  PrintRunConditions(results.run);
  if (!options.json_path.empty()) WriteJson(options.json_path, options, placement, results);
  return 0;
}
