#include "plugin/transport/listener.h"

#include <grpc/support/log.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "plugin/ipc/connection.h"
#include "plugin/transport/blocking_worker.h"
#include "plugin/transport/options_args.h"
#include "plugin/transport/poller.h"
#include "plugin/transport/shm_transport.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace grpc_shm {
namespace transport {
namespace {

using grpc_core::ExecCtx;

// The allow-list, checked during the handshake from the kernel's view of the
// client, so a refused client learns why (and no memory is set up for it).
ipc::Status Admit(const ShmOptions& options, const platform::PeerCredentials& peer) {
  const auto& uids = options.allowed_uids;
  const auto& gids = options.allowed_gids;
  if ((uids.empty() && gids.empty()) ||
      std::find(uids.begin(), uids.end(), peer.uid) != uids.end() ||
      std::find(gids.begin(), gids.end(), peer.gid) != gids.end()) {
    return ipc::Status::Ok();
  }
  return ipc::Status(ipc::StatusCode::kProtocol, "uid " + std::to_string(peer.uid) + " gid " +
                                                     std::to_string(peer.gid) +
                                                     " is not in the server's allow-list");
}

// What handshake jobs share with the listener: they may outlive it, and
// must not reach the server once it has stopped listening.
struct ListenerState {
  std::mutex mu;
  bool shut_down = false;  // guarded by mu; set before the server goes away
  grpc_core::Server* server;
  ShmOptions options;
  std::unique_ptr<ipc::Listener> ipc_listener;
};

void HandshakeAndSetup(const std::shared_ptr<ListenerState>& state, platform::UniqueHandle socket) {
  std::unique_ptr<ipc::Connection> connection;
  ipc::Status status = state->ipc_listener->Handshake(std::move(socket), &connection);
  if (!status.ok()) {
    gpr_log(GPR_INFO, "grpc_shm: handshake with a client on %s failed: %s",
            state->ipc_listener->address().c_str(), status.ToString().c_str());
    return;
  }
  grpc_core::ApplicationCallbackExecCtx callback_exec_ctx;
  ExecCtx exec_ctx;
  // Held across SetupTransport so the server cannot finish shutting down in
  // between; the server never calls back into the listener while holding
  // its own locks, so this cannot deadlock.
  std::lock_guard<std::mutex> lock(state->mu);
  if (state->shut_down) return;
  std::string peer = PeerStringFor(*connection);
  grpc_transport* transport = CreateShmTransport(std::move(connection), /*is_client=*/false, peer,
                                                 state->server->channel_args());
  grpc_error_handle error =
      state->server->SetupTransport(transport, nullptr, state->server->channel_args(), nullptr);
  if (!error.ok()) {
    gpr_log(GPR_ERROR, "grpc_shm: server refused a transport: %s",
            grpc_core::StatusToString(error).c_str());
    grpc_transport_destroy(transport);
    return;
  }
  StartShmTransport(transport);
}

class ShmListener : public grpc_core::Server::ListenerInterface, public PollSource {
 public:
  explicit ShmListener(std::shared_ptr<ListenerState> state) : state_(std::move(state)) {}

  void Start(grpc_core::Server*, const std::vector<grpc_pollset*>*) override {
    started_ = true;
    Poller::Get().Add(this, {{state_->ipc_listener->listen_handle(), 0, PollSource::kReadable}});
  }

  grpc_core::channelz::ListenSocketNode* channelz_listen_socket_node() const override {
    return nullptr;
  }

  void SetOnDestroyDone(grpc_closure* on_destroy_done) override {
    on_destroy_done_ = on_destroy_done;
  }

  void Orphan() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->shut_down = true;
    }
    if (started_) {
      Poller::Get().Remove(this);  // OnRemoved finishes the job
    } else {
      OnRemoved();
    }
  }

  // Poller thread.
  void OnEvent(int, uint32_t) override {
    for (;;) {
      platform::UniqueHandle socket;
      ipc::Status status = state_->ipc_listener->AcceptSocket(&socket);
      if (status.code() == ipc::StatusCode::kWouldBlock) return;
      if (!status.ok()) {
        gpr_log(GPR_ERROR, "grpc_shm: accept on %s failed: %s",
                state_->ipc_listener->address().c_str(), status.ToString().c_str());
        return;
      }
      auto state = state_;
      auto* raw = new platform::UniqueHandle(std::move(socket));
      RunBlocking(BlockingLane::kServerHandshake, [state, raw]() {
        std::unique_ptr<platform::UniqueHandle> owned(raw);
        HandshakeAndSetup(state, std::move(*owned));
      });
    }
  }

  void OnRemoved() override {
    if (on_destroy_done_ != nullptr) {
      ExecCtx::Run(DEBUG_LOCATION, on_destroy_done_, absl::OkStatus());
    }
    delete this;
  }

 private:
  std::shared_ptr<ListenerState> state_;
  grpc_closure* on_destroy_done_ = nullptr;
  bool started_ = false;
};

}  // namespace

absl::Status AddShmListener(grpc_core::Server* server, const std::string& ipc_address,
                            const ShmOptions& options) {
  auto state = std::make_shared<ListenerState>();
  state->server = server;
  state->options = options;
  ipc::Listener::Options listen_options;
  listen_options.max_ring_bytes = NormalizeRingBytes(options.ring_bytes);
  listen_options.handshake_timeout = options.handshake_timeout;
  if (!options.allowed_uids.empty() || !options.allowed_gids.empty()) {
    listen_options.admit = [options](const platform::PeerCredentials& peer) {
      return Admit(options, peer);
    };
  }
  ipc::Status status = ipc::Listener::Listen(ipc_address, listen_options, &state->ipc_listener);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("grpc_shm: cannot listen on '", ipc_address, "': ", status.ToString()));
  }
  server->AddListener(grpc_core::OrphanablePtr<grpc_core::Server::ListenerInterface>(
      new ShmListener(std::move(state))));
  return absl::OkStatus();
}

}  // namespace transport
}  // namespace grpc_shm
