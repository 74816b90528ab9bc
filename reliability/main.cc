// grpc_shm_reliability: the kill -9 chaos harness and the soak test
// (scripts/chaos.sh, scripts/soak.sh). One binary, so the driver can start
// its servers and clients as copies of itself.
#include <malloc.h>

#include <cstdio>
#include <cstring>

#include "reliability/peer_common.h"

int main(int argc, char** argv) {
  using namespace grpc_shm::reliability;
  // Fixed allocator thresholds, so RSS shows what is live: with glibc's
  // default dynamic thresholds, a process that freed multi-megabyte
  // messages keeps up to 64 MiB of free memory per malloc arena (out of
  // malloc_trim's reach, as the top of a thread arena), which would read as
  // a leak. Large buffers are mapped and unmapped on their own instead.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
  const char* mode = argc >= 2 ? argv[1] : "";
  if (std::strcmp(mode, "chaos") == 0) return RunChaos(argc, argv);
  if (std::strcmp(mode, "soak") == 0) return RunSoak(argc, argv);
  if (std::strcmp(mode, "server") == 0) return RunServer(argc, argv);
  if (std::strcmp(mode, "client") == 0) return RunChaosClient(argc, argv);
  if (std::strcmp(mode, "probe") == 0) return RunProbe(argc, argv);
  if (std::strcmp(mode, "soak-client") == 0) return RunSoakClient(argc, argv);
  std::fprintf(stderr,
               "usage: %s chaos [--trials=N] [--seed=S] [--trial=K] [--modes=default,thread]\n"
               "       %s soak [--seconds=N] [--clients=N] [--threads=N] [--seed=S]\n",
               argv[0], argv[0]);
  return 2;
}
