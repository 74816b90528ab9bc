// The connection side of the transport: incoming frames, the poller, graceful
// and abrupt close, transport ops and the grpc_transport_vtable. How stream
// ops become frames lives in stream_ops.cc.
#include "plugin/transport/shm_transport.h"

#include <grpc/status.h>
#include <grpc/support/log.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/transport/errors.h"
#include "plugin/transport/grpc_poller.h"
#include "plugin/transport/transport_internal.h"
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

ShmStream* FindStream(ShmTransport* t, uint32_t id) {
  auto it = t->streams.find(id);
  return it == t->streams.end() ? nullptr : it->second;
}

grpc_status_code StatusCodeFromWire(uint32_t aux) {
  return aux <= GRPC_STATUS_UNAUTHENTICATED ? static_cast<grpc_status_code>(aux)
                                            : GRPC_STATUS_UNKNOWN;
}

// The payload as one contiguous string (it may wrap around the ring end).
std::string CopyPayload(const ipc::FrameView& frame) {
  std::string out(frame.payload_size(), '\0');
  frame.CopyPayloadTo(reinterpret_cast<uint8_t*>(&out[0]));
  return out;
}

size_t MetadataSize(const std::vector<ipc::MetadataEntry>& entries) {
  size_t size = 0;
  for (const auto& e : entries) size += e.first.size() + e.second.size() + 32;
  return size;
}

void MaybeFinishGracefulCloseLocked(ShmTransport* t) {
  if (!t->is_client && t->goaway_sent && !t->closed && t->streams.empty() && t->outbound.empty()) {
    CloseLocked(t, StatusError(GRPC_STATUS_UNAVAILABLE, "shm transport: server shut down"));
  }
}

void ResetUnknownStreamLocked(ShmTransport* t, uint32_t id, grpc_status_code code,
                              const std::string& why) {
  t->outbound.PushFrame(ipc::kFrameReset, id, 0, static_cast<uint32_t>(code), why);
}

// Server: a client opened stream `id`. Hands it to gRPC's accept callback,
// which re-enters init_stream and perform_stream_op, so `lock` is released
// around the call.
ipc::Status AcceptStreamLocked(ShmTransport* t, uint32_t id,
                               std::vector<ipc::MetadataEntry> metadata,
                               std::unique_lock<std::mutex>* lock) {
  if (id <= t->last_peer_stream_id || id % 2 == 0) {
    return ipc::Status(ipc::StatusCode::kProtocol, absl::StrCat("client opened stream ", id,
                                                                " after ", t->last_peer_stream_id));
  }
  t->last_peer_stream_id = id;
  if (t->goaway_sent || t->accept_stream_cb == nullptr) {
    ResetUnknownStreamLocked(t, id, GRPC_STATUS_UNAVAILABLE,
                             "shm transport: server is shutting down");
    return ipc::Status::Ok();
  }
  auto accept = t->accept_stream_cb;
  void* accept_data = t->accept_stream_data;
  lock->unlock();
  accept(accept_data, &t->base, reinterpret_cast<const void*>(static_cast<uintptr_t>(id)));
  lock->lock();
  ShmStream* s = FindStream(t, id);
  if (s != nullptr) {
    s->initial_md = std::move(metadata);
    s->initial_md_received = true;
    DeliverLocked(s);
  }
  return ipc::Status::Ok();
}

// Reads every frame in the receive ring. Errors are the peer's fault and
// end the connection; they never touch other connections.
ipc::Status ReadFramesLocked(ShmTransport* t, std::unique_lock<std::mutex>* lock) {
  t->reading_paused = false;
  for (;;) {
    if (t->closed) return ipc::Status::Ok();
    if (t->inbound_bytes >= ShmTransport::kMaxInboundBytes) {
      if (TraceEnabled()) {
        gpr_log(GPR_INFO, "shm %s %p: reading paused, %zu bytes undelivered",
                t->is_client ? "client" : "server", t, t->inbound_bytes);
      }
      t->reading_paused = true;
      return ipc::Status::Ok();
    }
    ipc::FrameView frame;
    ipc::Status status = t->connection->Peek(&frame);
    if (status.code() == ipc::StatusCode::kWouldBlock) return ipc::Status::Ok();
    if (!status.ok()) return status;
    const ipc::FrameHeader header = frame.header;
    ShmStream* s = FindStream(t, header.stream_id);
    if (TraceEnabled()) {
      gpr_log(GPR_INFO, "shm %s %p: frame in type=%d stream=%u flags=%d size=%u known=%d",
              t->is_client ? "client" : "server", t, header.type, header.stream_id, header.flags,
              header.payload_size, s != nullptr);
    }
    switch (header.type) {
      case ipc::kFrameMessage: {
        if (s != nullptr) {
          if (!s->assembling) {
            s->partial = InboundMessage();
            s->assembling = true;
          }
          grpc_slice slice = GRPC_SLICE_MALLOC(frame.payload_size());
          frame.CopyPayloadTo(GRPC_SLICE_START_PTR(slice));
          s->partial.data.Append(grpc_core::Slice(slice));
          if (header.flags & ipc::kFlagCompressed) {
            s->partial.flags |= GRPC_WRITE_INTERNAL_COMPRESS;
          }
        }
        t->connection->Consume();
        if (s != nullptr && !(header.flags & ipc::kFlagMoreChunks)) {
          size_t bytes = s->partial.data.Length();
          s->messages_bytes += bytes;
          t->inbound_bytes += bytes;
          s->messages.push_back(std::move(s->partial));
          s->partial = InboundMessage();
          s->assembling = false;
          DeliverLocked(s);
        }
        break;
      }
      case ipc::kFrameInitialMetadata:
      case ipc::kFrameTrailingMetadata: {
        std::string block = CopyPayload(frame);
        t->connection->Consume();
        std::vector<ipc::MetadataEntry> entries;
        ipc::Status decoded = ipc::DecodeMetadata(reinterpret_cast<const uint8_t*>(block.data()),
                                                  block.size(), &entries);
        if (!decoded.ok()) {
          // One bad block fails its stream, not the connection.
          std::string why =
              absl::StrCat("shm transport: bad metadata from peer: ", decoded.ToString());
          ResetUnknownStreamLocked(t, header.stream_id, GRPC_STATUS_INTERNAL, why);
          if (s != nullptr) OnPeerResetLocked(s, GRPC_STATUS_INTERNAL, why);
          FlushLocked(t);
          break;
        }
        if (MetadataSize(entries) > t->max_metadata_size) {
          // As chttp2: the call fails with RESOURCE_EXHAUSTED, the connection
          // lives on.
          std::string why = absl::StrCat(
              "received ", header.type == ipc::kFrameInitialMetadata ? "initial" : "trailing",
              " metadata size exceeds limit");
          grpc_error_handle error = StatusError(GRPC_STATUS_RESOURCE_EXHAUSTED, why);
          if (s != nullptr) {
            CancelStreamLocked(s, error);
          } else if (!t->is_client && header.type == ipc::kFrameInitialMetadata &&
                     header.stream_id > t->last_peer_stream_id && header.stream_id % 2 == 1) {
            t->last_peer_stream_id = header.stream_id;
            ResetUnknownStreamLocked(t, header.stream_id, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
            FlushLocked(t);
          }
          break;
        }
        if (header.type == ipc::kFrameInitialMetadata) {
          if (!t->is_client && s == nullptr) {
            ipc::Status accepted =
                AcceptStreamLocked(t, header.stream_id, std::move(entries), lock);
            if (!accepted.ok()) return accepted;
          } else if (s != nullptr && !s->initial_md_received) {
            s->initial_md = std::move(entries);
            s->initial_md_received = true;
            DeliverLocked(s);
          }
        } else if (s != nullptr) {
          s->trailing_md = std::move(entries);
          s->trailing_md_received = true;
          // A client stream is over once the server's status arrived.
          if (t->is_client) RemoveStreamLocked(t, s);
          DeliverLocked(s);
        }
        break;
      }
      case ipc::kFrameReset: {
        std::string message = CopyPayload(frame);
        t->connection->Consume();
        if (s != nullptr) {
          OnPeerResetLocked(s, StatusCodeFromWire(header.aux), message);
        }
        break;
      }
      case ipc::kFrameGoaway:
        t->connection->Consume();
        if (t->is_client && !t->goaway_received) {
          t->goaway_received = true;
          // Not READY any more: the subchannel stops sending new calls here
          // and reconnects; calls in flight finish on this transport.
          t->state_tracker.SetState(GRPC_CHANNEL_TRANSIENT_FAILURE,
                                    absl::UnavailableError("shm transport: server is going away"),
                                    "goaway");
        }
        break;
      case ipc::kFramePing:
        t->connection->Consume();
        t->outbound.PushFrame(ipc::kFramePingAck, 0, 0, header.aux, {});
        FlushLocked(t);
        break;
      case ipc::kFramePingAck:
        t->connection->Consume();
        break;
      case ipc::kFrameWindowUpdate:
        t->connection->Consume();
        // The poller flushes once it has read everything.
        t->outbound.GrantWindow(header.stream_id, header.aux);
        break;
      default:
        return ipc::Status(ipc::StatusCode::kProtocol,
                           absl::StrCat("unknown frame type ", header.type));
    }
  }
}

void DestroyTransport(ShmTransport* t) { delete t; }

}  // namespace

ShmStream::ShmStream(ShmTransport* t, grpc_stream_refcount* refs, uint32_t id,
                     grpc_core::Arena* arena)
    : t(t), refs(refs), arena(arena), id(id) {
  RefTransport(t);
}

ShmStream::~ShmStream() { UnrefTransport(t); }

ShmTransport::ShmTransport(std::unique_ptr<ipc::Connection> connection, bool is_client,
                           std::string peer_string, uint32_t max_metadata_size)
    : is_client(is_client),
      peer_string(std::move(peer_string)),
      max_metadata_size(max_metadata_size),
      connection(std::move(connection)),
      state_tracker(is_client ? "shm_client" : "shm_server", GRPC_CHANNEL_READY) {}

void RefTransport(ShmTransport* t) { t->refs.fetch_add(1, std::memory_order_relaxed); }

void UnrefTransport(ShmTransport* t) {
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) DestroyTransport(t);
}

void KickPoller(ShmTransport* t) {
  if (t->grpc_polled) {
    GrpcPoller::Kick(&t->source);
  } else {
    Poller::Get().Kick(&t->source);
  }
}

void RemoveFromPoller(ShmTransport* t) {
  if (t->grpc_polled) {
    GrpcPoller::Remove(&t->source);
  } else {
    Poller::Get().Remove(&t->source);
  }
}

void FlushLocked(ShmTransport* t) {
  if (t->closed) return;
  ipc::Status status = t->outbound.Flush(t->connection.get());
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
      KickPoller(t);
    }
  } else {
    CloseLocked(t, IpcError(status, "writing to peer"));
  }
}

void ReturnWindowLocked(ShmStream* s, size_t bytes) {
  ShmTransport* t = s->t;
  s->window_to_return += bytes;
  if (s->window_to_return < static_cast<size_t>(OutboundQueue::kStreamWindow / 4)) return;
  if (t->closed || !s->in_map) return;
  while (s->window_to_return > 0) {
    const uint32_t grant = static_cast<uint32_t>(std::min<size_t>(s->window_to_return, UINT32_MAX));
    t->outbound.PushFrame(ipc::kFrameWindowUpdate, s->id, 0, grant, {});
    s->window_to_return -= grant;
  }
  // Not FlushLocked: we may be in the middle of delivering to gRPC, and a
  // failed write would close the transport under us. The poller flushes.
  if (t->polling) KickPoller(t);
}

void ReleaseInboundLocked(ShmTransport* t, size_t bytes) {
  t->inbound_bytes -= bytes;
  if (t->reading_paused && t->inbound_bytes < ShmTransport::kMaxInboundBytes / 2) {
    t->reading_paused = false;
    if (t->polling && !t->closed) KickPoller(t);
  }
}

void DropInboundLocked(ShmStream* s) {
  size_t bytes = s->messages_bytes;
  s->messages.clear();
  s->messages_bytes = 0;
  if (bytes != 0) ReleaseInboundLocked(s->t, bytes);
}

void RemoveStreamLocked(ShmTransport* t, ShmStream* s) {
  if (!s->in_map) return;
  t->streams.erase(s->id);
  s->in_map = false;
  MaybeFinishGracefulCloseLocked(t);
}

void CloseLocked(ShmTransport* t, grpc_error_handle error) {
  if (t->closed) return;
  t->closed = true;
  t->close_error = error;
  grpc_status_code code;
  std::string message;
  ErrorToStatus(error, &code, &message);
  t->state_tracker.SetState(GRPC_CHANNEL_SHUTDOWN,
                            absl::Status(static_cast<absl::StatusCode>(code), message),
                            "shm transport closed");
  t->outbound.Clear(error);
  t->streams.clear();
  std::vector<ShmStream*> streams(t->all_streams.begin(), t->all_streams.end());
  for (ShmStream* s : streams) {
    s->in_map = false;
    // A client stream whose status already arrived is complete: what it has
    // buffered is still delivered (a server that finishes its last call and
    // hangs up must not turn that call's OK into UNAVAILABLE).
    const bool complete = t->is_client && s->trailing_md_received;
    if (s->cancel_error.ok() && !complete) s->cancel_error = error;
    DeliverLocked(s);
  }
  // The poller hangs up (Connection::Close) once it has stopped reading.
  if (t->polling && !t->removal_posted) {
    t->removal_posted = true;
    RemoveFromPoller(t);
  } else if (!t->polling) {
    t->connection->Close();
  }
}

void ShmTransport::Source::OnEvent(int role, uint32_t events) {
  ShmTransport* t = t_;
  std::unique_lock<std::mutex> lock(t->mu);
  if (t->closed) return;
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
    ipc::Status status = ReadFramesLocked(t, &lock);
    if (!status.ok()) {
      t->reading = false;
      CloseLocked(t, IpcError(status, "reading from peer"));
      return;
    }
    if (t->closed) break;
    t->waiting_for_space = false;
    ipc::Status flushed = t->outbound.Flush(t->connection.get());
    if (!flushed.ok() && flushed.code() != ipc::StatusCode::kWouldBlock) {
      t->reading = false;
      CloseLocked(t, IpcError(flushed, "writing to peer"));
      return;
    }
    MaybeFinishGracefulCloseLocked(t);
    if (t->closed) break;
    if (t->read_again) continue;
    // While reading is paused, waiting for data would wake at once.
    uint32_t bits = t->reading_paused ? 0u : static_cast<uint32_t>(ipc::kWaitingForData);
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
    // Everything the peer wrote before it went away has been read above.
    CloseLocked(t, StatusError(GRPC_STATUS_UNAVAILABLE,
                               "shm transport: peer closed the connection "
                               "(process exited or hung up)"));
  }
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
  uint32_t id = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(server_data));
  auto* s = new (gs) ShmStream(t, refs, id, arena);
  std::lock_guard<std::mutex> lock(t->mu);
  t->all_streams.insert(s);
  if (t->closed) {
    s->cancel_error = t->close_error;
  } else if (id != 0) {
    t->streams[id] = s;
    s->in_map = true;
  }
  return 0;
}

void SetPollset(grpc_transport*, grpc_stream*, grpc_pollset*) {}
void SetPollsetSet(grpc_transport*, grpc_stream*, grpc_pollset_set*) {}

void PerformStreamOpEntry(grpc_transport* gt, grpc_stream* gs, grpc_transport_stream_op_batch* op) {
  PerformStreamOp(FromBase(gt), reinterpret_cast<ShmStream*>(gs), op);
}

void PerformOp(grpc_transport* gt, grpc_transport_op* op) {
  ShmTransport* t = FromBase(gt);
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
    t->outbound.PushFrame(ipc::kFrameGoaway, 0, 0, t->last_peer_stream_id, {});
    FlushLocked(t);
    MaybeFinishGracefulCloseLocked(t);
  }
  if (!op->disconnect_with_error.ok()) {
    CloseLocked(t, op->disconnect_with_error);
  }
  // No keepalive pings over shared memory: peer death is seen at once
  // through the socket hang-up, so a ping is answered locally.
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
  auto* s = reinterpret_cast<ShmStream*>(gs);
  {
    std::lock_guard<std::mutex> lock(t->mu);
    if (s->in_map && !t->closed) {
      // gRPC gave up on a stream still open on the wire: tell the peer.
      t->outbound.DropMessagesOf(s->id, GRPC_ERROR_CREATE("stream destroyed"));
      ResetUnknownStreamLocked(t, s->id, GRPC_STATUS_CANCELLED, "stream destroyed");
      RemoveStreamLocked(t, s);
      FlushLocked(t);
    }
    if (s->id != 0) t->outbound.ForgetStream(s->id);
    DropInboundLocked(s);
    t->all_streams.erase(s);
  }
  s->~ShmStream();
  ExecCtx::Run(DEBUG_LOCATION, then_schedule_closure, absl::OkStatus());
}

void Destroy(grpc_transport* gt) {
  ShmTransport* t = FromBase(gt);
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
  // chttp2's default SETTINGS_MAX_HEADER_LIST_SIZE.
  constexpr int kDefaultMaxMetadataSize = 8 * 1024;
  int max_metadata_size =
      std::max(0, args.GetInt(GRPC_ARG_MAX_METADATA_SIZE).value_or(kDefaultMaxMetadataSize));
  auto* t = new ShmTransport(std::move(connection), is_client, std::move(peer_string),
                             static_cast<uint32_t>(max_metadata_size));
  t->base.vtable = &kShmTransportVtable;
  return &t->base;
}

void StartShmTransport(grpc_transport* gt) {
  ShmTransport* t = FromBase(gt);
  std::lock_guard<std::mutex> lock(t->mu);
  if (t->closed || t->polling) return;
  t->polling = true;
  RefTransport(t);  // the poller's, dropped in OnRemoved
  t->grpc_polled = GrpcPoller::Usable();
  std::vector<Poller::Handle> handles = {
      {t->connection->poll_handle(), kRoleDoorbell, PollSource::kReadable},
      {t->connection->liveness_handle(), kRoleLiveness, PollSource::kHangup}};
  if (t->grpc_polled) {
    GrpcPoller::Add(&t->source, handles);
  } else {
    Poller::Get().Add(&t->source, handles);
  }
}

std::string PeerStringFor(const ipc::Connection& connection) {
  const auto& peer = connection.peer();
  return absl::StrCat("shm:pid=", peer.pid, ",uid=", peer.uid, ",gid=", peer.gid);
}

bool IsShmTransport(grpc_transport* transport) {
  return transport != nullptr && transport->vtable == &kShmTransportVtable;
}

}  // namespace transport
}  // namespace grpc_shm
