// Frames from the peer -> stream events. The peer is untrusted: every limit
// it can push against (limits.h) is checked here, where the frame comes in,
// before anything is copied or allocated. A frame that breaks the protocol
// ends the connection; one that only breaks a stream's limit fails that
// stream; neither touches other connections.
#include <grpc/status.h>
#include <grpc/support/log.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/transport/errors.h"
#include "plugin/transport/metadata_wire.h"
#include "plugin/transport/transport_internal.h"

namespace grpc_shm {
namespace transport {
namespace {

using Clock = InboundState::Clock;

bool TraceEnabled() {
  static const bool enabled = getenv("GRPC_SHM_TRACE") != nullptr;
  return enabled;
}

const char* Side(const ShmTransport* t) { return t->is_client ? "client" : "server"; }

ShmStream* FindStream(ShmTransport* t, uint32_t id) {
  auto it = t->streams.find(id);
  return it == t->streams.end() ? nullptr : it->second;
}

grpc_status_code StatusCodeFromWire(uint32_t aux) {
  return aux <= GRPC_STATUS_UNAUTHENTICATED ? static_cast<grpc_status_code>(aux)
                                            : GRPC_STATUS_UNKNOWN;
}

ipc::Status ProtocolError(std::string why) {
  return ipc::Status(ipc::StatusCode::kProtocol, std::move(why));
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

// Whether the peer could have used `id` for a stream: one it opened (server)
// or one we opened (client). Frames for ids that were never opened are a
// protocol error; frames for streams that have since closed are dropped.
bool StreamIdWasUsed(const ShmTransport* t, uint32_t id) {
  if (id == 0 || id % 2 == 0) return false;
  return t->is_client ? id < t->next_stream_id : id <= t->last_peer_stream_id;
}

// Takes one token for a stream the peer reset or we refused; false when the
// peer has used them all ("rapid reset": each costs us a gRPC call).
bool TakeResetToken(ShmTransport* t) {
  InboundState& in = t->inbound;
  const auto now = Clock::now();
  const double rate = t->limits.max_resets_per_second;
  if (in.reset_refill == Clock::time_point{}) {
    in.reset_tokens = rate;
  } else {
    const double seconds = std::chrono::duration<double>(now - in.reset_refill).count();
    in.reset_tokens = std::min(rate, in.reset_tokens + seconds * rate);
  }
  in.reset_refill = now;
  if (in.reset_tokens < 1) return false;
  in.reset_tokens -= 1;
  return true;
}

ipc::Status TooManyResets(ShmTransport* t) {
  CloseForPeerLocked(t, GRPC_STATUS_UNAVAILABLE,
                     absl::StrCat("shm transport: peer reset or had refused more than ",
                                  t->limits.max_resets_per_second, " streams per second"));
  return ipc::Status::Ok();
}

// Refuses a stream the server did not process: the client may retry it
// elsewhere, as with HTTP/2's REFUSED_STREAM.
// Like every frame we send for a stream we hold no state for, it is a
// control frame: one the peer induced, counted against the cap.
void RefuseStreamLocked(ShmTransport* t, uint32_t id, const std::string& why) {
  t->outbound.PushControl(ipc::kFrameReset, id, GRPC_STATUS_UNAVAILABLE, why,
                          ipc::kFlagRefusedStream);
}

// Resets a stream we hold no state for (it was never accepted).
void ResetUnknownStreamLocked(ShmTransport* t, uint32_t id, grpc_status_code code,
                              const std::string& why) {
  t->outbound.PushControl(ipc::kFrameReset, id, static_cast<uint32_t>(code), why);
}

// Server: a client opened stream `id`. Hands it to gRPC's accept callback,
// which re-enters init_stream and perform_stream_op, so `lock` is released
// around the call.
ipc::Status AcceptStreamLocked(ShmTransport* t, uint32_t id,
                               std::vector<ipc::MetadataEntry> metadata,
                               std::unique_lock<std::mutex>* lock) {
  if (t->goaway_sent || t->accept_stream_cb == nullptr) {
    RefuseStreamLocked(t, id, "shm transport: server is shutting down");
    return ipc::Status::Ok();
  }
  if (t->streams.size() >= t->limits.max_concurrent_streams) {
    // A client that honours our settings never gets here; one that does
    // not pays a token per refusal.
    if (!TakeResetToken(t)) return TooManyResets(t);
    RefuseStreamLocked(t, id,
                       absl::StrCat("shm transport: more than ", t->limits.max_concurrent_streams,
                                    " concurrent streams"));
    return ipc::Status::Ok();
  }
  auto accept = t->accept_stream_cb;
  void* accept_data = t->accept_stream_data;
  // A GOAWAY sent meanwhile (max_connection_age's timer, a shutdown) names
  // this stream as seen, so the transport must not close as idle under it.
  t->accepting_stream = true;
  lock->unlock();
  accept(accept_data, &t->base, reinterpret_cast<const void*>(static_cast<uintptr_t>(id)));
  lock->lock();
  t->accepting_stream = false;
  ShmStream* s = FindStream(t, id);
  if (s != nullptr) {
    s->initial_md = std::move(metadata);
    s->received = HalfState::kHeaders;
    DeliverLocked(s);
  }
  return ipc::Status::Ok();
}

// kFrameMessage: one chunk of a message. Chunks count against the stream's
// window when the message starts, against the message size limit as they
// arrive, and against the connection's buffer once complete.
ipc::Status OnMessageChunk(ShmTransport* t, const ipc::FrameView& frame) {
  const ipc::FrameHeader& header = frame.header;
  InboundState& in = t->inbound;
  ShmStream* s = FindStream(t, header.stream_id);
  if (!in.assembling) {
    if (s == nullptr && !StreamIdWasUsed(t, header.stream_id)) {
      return ProtocolError(
          absl::StrCat("message for stream ", header.stream_id, " which was never opened"));
    }
    if (s != nullptr) {
      if (s->received != HalfState::kHeaders) {
        return ProtocolError(absl::StrCat("message on stream ", header.stream_id,
                                          s->received == HalfState::kIdle
                                              ? " before its initial metadata"
                                              : " after its trailing metadata"));
      }
      if (s->receive_window <= 0) {
        // HTTP/2's FLOW_CONTROL_ERROR: the peer ignored our window.
        return ProtocolError(absl::StrCat("flow control: peer started a message on stream ",
                                          header.stream_id, " with its window spent"));
      }
      s->receive_window -= MessageCharge(0);
    }
    in.assembling = true;
    in.assembling_stream = header.stream_id;
    in.assembled_bytes = 0;
    in.discarding = s == nullptr || !s->cancel_error.ok();
    if (!in.discarding) {
      s->assembling = true;
      s->partial = InboundMessage();
      // The sender announces a message's length in each chunk's aux: a
      // large one within our limit is assembled in one buffer of that size.
      const size_t announced = header.aux;
      const size_t max = t->limits.max_receive_message_bytes;
      if ((header.flags & ipc::kFlagMoreChunks) && announced >= kLargeMessageBytes &&
          (max == 0 || announced <= max)) {
        s->partial.large = LargeMessageBuffer::Create(announced);
      }
    }
  } else if (header.stream_id != in.assembling_stream) {
    return ProtocolError(absl::StrCat("message on stream ", header.stream_id,
                                      " started while one on stream ", in.assembling_stream,
                                      " is unfinished"));
  }
  // The stream may have been cancelled or reset since the message started.
  if (!in.discarding && (s == nullptr || !s->assembling)) in.discarding = true;
  const size_t size = frame.payload_size();
  in.assembled_bytes += size;
  if (s != nullptr) s->receive_window -= static_cast<int64_t>(size);
  const size_t max = t->limits.max_receive_message_bytes;
  if (!in.discarding && max != 0 && in.assembled_bytes > max) {
    // As gRPC's message size filter says it, but before the message is
    // assembled: the rest of its chunks are read and dropped.
    in.discarding = true;
    s->assembling = false;
    s->partial = InboundMessage();
    CancelStreamLocked(s, StatusError(GRPC_STATUS_RESOURCE_EXHAUSTED,
                                      absl::StrCat("grpc: received message larger than max (",
                                                   in.assembled_bytes, "+ vs. ", max, ")")));
  }
  if (!in.discarding && s->partial.large != nullptr) {
    if (!s->partial.large->Append(frame)) {
      return ProtocolError(absl::StrCat("message on stream ", header.stream_id,
                                        " runs past the length its sender announced (", header.aux,
                                        " bytes)"));
    }
    if (header.flags & ipc::kFlagCompressed) s->partial.flags |= GRPC_WRITE_INTERNAL_COMPRESS;
  } else if (!in.discarding) {
    grpc_slice slice = GRPC_SLICE_MALLOC(size);
    frame.CopyPayloadTo(GRPC_SLICE_START_PTR(slice));
    s->partial.data.Append(grpc_core::Slice(slice));
    if (header.flags & ipc::kFlagCompressed) s->partial.flags |= GRPC_WRITE_INTERNAL_COMPRESS;
  }
  t->connection->Consume();
  if (header.flags & ipc::kFlagMoreChunks) return ipc::Status::Ok();
  in.assembling = false;
  if (in.discarding) return ipc::Status::Ok();
  if (s->partial.large != nullptr) {
    s->partial.data.Append(s->partial.large->TakeSlice());
    s->partial.large.reset();
  }
  const size_t charge = static_cast<size_t>(MessageCharge(s->partial.data.Length()));
  s->messages_charge += charge;
  in.buffered += charge;
  s->messages.push_back(std::move(s->partial));
  s->partial = InboundMessage();
  s->assembling = false;
  DeliverLocked(s);
  return ipc::Status::Ok();
}

// kFrameInitialMetadata / kFrameTrailingMetadata.
ipc::Status OnMetadata(ShmTransport* t, const ipc::FrameView& frame,
                       std::unique_lock<std::mutex>* lock) {
  const ipc::FrameHeader& header = frame.header;
  const bool initial = header.type == ipc::kFrameInitialMetadata;
  ShmStream* s = FindStream(t, header.stream_id);
  const bool opens = !t->is_client && initial && s == nullptr;
  if (opens) {
    if (header.stream_id <= t->last_peer_stream_id || header.stream_id % 2 == 0) {
      return ProtocolError(absl::StrCat("client opened stream ", header.stream_id, " after ",
                                        t->last_peer_stream_id));
    }
    t->last_peer_stream_id = header.stream_id;
  } else if (s == nullptr) {
    if (!StreamIdWasUsed(t, header.stream_id)) {
      return ProtocolError(
          absl::StrCat("metadata for stream ", header.stream_id, " which was never opened"));
    }
    t->connection->Consume();  // a stream that has closed
    return ipc::Status::Ok();
  } else if (initial ? s->received != HalfState::kIdle : s->received == HalfState::kEnded) {
    return ProtocolError(absl::StrCat("duplicate ", initial ? "initial" : "trailing",
                                      " metadata on stream ", header.stream_id));
  }
  // The block's size bounds the entries' size from below (each entry has an
  // 8-byte header where the limit counts 32), so an oversized block is
  // refused before it is copied or decoded.
  std::string why;
  grpc_status_code code = GRPC_STATUS_INTERNAL;
  std::vector<ipc::MetadataEntry> entries;
  const size_t block_size = frame.payload_size();
  if (block_size > t->limits.max_metadata_size + 4) {
    code = GRPC_STATUS_RESOURCE_EXHAUSTED;
  } else {
    std::string block = CopyPayload(frame);
    ipc::Status decoded =
        ipc::DecodeMetadata(reinterpret_cast<const uint8_t*>(block.data()), block.size(), &entries);
    if (!decoded.ok()) {
      why = absl::StrCat("shm transport: bad metadata from peer: ", decoded.ToString());
    } else if (MetadataSize(entries) > t->limits.max_metadata_size) {
      code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    } else if (ValidateMetadataFromPeer(&entries, &why)) {
      code = GRPC_STATUS_OK;
    } else {
      why = absl::StrCat("shm transport: bad metadata from peer: ", why);
    }
  }
  t->connection->Consume();
  if (code == GRPC_STATUS_RESOURCE_EXHAUSTED) {
    // As chttp2: the call fails with RESOURCE_EXHAUSTED, the connection
    // lives on.
    why = absl::StrCat("received ", initial ? "initial" : "trailing",
                       " metadata size exceeds limit (", t->limits.max_metadata_size, ")");
  }
  if (code != GRPC_STATUS_OK) {
    if (s != nullptr) {
      CancelStreamLocked(s, StatusError(code, why));
    } else {
      ResetUnknownStreamLocked(t, header.stream_id, code, why);
    }
    return ipc::Status::Ok();
  }
  if (opens) return AcceptStreamLocked(t, header.stream_id, std::move(entries), lock);
  if (initial) {
    s->initial_md = std::move(entries);
    s->received = HalfState::kHeaders;
  } else {
    if (s->assembling || (t->inbound.assembling && t->inbound.assembling_stream == s->id)) {
      return ProtocolError(
          absl::StrCat("trailing metadata on stream ", s->id, " in the middle of a message"));
    }
    s->trailers_only = s->received == HalfState::kIdle;
    s->trailing_md = std::move(entries);
    s->received = HalfState::kEnded;
    // A client stream is over once the server's status arrived.
    if (t->is_client) CloseStreamLocked(s);
  }
  DeliverLocked(s);
  if (t->is_client && s->received == HalfState::kEnded) {
    // What the client has not sent yet nobody will read, so those writes
    // fail rather than wait for window that will never come back, as over
    // HTTP/2; the call's status is the server's.
    s->writes_closed_by_peer = true;
    t->outbound.DropMessagesOf(
        s->id, StatusError(GRPC_STATUS_UNAVAILABLE, "shm transport: the server ended the call"));
  }
  return ipc::Status::Ok();
}

ipc::Status OnReset(ShmTransport* t, const ipc::FrameView& frame) {
  const ipc::FrameHeader& header = frame.header;
  if (frame.payload_size() > kMaxResetMessageBytes) {
    return ProtocolError("reset message too large");
  }
  std::string message = CopyPayload(frame);
  t->connection->Consume();
  ShmStream* s = FindStream(t, header.stream_id);
  if (s == nullptr) return ipc::Status::Ok();  // crossed with our own end of it
  if (!t->is_client && !TakeResetToken(t)) return TooManyResets(t);
  OnPeerResetLocked(s, StatusCodeFromWire(header.aux), message,
                    t->is_client && (header.flags & ipc::kFlagRefusedStream) != 0);
  return ipc::Status::Ok();
}

// Client: the server is going away and takes no stream above
// `last_stream_id`. A call that crossed the GOAWAY on the wire (it went out
// before we read the GOAWAY) and calls still waiting here for a stream slot
// fail in a way gRPC retries transparently on a new connection, as over
// chttp2; a server that closes once idle would otherwise fail them with
// UNAVAILABLE. A stream the server has already answered on it did see,
// whatever the GOAWAY says: it is left to finish.
void OnGoawayLocked(ShmTransport* t, uint32_t last_stream_id) {
  if (!t->goaway_received) {
    t->goaway_received = true;
    // Not READY any more: the subchannel stops sending new calls here and
    // reconnects; calls in flight finish on this transport.
    t->state_tracker.SetState(GRPC_CHANNEL_TRANSIENT_FAILURE,
                              absl::UnavailableError("shm transport: server is going away"),
                              "goaway");
  }
  const grpc_error_handle going_away =
      StatusError(GRPC_STATUS_UNAVAILABLE, "shm transport: server is going away");
  // Queued streams first: closing an open one would open them.
  std::vector<ShmStream*> queued(t->queued_streams.begin(), t->queued_streams.end());
  for (ShmStream* s : queued) CancelStreamLocked(s, going_away);
  std::vector<ShmStream*> unseen;
  for (const auto& [id, s] : t->streams) {
    if (id > last_stream_id && s->received == HalfState::kIdle) unseen.push_back(s);
  }
  for (ShmStream* s : unseen) {
    OnPeerResetLocked(s, GRPC_STATUS_UNAVAILABLE,
                      "shm transport: server went away before it saw the call",
                      /*refused=*/true);
  }
}

// kFramePing: answered, unless the peer pings more often than chttp2 would
// allow a client to. (Our own keepalive pings do not use the ring:
// keepalive.h.)
ipc::Status OnPing(ShmTransport* t, const ipc::FrameHeader& header) {
  t->connection->Consume();
  InboundState& in = t->inbound;
  const auto now = Clock::now();
  if (in.last_ping != Clock::time_point{} &&
      now - in.last_ping < std::chrono::milliseconds(t->limits.min_ping_interval_without_data_ms)) {
    ++in.ping_strikes;
  }
  in.last_ping = now;
  if (t->limits.max_ping_strikes > 0 && in.ping_strikes > t->limits.max_ping_strikes) {
    CloseForPeerLocked(t, GRPC_STATUS_UNAVAILABLE, "shm transport: too_many_pings");
    return ipc::Status::Ok();
  }
  t->outbound.PushControl(ipc::kFramePingAck, 0, header.aux);
  return ipc::Status::Ok();
}

ipc::Status OnFrame(ShmTransport* t, const ipc::FrameView& frame,
                    std::unique_lock<std::mutex>* lock) {
  const ipc::FrameHeader& header = frame.header;
  switch (header.type) {
    case ipc::kFrameMessage:
      return OnMessageChunk(t, frame);
    case ipc::kFrameInitialMetadata:
    case ipc::kFrameTrailingMetadata:
      return OnMetadata(t, frame, lock);
    case ipc::kFrameReset:
      return OnReset(t, frame);
    case ipc::kFrameGoaway:
      t->connection->Consume();
      if (t->is_client) OnGoawayLocked(t, header.aux);
      return ipc::Status::Ok();
    case ipc::kFramePing:
      return OnPing(t, header);
    case ipc::kFramePingAck:
      t->connection->Consume();
      return ipc::Status::Ok();
    case ipc::kFrameWindowUpdate:
      t->connection->Consume();
      // The poller flushes once it has read its fill.
      t->outbound.GrantWindow(header.stream_id, header.aux);
      return ipc::Status::Ok();
    case ipc::kFrameSettings:
      return ProtocolError("settings frame after the first frame");
    default:
      return ProtocolError(absl::StrCat("unknown frame type ", header.type));
  }
}

}  // namespace

bool ReadingBlockedLocked(const ShmTransport* t) {
  return t->inbound.paused || t->outbound.control_frames() >= kMaxPendingInducedFrames;
}

ipc::Status ReadFramesLocked(ShmTransport* t, std::unique_lock<std::mutex>* lock, int budget,
                             bool* budget_spent) {
  *budget_spent = false;
  for (int frames = 0;; ++frames) {
    if (t->closed) return ipc::Status::Ok();
    if (t->inbound.buffered >= t->limits.max_inbound_bytes) {
      if (TraceEnabled() && !t->inbound.paused) {
        gpr_log(GPR_INFO, "shm %s %p: reading paused, %zu bytes undelivered", Side(t), t,
                t->inbound.buffered);
      }
      t->inbound.paused = true;
    }
    if (budget >= 0 && ReadingBlockedLocked(t)) return ipc::Status::Ok();
    if (frames == budget) {
      *budget_spent = true;
      return ipc::Status::Ok();
    }
    ipc::FrameView frame;
    ipc::Status status = t->connection->Peek(&frame);
    if (status.code() == ipc::StatusCode::kWouldBlock) return ipc::Status::Ok();
    if (!status.ok()) return status;
    if (TraceEnabled()) {
      gpr_log(GPR_INFO, "shm %s %p: frame in type=%d stream=%u flags=%d size=%u aux=%u", Side(t), t,
              frame.header.type, frame.header.stream_id, frame.header.flags,
              frame.header.payload_size, frame.header.aux);
    }
    status = OnFrame(t, frame, lock);
    if (!status.ok()) return status;
  }
}

InboundMessage TakeMessageLocked(ShmStream* s) {
  ShmTransport* t = s->t;
  InboundMessage message = std::move(s->messages.front());
  s->messages.pop_front();
  const size_t charge = static_cast<size_t>(MessageCharge(message.data.Length()));
  s->messages_charge -= charge;
  t->inbound.buffered -= charge;
  if (t->inbound.paused && t->inbound.buffered < t->limits.max_inbound_bytes / 2) {
    t->inbound.paused = false;
    if (t->polling && !t->closed) KickPollerLocked(t);
  }
  // Give the peer its window back, in steps of a quarter window.
  s->window_to_return += charge;
  if (s->window_to_return >= static_cast<size_t>(kStreamWindow / 4) && s->on_wire() && !t->closed) {
    const uint32_t grant = static_cast<uint32_t>(std::min<size_t>(s->window_to_return, UINT32_MAX));
    s->receive_window += grant;
    s->window_to_return -= grant;
    t->outbound.PushControl(ipc::kFrameWindowUpdate, s->id, grant);
    // Not FlushLocked: we may be in the middle of delivering to gRPC, and a
    // failed write would close the transport under us. The poller flushes.
    if (t->polling) KickPollerLocked(t);
  }
  return message;
}

void DropInboundLocked(ShmStream* s) {
  ShmTransport* t = s->t;
  const size_t charge = s->messages_charge;
  s->messages.clear();
  s->messages_charge = 0;
  if (charge == 0) return;
  t->inbound.buffered -= charge;
  if (t->inbound.paused && t->inbound.buffered < t->limits.max_inbound_bytes / 2) {
    t->inbound.paused = false;
    if (t->polling && !t->closed) KickPollerLocked(t);
  }
}

void QueueSettingsLocked(ShmTransport* t) {
  t->outbound.PushControl(ipc::kFrameSettings, 0, t->limits.max_concurrent_streams);
}

ipc::Status ApplySettingsLocked(ShmTransport* t, const ipc::FrameHeader& header) {
  if (header.type != ipc::kFrameSettings || header.stream_id != 0 || header.payload_size != 0) {
    return ProtocolError(
        absl::StrCat("expected the server's settings frame first, got frame type ", header.type));
  }
  t->peer_max_streams = std::max<uint32_t>(1, header.aux);
  return ipc::Status::Ok();
}

}  // namespace transport
}  // namespace grpc_shm
