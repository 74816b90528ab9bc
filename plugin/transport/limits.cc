#include "plugin/transport/limits.h"

#include <grpc/impl/codegen/grpc_types.h>

#include <algorithm>

namespace grpc_shm {
namespace transport {

TransportLimits TransportLimits::FromChannelArgs(const grpc_core::ChannelArgs& args) {
  TransportLimits limits;
  // As gRPC's message size filter reads it: negative means no limit.
  int max_receive = args.GetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH)
                        .value_or(GRPC_DEFAULT_MAX_RECV_MESSAGE_LENGTH);
  limits.max_receive_message_bytes = max_receive < 0 ? 0 : static_cast<size_t>(max_receive);
  limits.max_metadata_size = static_cast<uint32_t>(
      std::max(0, args.GetInt(GRPC_ARG_MAX_METADATA_SIZE).value_or(limits.max_metadata_size)));
  int streams = args.GetInt(GRPC_ARG_MAX_CONCURRENT_STREAMS)
                    .value_or(static_cast<int>(limits.max_concurrent_streams));
  limits.max_concurrent_streams = static_cast<uint32_t>(std::max(1, streams));
  int inbound =
      args.GetInt(kArgMaxInboundBytes).value_or(static_cast<int>(limits.max_inbound_bytes));
  limits.max_inbound_bytes = static_cast<size_t>(std::max(1 << 20, inbound));
  limits.max_ping_strikes =
      std::max(0, args.GetInt(GRPC_ARG_HTTP2_MAX_PING_STRIKES).value_or(limits.max_ping_strikes));
  limits.min_ping_interval_without_data_ms =
      std::max(0, args.GetInt(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS)
                      .value_or(static_cast<int>(limits.min_ping_interval_without_data_ms)));
  limits.max_resets_per_second =
      std::max(1, args.GetInt(kArgMaxResetsPerSecond).value_or(limits.max_resets_per_second));
  return limits;
}

}  // namespace transport
}  // namespace grpc_shm
