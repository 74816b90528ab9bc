// Private state shared by the transport's files: shm_transport.cc (the
// connection: frames in, poller, transport ops, vtable) and stream_ops.cc
// (how stream op batches map onto frames and complete). Not for use outside
// plugin/transport.
//
// Locking: one mutex per transport guards the transport, all its streams, the
// outbound queue and the connection's writer side. Closures are only ever
// scheduled with ExecCtx::Run, which under an ExecCtx just queues them, so
// they run after the lock is released. The accept-stream callback re-enters
// init_stream and perform_stream_op and is therefore called without the lock.
#ifndef GRPC_SHM_TRANSPORT_TRANSPORT_INTERNAL_H_
#define GRPC_SHM_TRANSPORT_TRANSPORT_INTERNAL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/metadata_codec.h"
#include "plugin/transport/outbound_queue.h"
#include "plugin/transport/poller.h"
#include "src/core/lib/iomgr/error.h"
#include "src/core/lib/resource_quota/arena.h"
#include "src/core/lib/slice/slice_buffer.h"
#include "src/core/lib/transport/connectivity_state.h"
#include "src/core/lib/transport/transport.h"
#include "src/core/lib/transport/transport_impl.h"

namespace grpc_shm {
namespace transport {

struct ShmTransport;

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
};

// One stream, placement-constructed by gRPC in memory of
// vtable.sizeof_stream. Client stream ids are odd and assigned when the
// initial metadata is sent; server streams get theirs from the client.
struct ShmStream {
  ShmStream(ShmTransport* t, grpc_stream_refcount* refs, uint32_t id, grpc_core::Arena* arena);
  ~ShmStream();

  ShmTransport* const t;
  grpc_stream_refcount* const refs;
  grpc_core::Arena* const arena;
  uint32_t id;          // 0: client stream not yet on the wire
  bool in_map = false;  // reachable by id from incoming frames

  // What the peer sent and we have not yet handed to gRPC.
  bool initial_md_received = false;
  std::vector<ipc::MetadataEntry> initial_md;
  bool trailing_md_received = false;  // peer finished its side
  std::vector<ipc::MetadataEntry> trailing_md;
  std::deque<InboundMessage> messages;
  size_t messages_bytes = 0;  // in `messages`; counted in t->inbound_bytes
  bool assembling = false;    // a chunked message is arriving
  InboundMessage partial;
  // Message bytes handed to gRPC and not yet returned to the peer's window.
  size_t window_to_return = 0;

  // What we sent (queued counts as sent: the queue preserves order).
  bool initial_md_sent = false;
  bool trailing_md_sent = false;

  bool initial_md_delivered = false;
  bool trailing_md_delivered = false;

  // Set once: cancelled by us, reset by the peer, or the transport closed.
  grpc_error_handle cancel_error;

  // Receive ops waiting for data.
  grpc_transport_stream_op_batch* recv_initial_md_op = nullptr;
  grpc_transport_stream_op_batch* recv_message_op = nullptr;
  grpc_transport_stream_op_batch* recv_trailing_md_op = nullptr;
  BatchCompletion* recv_trailing_completion = nullptr;
};

struct ShmTransport {
  ShmTransport(std::unique_ptr<ipc::Connection> connection, bool is_client, std::string peer_string,
               uint32_t max_metadata_size);

  grpc_transport base;  // must stay first: gRPC passes &base around
  const bool is_client;
  const std::string peer_string;  // outlives every stream (they ref us)
  // Largest metadata block we accept, counted as HTTP/2 does (key + value +
  // 32 per entry), so limits behave as over TCP.
  const uint32_t max_metadata_size;
  std::atomic<int> refs{1};  // gRPC's ref; streams and poller add theirs

  std::mutex mu;
  std::unique_ptr<ipc::Connection> connection;
  OutboundQueue outbound;
  grpc_core::ConnectivityStateTracker state_tracker;
  void (*accept_stream_cb)(void*, grpc_transport*, const void*) = nullptr;
  void* accept_stream_data = nullptr;

  std::map<uint32_t, ShmStream*> streams;  // on the wire, by id
  std::set<ShmStream*> all_streams;        // every initialised stream
  uint32_t next_stream_id = 1;             // client: odd ids
  uint32_t last_peer_stream_id = 0;        // server: ids must increase

  bool goaway_sent = false;      // server: no new streams; close when idle
  bool goaway_received = false;  // client: no new streams on this transport
  bool closed = false;
  grpc_error_handle close_error;
  bool polling = false;      // registered with the poller
  bool grpc_polled = false;  // gRPC's polling threads watch us (grpc_poller.h)
  bool removal_posted = false;
  bool waiting_for_space = false;  // the poller was asked to wait for space

  // Back-pressure on what the peer sends: complete messages received but not
  // yet taken by gRPC. Above kMaxInboundBytes the poller stops reading the
  // ring (the peer's writes then wait for space, as its gRPC sends do), and
  // it resumes below half of that. Messages still being assembled do not
  // count, so one message larger than the limit still gets through.
  static constexpr size_t kMaxInboundBytes = 64u << 20;
  size_t inbound_bytes = 0;
  bool reading_paused = false;
  // A thread is in Source::OnEvent's read loop (which lets go of mu while
  // gRPC accepts a stream): others leave the reading to it, setting
  // read_again so it goes round once more.
  bool reading = false;
  bool read_again = false;
  bool peer_hung_up = false;  // the liveness socket reported hang-up

  class Source : public PollSource {
   public:
    explicit Source(ShmTransport* t) : t_(t) {}
    void OnEvent(int role, uint32_t events) override;
    void OnRemoved() override;

   private:
    ShmTransport* t_;
  } source{this};
};

void RefTransport(ShmTransport* t);
void UnrefTransport(ShmTransport* t);

// ---- shm_transport.cc: connection-level, called with t->mu held.
// Writes what fits now; if the ring is full, asks the poller to wait for space.
void FlushLocked(ShmTransport* t);
// Fails every stream with `error` and hangs up. Idempotent.
void CloseLocked(ShmTransport* t, grpc_error_handle error);
// Takes a finished stream off the wire map; may finish a graceful shutdown.
void RemoveStreamLocked(ShmTransport* t, ShmStream* s);

// Drops the stream's undelivered messages from the inbound accounting (and,
// if that resumes reading, kicks the poller).
void DropInboundLocked(ShmStream* s);
// Accounts for `bytes` leaving the inbound buffer.
void ReleaseInboundLocked(ShmTransport* t, size_t bytes);
// `bytes` of the stream's messages went to gRPC: give the peer that much
// window back (in steps of a quarter window).
void ReturnWindowLocked(ShmStream* s, size_t bytes);

// ---- stream_ops.cc
void PerformStreamOp(ShmTransport* t, ShmStream* s, grpc_transport_stream_op_batch* op);
// Completes whatever waiting receive ops the stream's state now allows.
void DeliverLocked(ShmStream* s);
// Our side cancels: tells the peer (trailers first on a server), fails ops.
void CancelStreamLocked(ShmStream* s, grpc_error_handle error);
// The peer reset the stream with `code`/`message`.
void OnPeerResetLocked(ShmStream* s, grpc_status_code code, const std::string& message);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_TRANSPORT_INTERNAL_H_
