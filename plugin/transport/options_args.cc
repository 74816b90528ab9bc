#include "plugin/transport/options_args.h"

#include <algorithm>
#include <climits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

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
  args = args.Set(kArgIsShm, 1)
             .Set(kArgRingBytes, clamp(NormalizeRingBytes(options.ring_bytes)))
             .Set(kArgSpinNanos, clamp(options.spin_budget.count()))
             .Set(kArgHandshakeMs, clamp(options.handshake_timeout.count()));
#ifdef _WIN32
  if (!options.allowed_server_sids.empty()) {
    args = args.Set(kArgAllowedServerSids, absl::StrJoin(options.allowed_server_sids, ","));
  }
#else
  if (!options.allowed_server_uids.empty()) {
    args = args.Set(kArgAllowedServerUids, absl::StrJoin(options.allowed_server_uids, ","));
  }
#endif
  return args;
}

#ifdef _WIN32
std::vector<std::string> AllowedServerSidsFromArgs(const grpc_core::ChannelArgs& args) {
  std::vector<std::string> sids;
  absl::optional<absl::string_view> joined = args.GetString(kArgAllowedServerSids);
  if (!joined.has_value()) return sids;
  for (absl::string_view part : absl::StrSplit(*joined, ',', absl::SkipEmpty())) {
    sids.emplace_back(part);
  }
  return sids;
}
#else
std::vector<uid_t> AllowedServerUidsFromArgs(const grpc_core::ChannelArgs& args) {
  std::vector<uid_t> uids;
  absl::optional<absl::string_view> joined = args.GetString(kArgAllowedServerUids);
  if (!joined.has_value()) return uids;
  for (absl::string_view part : absl::StrSplit(*joined, ',', absl::SkipEmpty())) {
    uint32_t uid;
    // Only AddOptionsToArgs writes this arg, so every part parses.
    if (absl::SimpleAtoi(part, &uid)) uids.push_back(static_cast<uid_t>(uid));
  }
  return uids;
}
#endif

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
