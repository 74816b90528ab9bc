#include "plugin/transport/listener.h"

#include <grpc/support/log.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "plugin/ipc/connection.h"
#include "plugin/transport/auth_context.h"
#include "plugin/transport/options_args.h"
#include "plugin/transport/poller.h"
#include "plugin/transport/shm_transport.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace grpc_shm {
namespace transport {
namespace {

using grpc_core::ExecCtx;

#ifndef _WIN32
// The allow-list, checked during the handshake from the kernel's view of the
// client, so a refused client learns why (and no memory is set up for it).
// (Windows: the pipe's DACL is the allow-list; see Listen below.)
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
#endif

class HandshakeSource;

// What the listener shares with the handshakes it started: they may outlive
// it, and must not reach the server once it has stopped listening.
struct ListenerState {
  std::mutex mu;
  bool shut_down = false;  // guarded by mu; set before the server goes away
  grpc_core::Server* server;
  // The server's args plus our credentials: each connection's channel
  // starts from these (see SetUpServerTransport).
  grpc_core::ChannelArgs channel_args;
  ShmOptions options;
  std::string address;
  std::unique_ptr<ipc::Listener> ipc_listener;   // reset once the listener is removed
  std::unordered_set<HandshakeSource*> pending;  // guarded by mu
  // Poller thread only (the listener's OnEvent): a descriptor kept for
  // taking a connection off the backlog when the process has none left.
  platform::UniqueHandle reserve;
  // Poller thread only: whether the current shortage (of handshake slots
  // or of descriptors) was logged already, so a flood logs once, not per
  // client.
  bool shedding_logged = false;
};

// Turns a finished handshake into a transport of the server. Poller thread
// (inside its ExecCtx).
void SetUpServerTransport(ListenerState* state, std::unique_ptr<ipc::Connection> connection) {
  // Held across SetupTransport so the server cannot finish shutting down in
  // between; the server never calls back into the listener while holding
  // its own locks, so this cannot deadlock.
  std::lock_guard<std::mutex> lock(state->mu);
  if (state->shut_down) return;
  std::string peer = PeerStringFor(*connection);
  // The peer's auth context, with the credentials already in the listener's
  // args, puts gRPC's server auth filter on this connection's channel: it
  // gives calls their auth context and runs the AuthMetadataProcessor.
  grpc_core::ChannelArgs args = WithPeerAuthContext(state->channel_args, connection->peer());
  grpc_transport* transport =
      CreateShmTransport(std::move(connection), /*is_client=*/false, peer, args);
  grpc_error_handle error = state->server->SetupTransport(transport, nullptr, args, nullptr);
  if (!error.ok()) {
    gpr_log(GPR_ERROR, "grpc_shm: server refused a transport: %s",
            grpc_core::StatusToString(error).c_str());
    grpc_transport_destroy(transport);
    return;
  }
  StartShmTransport(transport);
}

// One client's handshake, carried by the poller: it advances whenever the
// client's socket has something to say, and a timer ends it at the
// handshake deadline. No thread waits for a client, so any number of slow
// or silent clients cannot hold up the others.
class HandshakeSource : public PollSource {
 public:
  // Poller thread (the listener's accept). An error (no timer, or nothing to
  // watch it with: the process is out of descriptors) drops the client,
  // which sees hang-up.
  static ipc::Status Start(std::shared_ptr<ListenerState> state,
                           std::unique_ptr<ipc::ServerHandshake> handshake) {
    platform::UniqueHandle timer;
    ipc::Status status = platform::CreateTimer(&timer);
    if (status.ok()) {
      status = platform::ArmTimer(timer.get(),
                                  std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      handshake->deadline() - ipc::Connection::Clock::now()));
    }
    if (!status.ok()) return status;
    auto* source = new HandshakeSource(state, std::move(handshake), std::move(timer));
    // Registered and added under the lock, so the listener's shutdown sees
    // every handshake it must end, and only after it was added.
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->shut_down) {
      delete source;
      return ipc::Status::Ok();
    }
    ipc::Status added = Poller::Get().Add(
        source,
        {{source->handshake_->socket(), kClientSocket, PollSource::kReadable | PollSource::kHangup},
         {source->timer_.get(), kTimer, PollSource::kReadable}});
    if (!added.ok()) {
      delete source;  // closes the client's socket
      return added;
    }
    state->pending.insert(source);
    return ipc::Status::Ok();
  }

  // Any thread; the caller holds state->mu or is the poller thread.
  void Finish() {
    if (!finishing_.exchange(true)) Poller::Get().Remove(this);
  }

  void OnEvent(int role, uint32_t) override {
    if (finishing_) return;
    std::unique_ptr<ipc::Connection> connection;
    ipc::Status status = role == kTimer ? handshake_->TimedOut() : handshake_->Advance(&connection);
    if (status.code() == ipc::StatusCode::kWouldBlock) return;
    if (status.ok()) {
      SetUpServerTransport(state_.get(), std::move(connection));
    } else {
      gpr_log(GPR_INFO, "grpc_shm: handshake with a client on %s failed: %s",
              state_->address.c_str(), status.ToString().c_str());
    }
    Finish();
  }

  void OnRemoved() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->pending.erase(this);
    }
    delete this;
  }

 private:
  enum Role { kClientSocket = 0, kTimer = 1 };

  HandshakeSource(std::shared_ptr<ListenerState> state,
                  std::unique_ptr<ipc::ServerHandshake> handshake, platform::UniqueHandle timer)
      : state_(std::move(state)), handshake_(std::move(handshake)), timer_(std::move(timer)) {}

  const std::shared_ptr<ListenerState> state_;
  const std::unique_ptr<ipc::ServerHandshake> handshake_;
  const platform::UniqueHandle timer_;
  std::atomic<bool> finishing_{false};
};

class ShmListener : public grpc_core::Server::ListenerInterface, public PollSource {
 public:
  explicit ShmListener(std::shared_ptr<ListenerState> state) : state_(std::move(state)) {}

  void Start(grpc_core::Server*, const std::vector<grpc_pollset*>*) override {
    ipc::Status status = Poller::Get().Add(
        this, {{state_->ipc_listener->listen_handle(), 0, PollSource::kReadable}});
    if (!status.ok()) {
      // Clients then time out in their handshakes; a listener cannot make
      // the server's start fail.
      gpr_log(GPR_ERROR, "grpc_shm: cannot accept clients on %s: %s", state_->address.c_str(),
              status.ToString().c_str());
      return;
    }
    started_ = true;
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
      // Handshakes still under way end now, not at their deadlines.
      for (HandshakeSource* handshake : state_->pending) handshake->Finish();
    }
    if (started_) {
      Poller::Get().Remove(this);  // OnRemoved finishes the job
    } else {
      OnRemoved();
    }
  }

  // Poller thread. The poller is level-triggered: returning while a
  // connection is still pending means being called again at once, so every
  // pending connection is either taken or hung up on here.
  void OnEvent(int, uint32_t) override {
    ListenerState& st = *state_;
    for (;;) {
      platform::UniqueHandle socket;
      bool shed = false;
      ipc::Status status = platform::AcceptLocalOrShed(st.ipc_listener->listen_handle(),
                                                       &st.reserve, &socket, &shed);
      if (status.code() == ipc::StatusCode::kWouldBlock) return;
      if (!status.ok()) {
        LogShortageOnce(
            absl::StrCat("accept on ", st.address, " failed: ", status.ToString(),
                         shed ? "; hanging up on clients until descriptors are free" : ""));
        if (shed) continue;
        return;
      }
      if (AtPendingLimit()) {
        // A flood of clients that connect and say nothing must not grow
        // our descriptors and memory without bound: past the limit, hang
        // up at once (the client sees UNAVAILABLE and retries with
        // backoff; slots free as handshakes finish or time out).
        LogShortageOnce(absl::StrCat(st.options.max_pending_handshakes, " handshakes pending on ",
                                     st.address,
                                     " (max_pending_handshakes); hanging up on new clients "
                                     "until one finishes"));
        continue;  // `socket` closes here
      }
      status = HandshakeSource::Start(state_, st.ipc_listener->BeginHandshake(std::move(socket)));
      if (!status.ok()) {
        LogShortageOnce(absl::StrCat("cannot start a client's handshake on ", st.address, " (",
                                     status.ToString(), "); hanging up on it"));
        continue;
      }
      st.shedding_logged = false;
    }
  }

  // A flood of clients during a shortage logs once, not once per client.
  void LogShortageOnce(const std::string& what) {
    if (state_->shedding_logged) return;
    state_->shedding_logged = true;
    gpr_log(GPR_ERROR, "grpc_shm: %s", what.c_str());
  }

  bool AtPendingLimit() {
    const int limit = state_->options.max_pending_handshakes;
    if (limit <= 0) return false;
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->pending.size() >= static_cast<size_t>(limit);
  }

  void OnRemoved() override {
    {
      // Stop listening now: the address is free for a new server at once,
      // even while handshakes started here are still ending.
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->ipc_listener.reset();
    }
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
                            const ShmOptions& options,
                            grpc_core::RefCountedPtr<grpc_server_credentials> credentials) {
  auto state = std::make_shared<ListenerState>();
  state->server = server;
  state->channel_args =
      WithServerCredentials(server->channel_args(), credentials.get())
          .Set(kArgSpinNanos,
               static_cast<int>(std::min<int64_t>(options.spin_budget.count(), INT_MAX)));
  state->options = options;
  state->address = ipc_address;
  ipc::Listener::Options listen_options;
  listen_options.max_ring_bytes = NormalizeRingBytes(options.ring_bytes);
  listen_options.handshake_timeout = options.handshake_timeout;
  // Connections are carried by a poller, which cannot wait on a futex.
  listen_options.allow_futex = false;
#ifdef _WIN32
  // Windows checks the allow-list itself when a client opens the pipe (its
  // DACL), group membership included; a malformed SID fails Listen.
  listen_options.allowed_sids = options.allowed_sids;
#else
  if (!options.allowed_uids.empty() || !options.allowed_gids.empty()) {
    listen_options.admit = [options](const platform::PeerCredentials& peer) {
      return Admit(options, peer);
    };
  }
#endif
  ipc::Status status = ipc::Listener::Listen(ipc_address, listen_options, &state->ipc_listener);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("grpc_shm: cannot listen on '", ipc_address, "': ", status.ToString()));
  }
  status = platform::OpenReserveHandle(&state->reserve);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("grpc_shm: cannot listen on '", ipc_address,
                                               "': no reserve descriptor: ", status.ToString()));
  }
  server->AddListener(grpc_core::OrphanablePtr<grpc_core::Server::ListenerInterface>(
      new ShmListener(std::move(state))));
  return absl::OkStatus();
}

}  // namespace transport
}  // namespace grpc_shm
