// The connection settings ipc_bench compares.
#ifndef GRPC_SHM_BENCH_IPC_BACKENDS_H_
#define GRPC_SHM_BENCH_IPC_BACKENDS_H_

#include <cstdint>

#include "plugin/ipc/connection.h"

namespace grpc_shm::bench {

struct Backends {
  // With spin 0, so every wait sleeps: the default backend (Linux: memfd +
  // socketpair doorbell), the Linux eventfd and futex doorbells, and the
  // portable POSIX backend (shm_open + socketpair doorbell).
  ipc::ConnectionOptions socket, eventfd, futex, posix;
  // The default backend with a spin so long it never sleeps (spin 0 with a
  // single CPU, where the library's spin would hold the only CPU for up to a
  // second).
  ipc::ConnectionOptions spin;
};

Backends MakeBackends(uint32_t ring_bytes, bool single_cpu);

}  // namespace grpc_shm::bench

#endif  // GRPC_SHM_BENCH_IPC_BACKENDS_H_
