#include "bench/ipc/backends.h"

#include <chrono>

#include "plugin/platform/platform.h"

namespace grpc_shm::bench {

Backends MakeBackends(uint32_t ring_bytes, bool single_cpu) {
  Backends b;
  b.socket = ipc::DefaultConnectionOptions();
  b.socket.ring_bytes = ring_bytes;
  b.socket.spin = std::chrono::nanoseconds(0);
  b.eventfd = b.socket;
  b.eventfd.memory = platform::SharedMemoryKind::kMemfd;
  b.eventfd.doorbell = platform::DoorbellKind::kEventFd;
  b.futex = b.eventfd;
  b.futex.doorbell = platform::DoorbellKind::kFutex;
  b.posix = ipc::PosixConnectionOptions();
  b.posix.ring_bytes = ring_bytes;
  b.posix.spin = std::chrono::nanoseconds(0);
  b.spin = b.socket;
  b.spin.spin =
      single_cpu ? std::chrono::nanoseconds(0) : std::chrono::nanoseconds(std::chrono::seconds(1));
  return b;
}

}  // namespace grpc_shm::bench
