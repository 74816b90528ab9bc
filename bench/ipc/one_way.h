// One-way throughput through a Connection.
#ifndef GRPC_SHM_BENCH_IPC_ONE_WAY_H_
#define GRPC_SHM_BENCH_IPC_ONE_WAY_H_

#include <cstddef>

#include "bench/ipc/harness.h"
#include "bench/ipc/stats.h"
#include "plugin/ipc/connection.h"

namespace grpc_shm::bench {

// One-way stream of messages of `size` bytes, child (client, producer) ->
// parent (server, consumer): `warm` unmeasured messages, then `count` more in
// plan.reps measured repetitions (fewer per repetition where the warm-up's
// rate says one would overrun plan.rep_budget_s). The producer uses
// WriteMessage (chunks of a quarter ring for big messages); the consumer
// reads every frame, copies its payload out into a message buffer, and
// consumes it. Timing is on the consumer, from sending "go" to receiving the
// last byte of the repetition. Also counts how often each side slept.
Throughput OneWay(Harness& harness, const ipc::ConnectionOptions& options, size_t size, long count,
                  long warm, const RepetitionPlan& plan);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_ONE_WAY_H_
