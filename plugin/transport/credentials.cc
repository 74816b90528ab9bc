// The public entry points: credentials whose only job is to build a channel
// or listening port on the shm transport instead of HTTP/2 over TCP.
#include "grpc_shm/credentials.h"

#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "plugin/transport/address.h"
#include "plugin/transport/auth_context.h"
#include "plugin/transport/compression_filters.h"
#include "plugin/transport/connector.h"
#include "plugin/transport/listener.h"
#include "plugin/transport/options_args.h"
#include "src/core/ext/filters/client_channel/client_channel.h"
#include "src/core/lib/channel/channel_args_preconditioning.h"
#include "src/core/lib/config/core_configuration.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/surface/channel.h"
#include "src/core/lib/surface/server.h"
#include "src/cpp/client/create_channel_internal.h"
#include "src/cpp/server/secure_server_credentials.h"

namespace grpc_shm {
namespace {

std::shared_ptr<grpc::Channel> LameChannel(
    const std::string& target, const std::string& message,
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors) {
  gpr_log(GPR_ERROR, "%s", message.c_str());
  return grpc::CreateChannelInternal(
      "", grpc_lame_client_channel_create(target.c_str(), GRPC_STATUS_UNAVAILABLE, message.c_str()),
      std::move(interceptors));
}

class ShmChannelCredentials final : public grpc::ChannelCredentials {
 public:
  explicit ShmChannelCredentials(const ShmOptions& options) : options_(options) {}

  grpc::SecureChannelCredentials* AsSecureCredentials() override { return nullptr; }

 private:
  std::shared_ptr<grpc::Channel> CreateChannelImpl(const std::string& target,
                                                   const grpc::ChannelArguments& args) override {
    return CreateChannelWithInterceptors(target, args, {});
  }

  std::shared_ptr<grpc::Channel> CreateChannelWithInterceptors(
      const std::string& target, const grpc::ChannelArguments& args,
      std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
          interceptors) override {
    absl::StatusOr<std::string> address = transport::ParseShmAddress(target);
    if (!address.ok()) {
      return LameChannel(target, std::string(address.status().message()), std::move(interceptors));
    }
    grpc_core::ExecCtx exec_ctx;
    grpc_channel_args c_args;
    args.SetChannelArgs(&c_args);
    // The resolver sees a unix: URI (gRPC's own resolver, no registration);
    // the subchannels come from our factory, so they speak shm.
    grpc_core::ChannelArgs channel_args =
        transport::AddOptionsToArgs(options_, grpc_core::CoreConfiguration::Get()
                                                  .channel_args_preconditioning()
                                                  .PreconditionChannelArgs(&c_args))
            .SetObject(transport::ShmClientChannelFactory())
            .Set(GRPC_ARG_SERVER_URI, transport::ResolverUriFor(*address))
            .SetIfUnset(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
    // So gRPC's client auth filter attaches per-call credentials.
    channel_args = transport::WithShmChannelSecurity(channel_args);
    auto channel =
        grpc_core::Channel::Create(target.c_str(), channel_args, GRPC_CLIENT_CHANNEL, nullptr);
    if (!channel.ok()) {
      return LameChannel(target,
                         absl::StrCat("grpc_shm: cannot create channel to '", target,
                                      "': ", channel.status().ToString()),
                         std::move(interceptors));
    }
    return grpc::CreateChannelInternal("", channel->release()->c_ptr(), std::move(interceptors));
  }

  const ShmOptions options_;
};

class ShmServerCredentials final : public grpc::ServerCredentials {
 public:
  explicit ShmServerCredentials(const ShmOptions& options)
      : options_(options),
        core_(grpc_core::MakeRefCounted<transport::ShmCoreServerCredentials>()) {}

  // As gRPC's SecureServerCredentials do it, so a processor behaves the same
  // on an shm port as on a TCP port of the same server: gRPC's wrapper runs a
  // blocking processor on its own thread pool. The core credentials own the
  // wrapper from here on (and destroy it when the last listener goes).
  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& processor) override {
    auto* wrapper = new grpc::AuthMetadataProcessorAyncWrapper(processor);
    core_->set_auth_metadata_processor({grpc::AuthMetadataProcessorAyncWrapper::Process,
                                        grpc::AuthMetadataProcessorAyncWrapper::Destroy, wrapper});
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    grpc_core::ExecCtx exec_ctx;
    absl::StatusOr<std::string> address = transport::ParseShmAddress(addr);
    if (!address.ok()) {
      gpr_log(GPR_ERROR, "grpc_shm: %s", std::string(address.status().message()).c_str());
      return 0;
    }
    absl::Status status =
        transport::AddShmListener(grpc_core::Server::FromC(server), *address, options_, core_);
    if (!status.ok()) {
      gpr_log(GPR_ERROR, "%s", std::string(status.message()).c_str());
      return 0;
    }
    // There is no port number; any non-zero value means success.
    return 1;
  }

  const ShmOptions options_;
  // Shared with every listener made from these credentials, which may
  // outlive them.
  const grpc_core::RefCountedPtr<transport::ShmCoreServerCredentials> core_;
};

}  // namespace

void Init() { transport::RegisterCompressionFilters(); }

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ShmOptions& options) {
  return std::make_shared<ShmChannelCredentials>(options);
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const ShmOptions& options) {
  return std::make_shared<ShmServerCredentials>(options);
}

}  // namespace grpc_shm

namespace {
// Registration must precede the first channel or server. A static
// initializer in this translation unit (which every user links, since it
// holds the credentials functions) runs before main.
const bool kRegistered = [] {
  grpc_shm::Init();
  return true;
}();
}  // namespace
