#include "plugin/transport/options_args.h"

#include <algorithm>
#include <climits>

namespace grpc_shm {
namespace transport {

uint32_t NormalizeRingBytes(uint64_t bytes) {
  uint64_t ring = ipc::kMinRingBytes;
  while (ring < bytes && ring < ipc::kMaxRingBytes) ring <<= 1;
  return static_cast<uint32_t>(ring);
}

ipc::ConnectionOptions ToConnectionOptions(const ShmOptions& options) {
  ipc::ConnectionOptions out = ipc::DefaultConnectionOptions();
  out.ring_bytes = NormalizeRingBytes(options.ring_bytes);
  out.spin = options.spin_budget;
  out.handshake_timeout = options.handshake_timeout;
  // The poller must be able to wait on the doorbell with epoll; a futex
  // doorbell cannot be polled.
  if (out.doorbell == platform::DoorbellKind::kFutex) {
    out.doorbell = platform::DoorbellKind::kSocket;
  }
  return out;
}

grpc_core::ChannelArgs AddOptionsToArgs(const ShmOptions& options, grpc_core::ChannelArgs args) {
  auto clamp = [](int64_t v) {
    return static_cast<int>(std::min<int64_t>(std::max<int64_t>(v, 0), INT_MAX));
  };
  return args.Set(kArgIsShm, 1)
      .Set(kArgRingBytes, clamp(NormalizeRingBytes(options.ring_bytes)))
      .Set(kArgSpinNanos, clamp(options.spin_budget.count()))
      .Set(kArgHandshakeMs, clamp(options.handshake_timeout.count()));
}

ipc::ConnectionOptions ConnectionOptionsFromArgs(const grpc_core::ChannelArgs& args) {
  ShmOptions options;
  if (auto v = args.GetInt(kArgRingBytes)) options.ring_bytes = *v;
  if (auto v = args.GetInt(kArgSpinNanos)) options.spin_budget = std::chrono::nanoseconds(*v);
  if (auto v = args.GetInt(kArgHandshakeMs)) {
    options.handshake_timeout = std::chrono::milliseconds(*v);
  }
  return ToConnectionOptions(options);
}

}  // namespace transport
}  // namespace grpc_shm
