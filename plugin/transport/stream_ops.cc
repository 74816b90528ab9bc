// How gRPC stream op batches map onto frames, and how the stream's state
// (stream.h) completes them. Called with the transport lock held (see
// transport_internal.h), except PerformStreamOp which takes it.
//
// Wire contract per stream:
//   client: INITIAL_METADATA, MESSAGE*, TRAILING_METADATA (half-close)
//   server: INITIAL_METADATA?, MESSAGE*, TRAILING_METADATA (status)
//   either side may send RESET instead of finishing; a cancelling server
//   first sends status trailers, so the client sees the server's status.
#include <grpc/status.h>
#include <grpc/support/atm.h>

#include "plugin/transport/errors.h"
#include "plugin/transport/metadata_wire.h"
#include "plugin/transport/transport_internal.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/transport/metadata_batch.h"

namespace grpc_shm {
namespace transport {
namespace {

using grpc_core::ExecCtx;

void Schedule(grpc_closure* closure, grpc_error_handle error) {
  if (closure != nullptr) ExecCtx::Run(DEBUG_LOCATION, closure, error);
}

// True when the trailers carry a status other than OK: then messages not yet
// read are dropped, as chttp2 does, so the status is not held up behind them.
bool TrailersCarryError(const std::vector<ipc::MetadataEntry>& trailers) {
  for (const auto& entry : trailers) {
    if (entry.first == "grpc-status") return entry.second != "0";
  }
  return false;
}

// The stream has finished receiving: no message will follow.
bool ReadClosed(const ShmStream* s) {
  return s->received == HalfState::kEnded || (!s->t->is_client && s->sent == HalfState::kEnded);
}

// A client call the server never saw fails in a way that lets gRPC retry it
// transparently on another connection.
void MarkNotSeenByServer(ShmStream* s, grpc_metadata_batch* trailers) {
  if (!s->t->is_client) return;
  if (!s->reached_wire) {
    trailers->Set(grpc_core::GrpcStreamNetworkState(),
                  grpc_core::GrpcStreamNetworkState::kNotSentOnWire);
  } else if (s->refused) {
    trailers->Set(grpc_core::GrpcStreamNetworkState(),
                  grpc_core::GrpcStreamNetworkState::kNotSeenByServer);
  }
}

void DeliverInitialMetadata(ShmStream* s) {
  ShmTransport* t = s->t;
  auto& p = s->recv_initial_md_op->payload->recv_initial_metadata;
  grpc_error_handle error;
  if (!s->cancel_error.ok()) {
    error = s->cancel_error;
    if (p.trailing_metadata_available != nullptr) {
      *p.trailing_metadata_available = true;
    }
  } else if (s->received == HalfState::kHeaders ||
             (s->received == HalfState::kEnded && !s->trailers_only)) {
    AppendMetadata(s->initial_md, p.recv_initial_metadata);
    s->initial_md.clear();
    p.recv_initial_metadata->Set(grpc_core::PeerString(), t->peer_string);
    // Only a trailers-only response says "trailers available": the retry
    // filter then holds this callback until the trailers are delivered,
    // which for a normal response would wait on unread messages forever.
    if (p.trailing_metadata_available != nullptr) {
      *p.trailing_metadata_available = false;
    }
  } else if (t->is_client && s->trailers_only) {
    // Trailers-only response: empty initial metadata, status follows.
    p.recv_initial_metadata->Set(grpc_core::PeerString(), t->peer_string);
    if (p.trailing_metadata_available != nullptr) {
      *p.trailing_metadata_available = true;
    }
  } else {
    return;  // keep waiting
  }
  if (p.peer_string != nullptr) {
    gpr_atm_rel_store(p.peer_string, reinterpret_cast<gpr_atm>(t->peer_string.c_str()));
  }
  s->initial_md_delivered = true;
  s->recv_initial_md_op = nullptr;
  Schedule(p.recv_initial_metadata_ready, error);
}

void DeliverMessage(ShmStream* s) {
  auto& p = s->recv_message_op->payload->recv_message;
  grpc_error_handle error;
  if (!s->cancel_error.ok()) {
    error = s->cancel_error;
    p.recv_message->reset();
    if (p.call_failed_before_recv_message != nullptr) {
      *p.call_failed_before_recv_message = true;
    }
  } else if (!s->messages.empty()) {
    InboundMessage message = TakeMessageLocked(s);
    *p.recv_message = std::move(message.data);
    // Optional: gRPC's own streams (the client-side health check) pass none.
    if (p.flags != nullptr) *p.flags = message.flags;
  } else if (ReadClosed(s) && !s->assembling) {
    p.recv_message->reset();  // end of stream
  } else {
    return;
  }
  s->recv_message_op = nullptr;
  Schedule(p.recv_message_ready, error);
}

void DeliverTrailingMetadata(ShmStream* s) {
  ShmTransport* t = s->t;
  auto& p = s->recv_trailing_md_op->payload->recv_trailing_metadata;
  grpc_error_handle error;
  if (!s->cancel_error.ok()) {
    error = s->cancel_error;
    MarkNotSeenByServer(s, p.recv_trailing_metadata);
  } else if (t->is_client) {
    if (s->received != HalfState::kEnded) return;
    if (TrailersCarryError(s->trailing_md)) {
      DropInboundLocked(s);
    } else if (!s->messages.empty() || s->assembling) {
      return;  // the status comes after the messages it ends
    }
    AppendMetadata(s->trailing_md, p.recv_trailing_metadata);
    p.recv_trailing_metadata->Set(grpc_core::PeerString(), t->peer_string);
    MarkNotSeenByServer(s, p.recv_trailing_metadata);
  } else {
    // A server's call ends when it has sent its status. Waiting for the
    // client's half-close as well would leave the call open forever if a
    // client never half-closes after reading the status.
    if (s->sent != HalfState::kEnded) return;
    AppendMetadata(s->trailing_md, p.recv_trailing_metadata);
  }
  s->trailing_md.clear();
  s->trailing_md_delivered = true;
  s->recv_trailing_md_op = nullptr;
  Schedule(p.recv_trailing_metadata_ready, error);
  BatchCompletion* completion = s->recv_trailing_completion;
  s->recv_trailing_completion = nullptr;
  completion->Finish(error);
}

// Fails the parts of `op` that were not started because the stream or the
// transport already failed with `error`.
void FailOp(ShmStream* s, grpc_transport_stream_op_batch* op, grpc_error_handle error) {
  auto* p = op->payload;
  // A send_message's buffer is left as it is: gRPC's retry filter may send
  // it again on another attempt.
  if (op->recv_initial_metadata) {
    if (p->recv_initial_metadata.trailing_metadata_available != nullptr) {
      *p->recv_initial_metadata.trailing_metadata_available = true;
    }
    Schedule(p->recv_initial_metadata.recv_initial_metadata_ready, error);
  }
  if (op->recv_message) {
    p->recv_message.recv_message->reset();
    if (p->recv_message.call_failed_before_recv_message != nullptr) {
      *p->recv_message.call_failed_before_recv_message = true;
    }
    Schedule(p->recv_message.recv_message_ready, error);
  }
  if (op->recv_trailing_metadata) {
    MarkNotSeenByServer(s, p->recv_trailing_metadata.recv_trailing_metadata);
    Schedule(p->recv_trailing_metadata.recv_trailing_metadata_ready, error);
  }
}

// A server that ends a call in the batch that starts its response, with no
// message and no metadata of the application's, answers with the trailers
// alone, as chttp2 does (writing.cc: a Trailers-Only response). The client
// then knows the server sent no response headers, which is what lets gRPC's
// retry filter retry a failed attempt (gRFC A6); with headers first it
// commits the call to that attempt.
bool IsTrailersOnlyResponse(const ShmStream* s, const grpc_transport_stream_op_batch* op) {
  return !s->t->is_client && op->send_initial_metadata && op->send_trailing_metadata &&
         !op->send_message && s->sent == HalfState::kIdle &&
         HasOnlyDefaultMetadata(*op->payload->send_initial_metadata.send_initial_metadata);
}

// `on_wire` false: the initial metadata is dropped (trailers only).
grpc_error_handle SendInitialMetadataLocked(ShmStream* s, grpc_transport_stream_op_batch* op,
                                            bool on_wire) {
  ShmTransport* t = s->t;
  if (s->sent != HalfState::kIdle) return GRPC_ERROR_CREATE("Extra initial metadata");
  if (t->is_client) {
    if (t->goaway_received) {
      return StatusError(GRPC_STATUS_UNAVAILABLE, "shm transport: server is going away");
    }
    if (t->next_stream_id > (1u << 31)) {
      return StatusError(GRPC_STATUS_UNAVAILABLE, "shm transport: stream ids exhausted");
    }
    OpenClientStreamLocked(s);
  }
  auto& p = op->payload->send_initial_metadata;
  if (on_wire) {
    t->outbound.PushFrame(ipc::kFrameInitialMetadata, s->id, 0, 0,
                          EncodeMetadata(*p.send_initial_metadata));
  }
  s->sent = HalfState::kHeaders;
  t->inbound.ping_strikes = 0;  // as chttp2: sending resets the peer's strikes
  if (p.peer_string != nullptr) {
    gpr_atm_rel_store(p.peer_string, reinterpret_cast<gpr_atm>(t->peer_string.c_str()));
  }
  return absl::OkStatus();
}

}  // namespace

void BatchCompletion::Finish(grpc_error_handle step_error) {
  if (!step_error.ok() && error.ok()) error = step_error;
  if (--pending == 0) {
    Schedule(on_complete, error);
    delete this;
  }
}

void DeliverLocked(ShmStream* s) {
  if (s->recv_initial_md_op != nullptr) DeliverInitialMetadata(s);
  // Messages only after the initial metadata, which they follow on the wire.
  if (s->recv_message_op != nullptr &&
      (s->initial_md_delivered || !s->cancel_error.ok() || s->recv_initial_md_op == nullptr)) {
    DeliverMessage(s);
  }
  if (s->recv_trailing_md_op != nullptr) DeliverTrailingMetadata(s);
}

// Whether the thread that ran `op` should now poll for the peer's frames
// (SpinForPeerFrames): the batch leaves this stream waiting for the peer,
// or, on a server, ends a call (a client's next call is what comes next).
static bool AwaitsPeerLocked(const ShmStream* s, const grpc_transport_stream_op_batch* op) {
  if (s->t->closed || !s->cancel_error.ok()) return false;
  if (!s->t->is_client && op->send_trailing_metadata) return true;
  if (s->phase != StreamPhase::kOpen || s->received == HalfState::kEnded) return false;
  if (op->recv_message && s->recv_message_op == op) return true;
  if (op->recv_initial_metadata && s->recv_initial_md_op == op) return true;
  // A client that has half-closed awaits the response.
  return s->t->is_client && op->send_trailing_metadata && s->recv_trailing_md_op != nullptr;
}

static bool PerformStreamOpLocked(ShmTransport* t, ShmStream* s,
                                  grpc_transport_stream_op_batch* op);

void PerformStreamOp(ShmTransport* t, ShmStream* s, grpc_transport_stream_op_batch* op) {
  bool await_peer = false;
  {
    std::unique_lock<std::mutex> lock(t->mu);
    await_peer = PerformStreamOpLocked(t, s, op) && t->spin.budget().count() > 0;
  }
  if (await_peer) SpinForPeerFrames(t);
}

// The batch under the lock; true when the thread should spin afterwards.
static bool PerformStreamOpLocked(ShmTransport* t, ShmStream* s,
                                  grpc_transport_stream_op_batch* op) {
  auto* batch = new BatchCompletion(op->on_complete);
  if (op->cancel_stream) {
    CancelStreamLocked(s, op->payload->cancel_stream.cancel_error);
    batch->Finish(absl::OkStatus());
    return false;
  }
  grpc_error_handle error = s->cancel_error;
  if (error.ok() && op->send_initial_metadata) {
    error = SendInitialMetadataLocked(s, op, /*on_wire=*/!IsTrailersOnlyResponse(s, op));
    if (!error.ok()) s->cancel_error = error;
  }
  if (!error.ok()) {
    FailOp(s, op, error);
    batch->Finish(error);
    return false;
  }
  bool flush = op->send_initial_metadata;
  if (op->send_message) {
    auto& p = op->payload->send_message;
    if (ReadClosed(s) && (t->is_client || s->sent == HalfState::kEnded)) {
      // Nobody will read it: the peer already ended the call. (Its buffer
      // stays as it is, as in FailOp.)
      p.stream_write_closed = true;
    } else {
      uint8_t flags = (p.flags & GRPC_WRITE_INTERNAL_COMPRESS) ? ipc::kFlagCompressed : 0;
      batch->Start();
      auto* payload = op->payload;
      t->outbound.PushMessage(s->id, flags, *p.send_message,
                              [batch, s, payload](grpc_error_handle e) {
                                if (!e.ok() && s->writes_closed_by_peer) {
                                  // Not a failure of the call: gRPC fails the
                                  // write and takes the status from the
                                  // server's trailers.
                                  payload->send_message.stream_write_closed = true;
                                  e = absl::OkStatus();
                                }
                                batch->Finish(e);
                              });
      t->inbound.ping_strikes = 0;
      flush = true;
    }
  }
  if (op->send_trailing_metadata && s->sent != HalfState::kEnded) {
    auto& p = op->payload->send_trailing_metadata;
    t->outbound.PushFrame(ipc::kFrameTrailingMetadata, s->id, 0, 0,
                          EncodeMetadata(*p.send_trailing_metadata));
    s->sent = HalfState::kEnded;
    if (p.sent != nullptr) *p.sent = true;
    flush = true;
  }
  if (op->recv_initial_metadata) s->recv_initial_md_op = op;
  if (op->recv_message) s->recv_message_op = op;
  if (op->recv_trailing_metadata) {
    s->recv_trailing_md_op = op;
    batch->Start();
    s->recv_trailing_completion = batch;
  }
  DeliverLocked(s);
  // A server that sent its status is done with the stream on the wire.
  if (!t->is_client && s->sent == HalfState::kEnded && s->on_wire()) {
    CloseStreamLocked(s);
  }
  if (flush) FlushLocked(t);
  // Before Finish: `op` may be gone once its completion has run.
  const bool await_peer = AwaitsPeerLocked(s, op);
  batch->Finish(absl::OkStatus());
  return await_peer;
}

void CancelStreamLocked(ShmStream* s, grpc_error_handle error) {
  ShmTransport* t = s->t;
  if (!s->cancel_error.ok()) return;
  if (error.ok()) error = GRPC_ERROR_CREATE("stream cancelled");
  s->cancel_error = error;
  s->assembling = false;  // the rest of a message arriving for it is dropped
  s->partial = InboundMessage();
  if (s->phase == StreamPhase::kOpen && !t->closed) {
    grpc_status_code code;
    std::string message;
    ErrorToStatus(error, &code, &message);
    if (message.size() > kMaxResetMessageBytes) message.resize(kMaxResetMessageBytes);
    t->outbound.DropMessagesOf(s->id, error);
    if (!t->is_client && s->sent != HalfState::kEnded) {
      t->outbound.PushFrame(ipc::kFrameTrailingMetadata, s->id, 0, 0,
                            EncodeStatusTrailers(code, message));
      s->sent = HalfState::kEnded;
    }
    t->outbound.PushFrame(ipc::kFrameReset, s->id, 0, static_cast<uint32_t>(code), message);
    CloseStreamLocked(s);
    FlushLocked(t);
  } else if (s->phase == StreamPhase::kQueued) {
    // The server never saw it: nothing to tell.
    t->outbound.DropStream(s->id, error);
    CloseStreamLocked(s);
  }
  DeliverLocked(s);
}

void OnPeerResetLocked(ShmStream* s, grpc_status_code code, const std::string& message,
                       bool refused) {
  ShmTransport* t = s->t;
  grpc_error_handle error = StatusError(code, message);
  CloseStreamLocked(s);
  t->outbound.DropMessagesOf(s->id, error);
  s->assembling = false;
  s->partial = InboundMessage();
  if (t->is_client) {
    // The client learns the outcome as a status, like any other.
    if (s->received != HalfState::kEnded) {
      s->trailing_md.clear();
      s->trailing_md.emplace_back("grpc-status", std::to_string(static_cast<int>(code)));
      if (!message.empty()) s->trailing_md.emplace_back("grpc-message", message);
      s->trailers_only = s->received == HalfState::kIdle;
      s->received = HalfState::kEnded;
      s->refused = refused;
    }
  } else if (s->cancel_error.ok()) {
    s->cancel_error = error;
  }
  DeliverLocked(s);
}

}  // namespace transport
}  // namespace grpc_shm
