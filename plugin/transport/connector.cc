#include "plugin/transport/connector.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "plugin/ipc/connection.h"
#include "plugin/transport/address.h"
#include "plugin/transport/auth_context.h"
#include "plugin/transport/blocking_worker.h"
#include "plugin/transport/errors.h"
#include "plugin/transport/options_args.h"
#include "plugin/transport/shm_transport.h"
#include "plugin/transport/tsan_handoff.h"
#include "src/core/ext/filters/client_channel/connector.h"
#include "src/core/ext/filters/client_channel/subchannel.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace grpc_shm {
namespace transport {
namespace {

using grpc_core::ExecCtx;

#ifdef _WIN32
// Who may serve this channel: ShmOptions::allowed_server_sids.
using ServerIdentity = std::string;

// Whether the server, as Windows reports it (the pipe server's process and
// its token), runs as a user the channel accepts. Refusing here means a
// server run by someone else (squatting on the pipe name) never sees a call
// or its metadata.
absl::Status CheckServerIdentity(const std::string& address,
                                 const std::vector<ServerIdentity>& allowed,
                                 const platform::PeerCredentials& server) {
  if (allowed.empty() ||
      std::find(allowed.begin(), allowed.end(), server.user_sid) != allowed.end()) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat("shm: server on 'shm:", address, "' runs as ", server.user_sid,
                   ", but this channel requires ", allowed.size() == 1 ? "" : "one of ",
                   absl::StrJoin(allowed, ", "), " (ShmOptions::allowed_server_sids)"));
}

std::vector<ServerIdentity> AllowedServersFromArgs(const grpc_core::ChannelArgs& args) {
  return AllowedServerSidsFromArgs(args);
}
#else
// Who may serve this channel: ShmOptions::allowed_server_uids.
using ServerIdentity = uid_t;

// Whether the server, as the kernel reports it, runs as a uid the channel
// accepts. Refusing here means a server run by someone else (squatting on the
// socket path or abstract name) never sees a call or its metadata.
absl::Status CheckServerIdentity(const std::string& address,
                                 const std::vector<ServerIdentity>& allowed,
                                 const platform::PeerCredentials& server) {
  if (allowed.empty() || std::find(allowed.begin(), allowed.end(), server.uid) != allowed.end()) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat("shm: server on 'shm:", address, "' runs as uid ", server.uid,
                   ", but this channel requires ", allowed.size() == 1 ? "uid " : "one of uids ",
                   absl::StrJoin(allowed, ", "), " (ShmOptions::allowed_server_uids)"));
}

std::vector<ServerIdentity> AllowedServersFromArgs(const grpc_core::ChannelArgs& args) {
  return AllowedServerUidsFromArgs(args);
}
#endif

// Connects one subchannel. The IPC handshake blocks, so it runs on the
// blocking worker; the result is reported back under an ExecCtx, as the
// SubchannelConnector contract asks.
class ShmConnector : public grpc_core::SubchannelConnector {
 public:
  // gRPC carries the connector from the thread that made it to those that
  // call and last unref it (tsan_handoff.h): a subchannel made on the poller
  // thread, as after a goaway, connects from the caller's.
  ShmConnector() { HandOff(this); }
  ~ShmConnector() override { TakeOver(this); }

  void Connect(const Args& args, Result* result, grpc_closure* notify) override {
    TakeOver(this);
    absl::StatusOr<std::string> address = IpcAddressFromResolved(*args.address);
    if (!address.ok()) {
      ExecCtx::Run(DEBUG_LOCATION, notify,
                   StatusError(GRPC_STATUS_UNAVAILABLE, address.status().message()));
      HandOff(this);
      return;
    }
    ipc::ConnectionOptions options = ConnectionOptionsFromArgs(args.channel_args);
    std::vector<ServerIdentity> allowed_servers = AllowedServersFromArgs(args.channel_args);
    // Never wait past the subchannel's own connect deadline.
    auto until_deadline = (args.deadline - grpc_core::Timestamp::Now()).millis();
    if (until_deadline > 0 && until_deadline < options.handshake_timeout.count()) {
      options.handshake_timeout = std::chrono::milliseconds(until_deadline);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = result;
      notify_ = notify;
      channel_args_ = args.channel_args;
    }
    // The job keeps the connector alive until it has reported.
    grpc_core::RefCountedPtr<grpc_core::SubchannelConnector> self = Ref();
    std::string target = *address;
    RunBlocking([self, target, options, allowed_servers]() {
      static_cast<ShmConnector*>(self.get())->ConnectBlocking(target, options, allowed_servers);
    });
    HandOff(this);
  }

  void Shutdown(grpc_error_handle error) override {
    TakeOver(this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    HandOff(this);
  }

 private:
  void ConnectBlocking(const std::string& address, const ipc::ConnectionOptions& options,
                       const std::vector<ServerIdentity>& allowed_servers) {
    std::unique_ptr<ipc::Connection> connection;
    ipc::Status status = ipc::Connect(address, options, &connection);
    absl::Status server_ok = absl::OkStatus();
    if (status.ok()) {
      server_ok = CheckServerIdentity(address, allowed_servers, connection->peer());
    }
    grpc_core::ApplicationCallbackExecCtx callback_exec_ctx;
    ExecCtx exec_ctx;
    grpc_closure* notify;
    grpc_error_handle error;
    {
      std::lock_guard<std::mutex> lock(mu_);
      notify = notify_;
      notify_ = nullptr;
      if (shutdown_) {
        error = GRPC_ERROR_CREATE("shm connector shut down");
      } else if (!status.ok()) {
        error = StatusError(
            GRPC_STATUS_UNAVAILABLE,
            absl::StrCat("shm: failed to connect to '", address, "': ", status.ToString()));
      } else if (!server_ok.ok()) {
        error = StatusError(GRPC_STATUS_UNAVAILABLE, server_ok.message());
      } else {
        std::string peer = absl::StrCat("shm:", address);
        // The server's identity, for gRPC's client auth filter and
        // ClientContext::auth_context (auth_context.h).
        grpc_core::ChannelArgs connected_args =
            WithPeerAuthContext(channel_args_, connection->peer());
        grpc_transport* transport =
            CreateShmTransport(std::move(connection), /*is_client=*/true, peer, channel_args_);
        StartShmTransport(transport);
        result_->transport = transport;
        result_->channel_args = connected_args;
      }
    }
    if (notify != nullptr) ExecCtx::Run(DEBUG_LOCATION, notify, error);
    HandOff(this);  // gRPC may hold the last reference
  }

  std::mutex mu_;
  Result* result_ = nullptr;
  grpc_closure* notify_ = nullptr;
  grpc_core::ChannelArgs channel_args_;
  bool shutdown_ = false;
};

class Factory : public grpc_core::ClientChannelFactory {
 public:
  grpc_core::RefCountedPtr<grpc_core::Subchannel> CreateSubchannel(
      const grpc_resolved_address& address, const grpc_core::ChannelArgs& args) override {
    return grpc_core::Subchannel::Create(grpc_core::MakeOrphanable<ShmConnector>(), address, args);
  }
};

}  // namespace

grpc_core::ClientChannelFactory* ShmClientChannelFactory() {
  static auto* factory = new Factory();
  return factory;
}

}  // namespace transport
}  // namespace grpc_shm
