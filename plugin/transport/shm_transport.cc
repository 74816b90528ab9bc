// The connection's life: the poller's read/flush loop, stream transitions,
// graceful and abrupt close, transport ops and the grpc_transport_vtable.
// Frames from the peer are handled in inbound.cc, stream op batches in
// stream_ops.cc.
#include "plugin/transport/shm_transport.h"

#include <grpc/status.h>
#include <grpc/support/log.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/transport/errors.h"
#include "plugin/transport/grpc_poller.h"
#include "plugin/transport/options_args.h"
#include "plugin/transport/transport_internal.h"
#include "plugin/transport/tsan_handoff.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace grpc_shm {
namespace transport {
namespace {

using grpc_core::ExecCtx;

enum HandleRole : int { kRoleDoorbell = 1, kRoleLiveness = 2 };

bool TraceEnabled() {
  static const bool enabled = getenv("GRPC_SHM_TRACE") != nullptr;
  return enabled;
}

ShmTransport* FromBase(grpc_transport* gt) { return reinterpret_cast<ShmTransport*>(gt); }

void DestroyTransport(ShmTransport* t) { delete t; }

// Client: opens queued streams while the server's limit allows, in id order.
void OpenQueuedStreamsLocked(ShmTransport* t) {
  bool opened = false;
  while (!t->queued_streams.empty() && t->streams.size() < t->peer_max_streams) {
    ShmStream* s = t->queued_streams.front();
    t->queued_streams.pop_front();
    s->phase = StreamPhase::kOpen;
    s->reached_wire = true;
    t->streams[s->id] = s;
    t->outbound.ReleaseStream(s->id);
    opened = true;
  }
  if (opened && t->polling) KickPollerLocked(t);  // the poller flushes them
}

}  // namespace

ShmStream::ShmStream(ShmTransport* t, grpc_stream_refcount* refs, uint32_t id,
                     grpc_core::Arena* arena)
    : t(t), refs(refs), arena(arena), id(id) {
  RefTransport(t);
}

ShmStream::~ShmStream() { UnrefTransport(t); }

ShmTransport::ShmTransport(std::unique_ptr<ipc::Connection> connection, bool is_client,
                           std::string peer_string, const TransportLimits& limits)
    : is_client(is_client),
      peer_string(std::move(peer_string)),
      limits(limits),
      connection(std::move(connection)),
      state_tracker(is_client ? "shm_client" : "shm_server", GRPC_CHANNEL_READY) {}

void RefTransport(ShmTransport* t) { t->refs.fetch_add(1, std::memory_order_relaxed); }

void UnrefTransport(ShmTransport* t) {
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) DestroyTransport(t);
}

void KickPollerLocked(ShmTransport* t) {
  if (t->polling && !t->removal_posted) t->poller->Kick(&t->source);
}

// How long a connection must be idle before its send ring is trimmed.
constexpr grpc_core::Duration kTrimAfterIdle = grpc_core::Duration::Seconds(1);

void OnTrimTimer(void* arg, grpc_error_handle error) {
  auto* t = static_cast<ShmTransport*>(arg);
  TakeOver(t);
  {
    std::lock_guard<std::mutex> lock(t->mu);
    t->trim_timer_armed = false;
    if (error.ok() && !t->closed) {
      const grpc_core::Timestamp due = t->last_write + kTrimAfterIdle;
      if (grpc_core::Timestamp::Now() < due) {
        // Written since the timer was armed: idle for a second from then.
        t->trim_timer_armed = true;  // keeps the reference
        HandOff(t);
        grpc_timer_init(&t->trim_timer, due, &t->on_trim_timer);
        return;
      }
      t->connection->TrimIdleSendRing();
      // The pool is the process's, not this connection's: a busy connection
      // elsewhere only maps its next large buffer afresh.
      ReleasePooledLargeBuffers();
    }
  }
  UnrefTransport(t);
}

void NoteWritesLocked(ShmTransport* t) {
  const uint64_t flushes = t->outbound.flushes_that_wrote();
  if (flushes == t->flushes_seen || t->closed) return;
  t->flushes_seen = flushes;
  t->last_write = grpc_core::Timestamp::Now();
  // Timers need an ExecCtx; a write without one (none so far) is noted
  // and picked up by the next.
  if (t->trim_timer_armed || ExecCtx::Get() == nullptr) return;
  t->trim_timer_armed = true;
  RefTransport(t);  // the timer's, dropped in OnTrimTimer
  GRPC_CLOSURE_INIT(&t->on_trim_timer, OnTrimTimer, t, nullptr);
  HandOff(t);
  grpc_timer_init(&t->trim_timer, t->last_write + kTrimAfterIdle, &t->on_trim_timer);
}

void FlushLocked(ShmTransport* t) {
  if (t->closed) return;
  ipc::Status status = t->outbound.Flush(t->connection.get());
  NoteWritesLocked(t);
  if (TraceEnabled()) {
    gpr_log(GPR_INFO, "shm %s %p: flush -> %s", t->is_client ? "client" : "server", t,
            status.ToString().c_str());
  }
  if (status.ok()) {
    MaybeFinishGracefulCloseLocked(t);
  } else if (status.code() == ipc::StatusCode::kWouldBlock) {
    // Only the poller may sleep on the ring; it will announce that it waits
    // for space and flush when the peer frees some.
    if (t->polling && !t->waiting_for_space) {
      t->waiting_for_space = true;
      KickPollerLocked(t);
    }
  } else {
    CloseLocked(t, IpcError(status, "writing to peer"));
  }
}

void MaybeFinishGracefulCloseLocked(ShmTransport* t) {
  if (!t->is_client && t->goaway_sent && !t->closed && t->streams.empty() && t->outbound.empty() &&
      !t->accepting_stream) {
    CloseLocked(t, StatusError(GRPC_STATUS_UNAVAILABLE, "shm transport: server shut down"));
  }
}

void OpenClientStreamLocked(ShmStream* s) {
  ShmTransport* t = s->t;
  s->id = t->next_stream_id;
  t->next_stream_id += 2;
  if (t->queued_streams.empty() && t->streams.size() < t->peer_max_streams) {
    s->phase = StreamPhase::kOpen;
    s->reached_wire = true;
    t->streams[s->id] = s;
  } else {
    // Its frames wait in the queue, unsent, until a slot frees.
    s->phase = StreamPhase::kQueued;
    t->outbound.HoldStream(s->id);
    t->queued_streams.push_back(s);
  }
}

void OpenServerStreamLocked(ShmStream* s) {
  s->phase = StreamPhase::kOpen;
  s->reached_wire = true;
  s->t->streams[s->id] = s;
}

void CloseStreamLocked(ShmStream* s) {
  ShmTransport* t = s->t;
  const StreamPhase was = s->phase;
  s->phase = StreamPhase::kClosed;
  if (was == StreamPhase::kOpen) {
    t->streams.erase(s->id);
    if (t->is_client && !t->closed) OpenQueuedStreamsLocked(t);
    MaybeFinishGracefulCloseLocked(t);
  } else if (was == StreamPhase::kQueued) {
    t->queued_streams.erase(std::find(t->queued_streams.begin(), t->queued_streams.end(), s));
  }
}

void CloseLocked(ShmTransport* t, grpc_error_handle error) {
  if (t->closed) return;
  t->closed = true;
  t->close_error = error;
  // Whatever large messages this connection brought must not outlive it in
  // the pool (a killed client's memory stayed there, chaos found).
  ReleasePooledLargeBuffers();
  grpc_status_code code;
  std::string message;
  ErrorToStatus(error, &code, &message);
  t->state_tracker.SetState(GRPC_CHANNEL_SHUTDOWN,
                            absl::Status(static_cast<absl::StatusCode>(code), message),
                            "shm transport closed");
  t->outbound.Clear(error);
  if (t->trim_timer_armed) grpc_timer_cancel(&t->trim_timer);  // runs OnTrimTimer
  StopKeepaliveLocked(t);
  t->streams.clear();
  t->queued_streams.clear();
  std::vector<ShmStream*> streams(t->all_streams.begin(), t->all_streams.end());
  for (ShmStream* s : streams) {
    if (s->phase != StreamPhase::kIdle) s->phase = StreamPhase::kClosed;
    // A client stream whose status already arrived is complete: what it has
    // buffered is still delivered (a server that finishes its last call and
    // hangs up must not turn that call's OK into UNAVAILABLE).
    const bool complete = t->is_client && s->received == HalfState::kEnded;
    if (s->cancel_error.ok() && !complete) s->cancel_error = error;
    DeliverLocked(s);
  }
  // The poller hangs up (Connection::Close) once it has stopped reading.
  if (t->polling && !t->removal_posted) {
    t->removal_posted = true;
    t->poller->Remove(&t->source);
  } else if (!t->polling) {
    t->connection->Close();
  }
}

void CloseForPeerLocked(ShmTransport* t, grpc_status_code code, const std::string& why) {
  if (t->closed) return;
  gpr_log(GPR_ERROR, "grpc_shm: closing the connection to %s: %s", t->peer_string.c_str(),
          why.c_str());
  // Best effort: a peer that is not reading will not see it.
  t->outbound.PushControl(ipc::kFrameGoaway, 0, t->last_peer_stream_id, why);
  (void)t->outbound.Flush(t->connection.get());
  CloseLocked(t, StatusError(code, why));
}

void ShmTransport::Source::OnEvent(int role, uint32_t events) {
  ShmTransport* t = t_;
  std::unique_lock<std::mutex> lock(t->mu);
  if (t->closed) return;
  // Whether or not we can read the ring now: the peer's keepalive pings
  // ask only that we look.
  if (t->connection->AnswerKeepalivePings()) NoteKeepalivePingAnswered();
  if (role == kRoleLiveness && (events & kHangup)) t->peer_hung_up = true;
  if (t->reading) {
    // Another thread is reading this connection and has let go of the lock
    // while gRPC accepts a stream. Reading here too would take the new
    // stream's next frames before the stream exists, and drop them; that
    // thread reads on, and goes round once more for whatever woke us.
    t->read_again = true;
    return;
  }
  t->reading = true;
  for (;;) {
    t->read_again = false;
    t->connection->Drain();
    bool budget_spent = false;
    ipc::Status status = ReadFramesLocked(t, &lock, kReadBudgetFrames, &budget_spent);
    if (!status.ok()) {
      t->reading = false;
      CloseLocked(t, IpcError(status, "reading from peer"));
      return;
    }
    if (t->closed) break;
    t->waiting_for_space = false;
    ipc::Status flushed = t->outbound.Flush(t->connection.get());
    NoteWritesLocked(t);
    if (!flushed.ok() && flushed.code() != ipc::StatusCode::kWouldBlock) {
      t->reading = false;
      CloseLocked(t, IpcError(flushed, "writing to peer"));
      return;
    }
    MaybeFinishGracefulCloseLocked(t);
    if (t->closed) break;
    if (t->read_again) continue;
    if (t->peer_hung_up) break;  // the rest is read below
    if (budget_spent) {
      // Other connections get their turn before we read on.
      t->poller->KickAfterOthers(&t->source);
      break;
    }
    // While reading waits (for gRPC, or for the peer to read what we owe
    // it), waiting for data would wake at once.
    uint32_t bits = ReadingBlockedLocked(t) ? 0u : static_cast<uint32_t>(ipc::kWaitingForData);
    size_t space_needed = 0;
    if (t->outbound.waiting_for_ring()) {
      bits |= ipc::kWaitingForSpace;
      space_needed = t->outbound.payload_bytes_needed();
      t->waiting_for_space = true;
    }
    if (t->connection->PrepareToSleep(bits, space_needed)) break;
  }
  t->reading = false;
  if (t->closed) return;
  if (TraceEnabled()) {
    gpr_log(GPR_INFO, "shm %s %p: poller sleeps, outbound empty=%d streams=%zu",
            t->is_client ? "client" : "server", t, t->outbound.empty(), t->streams.size());
  }
  if (t->peer_hung_up) {
    // Everything the peer wrote before it went away is ours: read it all,
    // whatever gRPC has not taken yet (the ring bounds it), so calls that
    // completed before the hang-up still complete.
    bool unused;
    ipc::Status status = ReadFramesLocked(t, &lock, /*budget=*/-1, &unused);
    if (!status.ok() && status.code() != ipc::StatusCode::kPeerClosed) {
      CloseLocked(t, IpcError(status, "reading from peer"));
      return;
    }
    CloseLocked(t, StatusError(GRPC_STATUS_UNAVAILABLE,
                               "shm transport: peer closed the connection "
                               "(process exited or hung up)"));
  }
}

// Streams open in this process, over every shm connection.
std::atomic<int> g_open_streams{0};

SpinSlots& ProcessSpinSlots() {
  static auto* slots =
      new SpinSlots(SpinSlots::ForThisMachine(std::thread::hardware_concurrency()));
  return *slots;
}

void SpinForPeerFrames(ShmTransport* t) {
  const ipc::ring_internal::SealWord* seal;
  {
    std::lock_guard<std::mutex> lock(t->mu);
    // Only a connection the poller watches (its read loop is the one we run
    // below), and not while another thread is reading it.
    if (t->closed || !t->polling || t->removal_posted || t->reading) return;
    if (!t->spin.ShouldSpin()) return;
    if (!ProcessSpinSlots().TryAcquire()) return;
    seal = t->connection->NextFrameSeal();
    // The peer need not ring while we watch; OnEvent below announces sleep
    // again (and rechecks the ring) before anyone sleeps.
    t->connection->StopWaitingForData();
    RefTransport(t);  // the segment stays mapped while we watch it
  }
  // Yield between checks only while other calls of this process are open:
  // their threads may be waiting for this CPU (8 channels on 2 CPUs: p99
  // 3.8 ms without yielding, 1.3 ms with), whereas a lone call that yields
  // hands the CPU to an unrelated busy thread for a whole time slice (p99
  // under the fairness flood 1.8 ms without, 3.9 ms with).
  const bool yield = g_open_streams.load(std::memory_order_relaxed) > 1;
  const bool arrived = ipc::Connection::SpinForFrame(seal, t->spin.budget(), yield);
  ProcessSpinSlots().Release();
  {
    std::lock_guard<std::mutex> lock(t->mu);
    t->spin.Record(arrived);
  }
  // Reads what arrived (or re-announces sleep) exactly as a doorbell would.
  if (grpc_core::ApplicationCallbackExecCtx::Available()) {
    t->source.OnEvent(kRoleDoorbell, PollSource::kReadable);
  } else {
    grpc_core::ApplicationCallbackExecCtx callback_exec_ctx;
    t->source.OnEvent(kRoleDoorbell, PollSource::kReadable);
  }
  UnrefTransport(t);
}

void ShmTransport::Source::OnRemoved() {
  ShmTransport* t = t_;
  {
    std::lock_guard<std::mutex> lock(t->mu);
    t->connection->Close();
  }
  UnrefTransport(t);
}

namespace {

int InitStream(grpc_transport* gt, grpc_stream* gs, grpc_stream_refcount* refs,
               const void* server_data, grpc_core::Arena* arena) {
  ShmTransport* t = FromBase(gt);
  TakeOver(t);
  uint32_t id = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(server_data));
  auto* s = new (gs) ShmStream(t, refs, id, arena);
  std::lock_guard<std::mutex> lock(t->mu);
  t->all_streams.insert(s);
  g_open_streams.fetch_add(1, std::memory_order_relaxed);
  if (t->closed) {
    s->cancel_error = t->close_error;
  } else if (id != 0) {
    OpenServerStreamLocked(s);
  }
  return 0;
}

void SetPollset(grpc_transport*, grpc_stream*, grpc_pollset*) {}
void SetPollsetSet(grpc_transport*, grpc_stream*, grpc_pollset_set*) {}

void PerformStreamOpEntry(grpc_transport* gt, grpc_stream* gs, grpc_transport_stream_op_batch* op) {
  TakeOver(gt);
  PerformStreamOp(FromBase(gt), reinterpret_cast<ShmStream*>(gs), op);
}

void PerformOp(grpc_transport* gt, grpc_transport_op* op) {
  ShmTransport* t = FromBase(gt);
  TakeOver(t);
  std::lock_guard<std::mutex> lock(t->mu);
  if (op->start_connectivity_watch != nullptr) {
    t->state_tracker.AddWatcher(op->start_connectivity_watch_state,
                                std::move(op->start_connectivity_watch));
  }
  if (op->stop_connectivity_watch != nullptr) {
    t->state_tracker.RemoveWatcher(op->stop_connectivity_watch);
  }
  if (op->set_accept_stream) {
    t->accept_stream_cb = op->set_accept_stream_fn;
    t->accept_stream_data = op->set_accept_stream_user_data;
  }
  if (!op->goaway_error.ok() && !t->is_client && !t->goaway_sent && !t->closed) {
    // Server shutdown: no new streams; in-flight ones finish, then we close.
    t->goaway_sent = true;
    t->outbound.PushControl(ipc::kFrameGoaway, 0, t->last_peer_stream_id);
    FlushLocked(t);
    MaybeFinishGracefulCloseLocked(t);
  }
  if (!op->disconnect_with_error.ok()) {
    CloseLocked(t, op->disconnect_with_error);
  }
  // gRPC's own pings (grpc_channel_ping) are answered locally: peer death
  // is seen at once through the socket hang-up, and keepalive.cc watches
  // for a peer that is alive but stuck.
  if (op->send_ping.on_initiate != nullptr) {
    ExecCtx::Run(DEBUG_LOCATION, op->send_ping.on_initiate, absl::OkStatus());
  }
  if (op->send_ping.on_ack != nullptr) {
    ExecCtx::Run(DEBUG_LOCATION, op->send_ping.on_ack,
                 t->closed ? t->close_error : absl::OkStatus());
  }
  if (op->on_consumed != nullptr) {
    ExecCtx::Run(DEBUG_LOCATION, op->on_consumed, absl::OkStatus());
  }
}

void DestroyStream(grpc_transport* gt, grpc_stream* gs, grpc_closure* then_schedule_closure) {
  ShmTransport* t = FromBase(gt);
  TakeOver(t);
  auto* s = reinterpret_cast<ShmStream*>(gs);
  {
    std::lock_guard<std::mutex> lock(t->mu);
    if (!t->closed) {
      grpc_error_handle error = GRPC_ERROR_CREATE("stream destroyed");
      if (s->phase == StreamPhase::kOpen) {
        // gRPC gave up on a stream still open on the wire: tell the peer.
        t->outbound.DropMessagesOf(s->id, error);
        t->outbound.PushFrame(ipc::kFrameReset, s->id, 0, GRPC_STATUS_CANCELLED,
                              "stream destroyed");
        CloseStreamLocked(s);
        FlushLocked(t);
      } else if (s->phase == StreamPhase::kQueued) {
        t->outbound.DropStream(s->id, error);
        CloseStreamLocked(s);
      }
    }
    if (s->id != 0) t->outbound.ForgetStream(s->id);
    DropInboundLocked(s);
    t->all_streams.erase(s);
  }
  g_open_streams.fetch_sub(1, std::memory_order_relaxed);
  s->~ShmStream();
  ExecCtx::Run(DEBUG_LOCATION, then_schedule_closure, absl::OkStatus());
}

void Destroy(grpc_transport* gt) {
  ShmTransport* t = FromBase(gt);
  TakeOver(t);
  {
    std::lock_guard<std::mutex> lock(t->mu);
    CloseLocked(t, StatusError(GRPC_STATUS_UNAVAILABLE, "shm transport: transport destroyed"));
  }
  UnrefTransport(t);
}

grpc_endpoint* GetEndpoint(grpc_transport*) { return nullptr; }

}  // namespace

// The name contains "shm" so the compression filter registration can pick
// this transport out (compression_filters.cc).
const grpc_transport_vtable kShmTransportVtable = {
    sizeof(ShmStream),    "shm",     InitStream,    nullptr, SetPollset, SetPollsetSet,
    PerformStreamOpEntry, PerformOp, DestroyStream, Destroy, GetEndpoint};

grpc_transport* CreateShmTransport(std::unique_ptr<ipc::Connection> connection, bool is_client,
                                   std::string peer_string, const grpc_core::ChannelArgs& args) {
  auto* t = new ShmTransport(std::move(connection), is_client, std::move(peer_string),
                             TransportLimits::FromChannelArgs(args));
  t->spin = SpinPolicy(std::chrono::nanoseconds(args.GetInt(kArgSpinNanos).value_or(0)));
  t->keepalive = KeepaliveConfig::FromChannelArgs(args, is_client);
  t->base.vtable = &kShmTransportVtable;
  std::lock_guard<std::mutex> lock(t->mu);
  if (!is_client) {
    // The first frame on the ring, written before gRPC can use the
    // transport: the client learns our limits before its first call.
    QueueSettingsLocked(t);
    FlushLocked(t);
    HandOff(t);  // gRPC's server takes it from here
    return &t->base;
  }
  // Client: wait for the server's settings as the last step of connecting
  // (we run on the connector's blocking thread).
  const auto timeout = std::chrono::milliseconds(args.GetInt(kArgHandshakeMs).value_or(5000));
  ipc::FrameView frame;
  ipc::Status status = t->connection->ReadFrame(&frame, ipc::Connection::Clock::now() + timeout);
  if (status.ok()) {
    status = ApplySettingsLocked(t, frame.header);
    if (status.ok()) t->connection->Consume();
  }
  if (!status.ok()) {
    CloseLocked(t, IpcError(status, "waiting for the server's settings"));
  }
  HandOff(t);  // the subchannel takes it from here
  return &t->base;
}

void StartShmTransport(grpc_transport* gt) {
  ShmTransport* t = FromBase(gt);
  TakeOver(t);
  std::lock_guard<std::mutex> lock(t->mu);
  if (t->closed || t->polling) return;
  t->poller = &ConnectionPoller();
  std::vector<Poller::Handle> handles;
  if (t->connection->poll_handle() == t->connection->liveness_handle()) {
    // Socket doorbells: one socket carries the rings and the hang-up, so
    // one watch (one duplicate descriptor). A poller that reports only
    // readability still ends the connection: Peek says kPeerClosed once
    // the ring is drained after the hang-up.
    handles = {{t->connection->liveness_handle(), kRoleLiveness,
                PollSource::kReadable | PollSource::kHangup}};
  } else {
    handles = {{t->connection->poll_handle(), kRoleDoorbell, PollSource::kReadable},
               {t->connection->liveness_handle(), kRoleLiveness, PollSource::kHangup}};
  }
  RefTransport(t);  // the poller's, dropped in OnRemoved
  ipc::Status added = t->poller->Add(&t->source, handles);
  if (!added.ok()) {
    // Nobody would ever read this connection: fail it now, loudly.
    UnrefTransport(t);
    CloseLocked(t, IpcError(added, "watching the connection"));
    return;
  }
  t->polling = true;
  StartKeepaliveLocked(t);
}

std::string PeerStringFor(const ipc::Connection& connection) {
  const auto& peer = connection.peer();
#ifdef _WIN32
  return absl::StrCat("shm:pid=", peer.pid, ",sid=", peer.user_sid);
#else
  return absl::StrCat("shm:pid=", peer.pid, ",uid=", peer.uid, ",gid=", peer.gid);
#endif
}

bool IsShmTransport(grpc_transport* transport) {
  return transport != nullptr && transport->vtable == &kShmTransportVtable;
}

}  // namespace transport
}  // namespace grpc_shm
