#include "bench/ipc/one_way.h"

#include <sys/mman.h>

#include <algorithm>
#include <vector>

#include "bench/ipc/ping_protocols.h"
#include "plugin/ipc/frame_format.h"

namespace grpc_shm::bench {

namespace {

// The child's figures, in shared memory: the parent reads them after the
// child has exited.
struct alignas(64) ChildReport {
  long ctx_switches = 0;
};

// The consumer (parent): receives `n` messages of `size` bytes into `dst`
// after sending "go" with `n`; returns messages per second. `*sleeps` gets
// the times this process went to sleep meanwhile.
double ReceiveRepetition(ipc::Connection& c, size_t size, long n, std::vector<uint8_t>* dst,
                         long* sleeps) {
  ipc::FrameView f;
  const long cs0 = VoluntaryCtxSwitches();
  const uint64_t t0 = NowNs();
  Check(c.WriteFrame(ControlHeader(static_cast<uint32_t>(n)), nullptr, 0), "go");
  for (long m = 0; m < n; ++m) {
    size_t off = 0;
    for (;;) {
      Check(c.ReadFrame(&f), "tp recv");
      if (off + f.payload_size() > size) Die("tp: message too long");
      f.CopyPayloadTo(dst->data() + off);
      off += f.payload_size();
      const bool more = f.header.flags & ipc::kFlagMoreChunks;
      c.Consume();
      if (!more) break;
    }
    if (off != size) Die("tp: message too short");
  }
  const uint64_t t1 = NowNs();
  *sleeps = VoluntaryCtxSwitches() - cs0;
  // Spot check of the copied payload: first and last byte of the last
  // message carry its index.
  const uint8_t tag = static_cast<uint8_t>(n - 1);
  if ((*dst)[0] != tag || (*dst)[size - 1] != tag) Die("tp: payload mismatch");
  return static_cast<double>(n) / (static_cast<double>(t1 - t0) * 1e-9);
}

// The producer (child): sends as many messages as each "go" asks for, until
// a "go" with 0. Returns the times it slept in the measured repetitions
// (every one after the warm-up, if there was one).
long SendRepetitions(ipc::Connection& c, size_t size, bool warm_up_first) {
  std::vector<uint8_t> src(size, 0);
  ipc::FrameView f;
  long sleeps = 0;
  for (int round = 0;; ++round) {
    Check(c.ReadFrame(&f), "wait go");
    const long n = f.header.aux;
    c.Consume();
    if (n == 0) return sleeps;
    const long cs0 = VoluntaryCtxSwitches();
    for (long m = 0; m < n; ++m) {
      src[0] = src[size - 1] = static_cast<uint8_t>(m);
      Check(c.WriteMessage(1, 0, src.data(), size), "WriteMessage");
    }
    if (round > 0 || !warm_up_first) sleeps += VoluntaryCtxSwitches() - cs0;
  }
}

}  // namespace

Throughput OneWay(Harness& harness, const ipc::ConnectionOptions& options, size_t size, long count,
                  long warm, const RepetitionPlan& plan) {
  auto* report = static_cast<ChildReport*>(SharedAlloc(4096));
  const long reps = std::max<long>(1, std::min<long>(plan.reps, count));
  const long max_per_rep = count / reps;
  long per_rep = max_per_rep;
  Throughput result;
  harness.ConnectedRun(
      options,
      [&](ipc::Connection& c) {
        std::vector<uint8_t> dst(size + 64);
        long sleeps = 0;
        if (warm > 0) {
          per_rep = RepCount(plan, ReceiveRepetition(c, size, warm, &dst, &sleeps), max_per_rep);
        }
        long total_sleeps = 0;
        std::vector<double> rates;
        for (long r = 0; r < reps; ++r) {
          rates.push_back(ReceiveRepetition(c, size, per_rep, &dst, &sleeps));
          total_sleeps += sleeps;
        }
        Check(c.WriteFrame(ControlHeader(0), nullptr, 0), "done");
        FillRates(rates, size, &result);
        result.parent_cs_per_msg =
            static_cast<double>(total_sleeps) / static_cast<double>(per_rep * reps);
      },
      [&](ipc::Connection& c) { report->ctx_switches = SendRepetitions(c, size, warm > 0); });
  result.child_cs_per_msg =
      static_cast<double>(report->ctx_switches) / static_cast<double>(per_rep * reps);
  munmap(report, 4096);
  return result;
}

}  // namespace grpc_shm::bench
