// One gRPC stream of a shm transport: where it is on the wire (one explicit
// phase with named transitions, as nghttp2's stream states), how far each of
// its two halves has got, what the peer sent that gRPC has not taken yet,
// and the receive ops waiting for it. Not for use outside plugin/transport.
//
//          client: SendInitialMetadata                  server: accepted
//   kIdle ----------------------------------> kOpen <--------------------- (new)
//     |        (server's limit reached)        ^ |
//     +-----------------> kQueued -------------+ |  ended, reset, refused,
//                            |   slot free      |  transport closed
//                            +------------------+--> kClosed
//
// Only the transitions in transport_internal.h (OpenStreamLocked,
// CloseStreamLocked) change `phase`; frame handlers and op handlers ask it
// what is allowed.
#ifndef GRPC_SHM_TRANSPORT_STREAM_H_
#define GRPC_SHM_TRANSPORT_STREAM_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "plugin/ipc/metadata_codec.h"
#include "plugin/transport/large_message.h"
#include "plugin/transport/limits.h"
#include "src/core/lib/iomgr/error.h"
#include "src/core/lib/resource_quota/arena.h"
#include "src/core/lib/slice/slice_buffer.h"
#include "src/core/lib/transport/transport.h"

namespace grpc_shm {
namespace transport {

struct ShmTransport;

enum class StreamPhase : uint8_t {
  kIdle,    // client stream before its initial metadata: no id yet
  kQueued,  // client: has an id and queued frames, waits for the server's
            // concurrency limit to let it open (the server has not seen it)
  kOpen,    // on the wire: frames with its id reach it
  kClosed,  // off the wire (ended, reset, refused, or the transport closed):
            // frames with its id are dropped
};

// How far one direction of a stream has got.
enum class HalfState : uint8_t {
  kIdle,     // nothing yet
  kHeaders,  // initial metadata
  kEnded,    // trailing metadata (the client's half-close, the server's status)
};

// Counts the parts of one op batch that must finish before its on_complete
// runs: the send_message (when its last chunk is in the ring) and the
// recv_trailing_metadata (when delivered), plus one for the submission
// itself. Heap-allocated per batch; deletes itself at zero.
struct BatchCompletion {
  explicit BatchCompletion(grpc_closure* on_complete) : on_complete(on_complete) {}
  grpc_closure* const on_complete;
  int pending = 1;
  grpc_error_handle error;
  void Start() { ++pending; }
  void Finish(grpc_error_handle step_error);  // runs on_complete at zero
};

struct InboundMessage {
  grpc_core::SliceBuffer data;
  uint32_t flags = 0;  // GRPC_WRITE_* flags for recv_message.flags
  // While a large message is assembled: its buffer (large_message.h); its
  // slice joins `data` when the last chunk is in.
  std::unique_ptr<LargeMessageBuffer> large;
};

// Placement-constructed by gRPC in memory of vtable.sizeof_stream. Client
// stream ids are odd and assigned when the initial metadata is sent; server
// streams get theirs from the client. Guarded by the transport's mutex.
struct ShmStream {
  ShmStream(ShmTransport* t, grpc_stream_refcount* refs, uint32_t id, grpc_core::Arena* arena);
  ~ShmStream();

  bool on_wire() const { return phase == StreamPhase::kOpen; }

  ShmTransport* const t;
  grpc_stream_refcount* const refs;
  grpc_core::Arena* const arena;
  uint32_t id;
  StreamPhase phase = StreamPhase::kIdle;
  HalfState sent = HalfState::kIdle;      // what we queued (queued counts as sent:
                                          // the queue preserves order)
  HalfState received = HalfState::kIdle;  // what the peer sent

  // What the peer sent and gRPC has not taken yet.
  std::vector<ipc::MetadataEntry> initial_md;
  std::vector<ipc::MetadataEntry> trailing_md;
  bool trailers_only = false;  // client: the status came without initial metadata
  std::deque<InboundMessage> messages;
  size_t messages_charge = 0;  // MessageCharge of `messages`; in t->inbound.buffered
  bool assembling = false;     // a chunked message for this stream is arriving
  InboundMessage partial;

  // Flow control of what the peer sends us: the window it may still use
  // (a message may start only while it is above zero), and what gRPC has
  // taken but we have not yet given back.
  int64_t receive_window = kStreamWindow;
  size_t window_to_return = 0;

  // It entered kOpen at some point: the server may have seen it. A client
  // stream that never did can be retried transparently when it fails.
  bool reached_wire = false;
  bool initial_md_delivered = false;
  bool trailing_md_delivered = false;
  // Client: the server refused the stream before seeing it, so gRPC may
  // retry the call transparently.
  bool refused = false;
  // Client: the server ended the call while messages were still queued;
  // they are dropped as writes to a closed stream, not as call failures.
  bool writes_closed_by_peer = false;

  // Set once: cancelled by us, reset by the peer, or the transport closed.
  grpc_error_handle cancel_error;

  // Receive ops waiting for data.
  grpc_transport_stream_op_batch* recv_initial_md_op = nullptr;
  grpc_transport_stream_op_batch* recv_message_op = nullptr;
  grpc_transport_stream_op_batch* recv_trailing_md_op = nullptr;
  BatchCompletion* recv_trailing_completion = nullptr;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_STREAM_H_
