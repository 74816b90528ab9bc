// The throughput section: one-way streams through a Connection and through a
// bare ring, and single-core memcpy of the same sizes, in rounds.
#ifndef GRPC_SHM_BENCH_IPC_THROUGHPUT_H_
#define GRPC_SHM_BENCH_IPC_THROUGHPUT_H_

#include "bench/ipc/backends.h"
#include "bench/ipc/harness.h"
#include "bench/ipc/options.h"
#include "bench/ipc/stats.h"

namespace grpc_shm::bench {

struct ThroughputResults {
  Throughput msg64_spin;   // 64 B, spinning producer and consumer
  Throughput msg64_sleep;  // 64 B, default backend, spin 0
  Throughput msg64k_spin, msg1m_spin;
  Throughput bare64, bare64_fence;  // diagnostics: bare ring, 64 B
  // Single-core memcpy GB/s, best over the rounds.
  double memcpy64 = 0, memcpy64k = 0, memcpy1m = 0, memcpy64m = 0;
};

// Runs every throughput scenario in options.tp_rounds rounds, like the
// latency scenarios: memory bandwidth on this host drops 3-5x for seconds at
// a time (other tenants), and the repetitions of one scenario must not all
// land in one such period. Best and median are over the repetitions of
// every round; memcpy is measured in each round too.
ThroughputResults RunThroughput(Harness& harness, const Options& options, const Backends& backends);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_THROUGHPUT_H_
