#include "plugin/transport/compression_filters.h"

#include <grpc/impl/codegen/grpc_types.h>

#include <atomic>

#include "plugin/transport/shm_transport.h"
#include "src/core/ext/filters/http/message_compress/message_compress_filter.h"
#include "src/core/ext/filters/http/message_compress/message_decompress_filter.h"
#include "src/core/lib/channel/channel_stack_builder.h"
#include "src/core/lib/config/core_configuration.h"
#include "src/core/lib/surface/channel_init.h"

namespace grpc_shm {
namespace transport {

void RegisterCompressionFilters() {
  static std::atomic<bool> registered{false};
  if (registered.exchange(true)) return;
  grpc_core::CoreConfiguration::RegisterBuilder([](grpc_core::CoreConfiguration::Builder* builder) {
    auto add = [builder](grpc_channel_stack_type type, const char* arg,
                         const grpc_channel_filter* filter) {
      builder->channel_init()->RegisterStage(
          type, GRPC_CHANNEL_INIT_BUILTIN_PRIORITY,
          [arg, filter](grpc_core::ChannelStackBuilder* b) {
            if (!IsShmTransport(b->transport())) return true;
            auto args = b->channel_args();
            // Same defaults as gRPC's http filters: on unless the
            // channel asks for a minimal stack.
            if (args.GetBool(arg).value_or(!args.WantMinimalStack())) {
              b->PrependFilter(filter);
            }
            return true;
          });
    };
    for (auto type : {GRPC_CLIENT_SUBCHANNEL, GRPC_CLIENT_DIRECT_CHANNEL, GRPC_SERVER_CHANNEL}) {
      add(type, GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION, &grpc_message_compress_filter);
    }
    for (auto type : {GRPC_CLIENT_SUBCHANNEL, GRPC_CLIENT_DIRECT_CHANNEL, GRPC_SERVER_CHANNEL}) {
      add(type, GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, &grpc_core::MessageDecompressFilter);
    }
  });
}

}  // namespace transport
}  // namespace grpc_shm
