// Private state shared by the transport's files. Not for use outside
// plugin/transport. A reader following one call moves down through:
//   stream_ops.cc     gRPC's stream op batches -> frames and completions
//   stream.h          one stream's phase and halves (the state machine)
//   inbound.cc        frames from the peer -> stream events; every limit of
//                     limits.h that a peer can push against is checked there,
//                     before anything is copied or allocated
//   outbound_queue.*  frames to the peer: control first, streams in turn
//   shm_transport.cc  the connection's life: poller, close, goaway, vtable
//
// Locking: one mutex per transport guards the transport, all its streams, the
// outbound queue and the connection's writer side. Closures are only ever
// scheduled with ExecCtx::Run, which under an ExecCtx just queues them, so
// they run after the lock is released. The accept-stream callback re-enters
// init_stream and perform_stream_op and is therefore called without the lock.
#ifndef GRPC_SHM_TRANSPORT_TRANSPORT_INTERNAL_H_
#define GRPC_SHM_TRANSPORT_TRANSPORT_INTERNAL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "plugin/ipc/connection.h"
#include "plugin/transport/keepalive.h"
#include "plugin/transport/limits.h"
#include "plugin/transport/outbound_queue.h"
#include "plugin/transport/poller.h"
#include "plugin/transport/spin_policy.h"
#include "plugin/transport/stream.h"
#include "src/core/lib/iomgr/error.h"
#include "src/core/lib/iomgr/timer.h"
#include "src/core/lib/transport/connectivity_state.h"
#include "src/core/lib/transport/transport.h"
#include "src/core/lib/transport/transport_impl.h"

namespace grpc_shm {
namespace transport {

// What the connection has received from the peer and not yet handed to
// gRPC, and the budgets that bound what a peer can make us do.
struct InboundState {
  using Clock = std::chrono::steady_clock;

  // The one message being received: the peer sends one message at a time,
  // so at most one is unfinished per connection (see outbound_queue.h).
  bool assembling = false;
  uint32_t assembling_stream = 0;
  size_t assembled_bytes = 0;
  // Its chunks are read and dropped (stream gone, or message too large).
  bool discarding = false;

  // MessageCharge of complete messages waiting for gRPC, all streams. At
  // TransportLimits::max_inbound_bytes reading pauses (the peer's writes
  // then wait for ring space) and resumes below half of it.
  size_t buffered = 0;
  bool paused = false;

  // Ping strikes, as chttp2 counts them: a ping sooner than the minimum
  // interval after the previous one, with no data sent in between.
  int ping_strikes = 0;
  Clock::time_point last_ping{};
  // Token bucket for streams the peer resets or we refuse.
  double reset_tokens = 0;
  Clock::time_point reset_refill{};
};

struct ShmTransport {
  ShmTransport(std::unique_ptr<ipc::Connection> connection, bool is_client, std::string peer_string,
               const TransportLimits& limits);

  grpc_transport base;  // must stay first: gRPC passes &base around
  const bool is_client;
  const std::string peer_string;  // outlives every stream (they ref us)
  const TransportLimits limits;
  std::atomic<int> refs{1};  // gRPC's ref; streams and poller add theirs

  std::mutex mu;
  std::unique_ptr<ipc::Connection> connection;
  OutboundQueue outbound;
  InboundState inbound;
  grpc_core::ConnectivityStateTracker state_tracker;
  void (*accept_stream_cb)(void*, grpc_transport*, const void*) = nullptr;
  void* accept_stream_data = nullptr;

  std::map<uint32_t, ShmStream*> streams;  // phase kOpen, by id
  std::set<ShmStream*> all_streams;        // every initialised stream
  uint32_t next_stream_id = 1;             // client: odd ids
  uint32_t last_peer_stream_id = 0;        // server: ids must increase
  // Client: streams the server lets us have open at once (its settings),
  // and those that wait for one of them to end, in id order.
  uint32_t peer_max_streams = UINT32_MAX;
  std::deque<ShmStream*> queued_streams;

  bool goaway_sent = false;  // server: no new streams; close when idle
  // Server: gRPC is accepting a stream (mu let go): the stream is not in
  // `streams` yet, but the transport is not idle.
  bool accepting_stream = false;
  bool goaway_received = false;  // client: no new streams on this transport
  bool closed = false;
  grpc_error_handle close_error;
  Poller* poller = nullptr;  // ConnectionPoller(), once started
  bool polling = false;      // registered with `poller`
  bool removal_posted = false;
  bool waiting_for_space = false;  // the poller was asked to wait for space

  // A thread is in Source::OnEvent's read loop (which lets go of mu while
  // gRPC accepts a stream): others leave the reading to it, setting
  // read_again so it goes round once more.
  bool reading = false;
  bool read_again = false;
  bool peer_hung_up = false;  // the liveness socket reported hang-up
  // Whether a thread that awaits the peer polls the ring before sleeping.
  SpinPolicy spin;

  // Idle trimming: once nothing has been written for kTrimAfterIdle, the
  // send ring's pages go back to the system (Connection::TrimIdleSendRing),
  // so a connection that once carried large messages does not keep their
  // memory. The timer is armed while writes happened since the last trim.
  grpc_timer trim_timer;
  grpc_closure on_trim_timer;
  bool trim_timer_armed = false;
  uint64_t flushes_seen = 0;  // outbound.flushes_that_wrote() at the last look
  grpc_core::Timestamp last_write;

  // Keepalive (keepalive.h): one timer, which either sends the next ping or
  // judges the last one, whose number is keepalive_seq.
  KeepaliveConfig keepalive;
  grpc_timer keepalive_timer;
  grpc_closure on_keepalive_timer;
  bool keepalive_timer_armed = false;
  bool keepalive_pinging = false;  // a ping is out; the timer is its deadline
  uint64_t keepalive_seq = 0;
  grpc_core::Timestamp keepalive_sent;

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
// After a flush: notes a write and arms the idle-trim timer if needed.
void NoteWritesLocked(ShmTransport* t);
// Asks the poller to look at the connection again soon (any thread).
void KickPollerLocked(ShmTransport* t);
// Fails every stream with `error` and hangs up. Idempotent.
void CloseLocked(ShmTransport* t, grpc_error_handle error);
// Tells the peer why (a goaway it may read) and closes: the peer broke a
// limit of the connection.
void CloseForPeerLocked(ShmTransport* t, grpc_status_code code, const std::string& why);
void MaybeFinishGracefulCloseLocked(ShmTransport* t);
// Called WITHOUT the lock by a thread whose call now awaits a frame from the
// peer: polls the receive ring for up to the spin budget (SpinPolicy), then
// reads what arrived as the poller would, so the awaited completion is ready
// when the thread would otherwise have gone to sleep.
void SpinForPeerFrames(ShmTransport* t);

// ---- keepalive.cc
// Arms the keepalive timer if keepalive is on (needs an ExecCtx).
void StartKeepaliveLocked(ShmTransport* t);
// Cancels it (CloseLocked).
void StopKeepaliveLocked(ShmTransport* t);

// ---- stream transitions (shm_transport.cc).
// Client: the stream's initial metadata is queued; it gets an id and opens,
// or waits in kQueued for the server's concurrency limit.
void OpenClientStreamLocked(ShmStream* s);
// Server: a stream the peer opened, accepted by gRPC.
void OpenServerStreamLocked(ShmStream* s);
// The stream leaves the wire (kClosed); on a client that frees a slot for
// a queued stream. May finish a graceful shutdown.
void CloseStreamLocked(ShmStream* s);

// ---- inbound.cc
// Reads the frames in the receive ring, at most `budget` of them, until
// reading must wait (ReadingBlockedLocked). Budget -1: every frame there,
// blocked or not (the peer has hung up, so the ring bounds it). Errors are
// the peer's fault and end the connection, never others.
ipc::Status ReadFramesLocked(ShmTransport* t, std::unique_lock<std::mutex>* lock, int budget,
                             bool* budget_spent);
// True while what the peer sent must wait: gRPC has too much unread, or we
// owe the peer too many frames it has not read.
bool ReadingBlockedLocked(const ShmTransport* t);
// Drops the stream's undelivered messages from the inbound accounting (and,
// if that resumes reading, kicks the poller).
void DropInboundLocked(ShmStream* s);
// gRPC took the stream's next message.
InboundMessage TakeMessageLocked(ShmStream* s);
// Client: applies the server's settings frame (its first frame).
ipc::Status ApplySettingsLocked(ShmTransport* t, const ipc::FrameHeader& header);
// Server: the settings frame announcing our limits.
void QueueSettingsLocked(ShmTransport* t);

// ---- stream_ops.cc
void PerformStreamOp(ShmTransport* t, ShmStream* s, grpc_transport_stream_op_batch* op);
// Completes whatever waiting receive ops the stream's state now allows.
void DeliverLocked(ShmStream* s);
// Our side cancels: tells the peer (trailers first on a server), fails ops.
void CancelStreamLocked(ShmStream* s, grpc_error_handle error);
// The peer reset the stream with `code`/`message` (`refused`: before the
// server saw it).
void OnPeerResetLocked(ShmStream* s, grpc_status_code code, const std::string& message,
                       bool refused);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_TRANSPORT_INTERNAL_H_
