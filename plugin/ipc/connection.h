// One shared-memory connection between a client and a server process: the
// mapped segment, a RingWriter for what we send, a RingReader for what we
// receive, our doorbell and the peer's, and the local socket that carried the
// handshake and now tells us when the peer dies (hang-up). With socket
// doorbells (the default) that socket is both doorbells as well, so a
// connection holds one descriptor: poll_handle() == liveness_handle().
//
// Threading: one thread at a time may use the writer side (TryWriteFrame,
// WriteFrame, NotifyPeerOfData), one thread at a time the reader side (Peek,
// Consume, NotifyPeerOfSpace), and at most one thread may wait (Wait or a
// poller on poll_handle()) at a time. The transport serves many connections
// from a few polling threads, one reader per connection at a time: it polls
// poll_handle() and liveness_handle(), then
// calls Drain(), empties the receive ring, and calls PrepareToSleep() before
// polling again.
#ifndef GRPC_SHM_IPC_CONNECTION_H_
#define GRPC_SHM_IPC_CONNECTION_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plugin/ipc/ring.h"
#include "plugin/ipc/segment_layout.h"
#include "plugin/ipc/status.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace ipc {

struct ConnectionOptions {
  // Requested bytes per ring direction; the server clamps it to its own limit
  // and to a power of two in [kMinRingBytes, kMaxRingBytes].
  uint32_t ring_bytes = kDefaultRingBytes;
  // How long Wait() polls the rings before it sleeps. 0 sleeps at once.
  std::chrono::nanoseconds spin{0};
  platform::SharedMemoryKind memory = platform::SharedMemoryKind::kMemfd;
  platform::DoorbellKind doorbell = platform::DoorbellKind::kSocket;
  std::chrono::milliseconds handshake_timeout{5000};
};

// The default backend of this platform (Linux: memfd + socket doorbells).
ConnectionOptions DefaultConnectionOptions();
// The portable POSIX backend (shm_open + socket doorbells).
ConnectionOptions PosixConnectionOptions();

class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Side side() const { return side_; }
  const platform::PeerCredentials& peer() const { return peer_; }
  uint32_t send_ring_bytes() const { return writer_.capacity(); }
  uint32_t receive_ring_bytes() const { return reader_.capacity(); }
  // Largest payload of one frame; bigger messages go as several chunks.
  size_t max_frame_payload() const { return writer_.max_frame_payload(); }

  // ---- writer side
  // Appends one frame if it fits now: kWouldBlock if not. Rings the peer's
  // doorbell only if the peer said it is sleeping on data.
  Status TryWriteFrame(const FrameHeader& header, const ConstByteSpan* parts, size_t num_parts);
  // Like TryWriteFrame but waits (spin, then sleep) for space until `deadline`.
  Status WriteFrame(const FrameHeader& header, const ConstByteSpan* parts, size_t num_parts,
                    Clock::time_point deadline = Clock::time_point::max());
  // Sends `size` bytes as kFrameMessage chunks (flags other than
  // kFlagMoreChunks apply to each chunk), waiting for space as it goes:
  // back-pressure, never a copy of the whole payload.
  Status WriteMessage(uint32_t stream_id, uint8_t flags, const uint8_t* data, size_t size,
                      Clock::time_point deadline = Clock::time_point::max());
  RingWriter& writer() { return writer_; }
  // After writing through writer() directly: wake the peer if it sleeps on data.
  void NotifyPeerOfData();
  // Gives the send ring's pages back to the system if the peer has consumed
  // everything we wrote, so that a connection that once carried large
  // messages costs no memory for them in either process while idle.
  // Returns the bytes given
  // back: 0 if frames are still unread, nothing was written since the last
  // trim (then it costs no system call), or the platform cannot (see
  // platform::ReleaseSharedPages). Writer side, like the writes.
  //
  // Safe against the reader by construction: only we write this ring, and a
  // reader that has consumed up to our write position looks at nothing but
  // the seal slot there until we seal a record in it; a seal slot on a
  // given-back page reads 0, which means "not written yet" (FrameSeal is
  // never 0), exactly as before. Meant for connections idle for a while
  // (the transport: about a second without traffic): the pages fault in
  // again, zero-filled, when written.
  size_t TrimIdleSendRing();

  // ---- reader side
  // Peeks the next frame. kWouldBlock when the ring is empty, after waking
  // the peer if it sleeps on space we freed; kPeerClosed instead once the
  // ring is empty and the doorbell has seen the peer hang up (socket
  // doorbells: a poller that only watches poll_handle() for readability
  // learns of the hang-up here, after the last frame).
  Status Peek(FrameView* frame);
  // Consumes the peeked frame. A peer sleeping on space is woken once a
  // quarter ring has been freed or the ring is drained (next Peek), not
  // after every frame: callers consume until Peek says kWouldBlock.
  void Consume();
  // Waits for the next frame until `deadline`, then peeks it.
  Status ReadFrame(FrameView* frame, Clock::time_point deadline = Clock::time_point::max());

  // ---- waiting
  // Spins (options.spin), then sleeps until one of the WaitBits conditions
  // holds (`space_needed` bytes of frame payload for kWaitingForSpace), the
  // peer dies, or `deadline` passes.
  Status Wait(uint32_t wait_bits, size_t space_needed, Clock::time_point deadline);
  // For pollers: announce that we are about to sleep on `wait_bits`. Returns
  // false (and announces nothing) if a condition already holds, in which case
  // the caller must not sleep.
  bool PrepareToSleep(uint32_t wait_bits, size_t space_needed = 0);
  // For pollers, after waking: clears the announcement and pending rings.
  void Drain();
  platform::NativeHandle poll_handle() const { return receiver_->poll_handle(); }

  // ---- watching for data from a thread that is not reading (a spin)
  // The seal of the next frame, non-zero once it has arrived. Take it where
  // the reader side may be used, then watch it from any thread until the
  // reader next consumes.
  const ring_internal::SealWord* NextFrameSeal() const { return reader_.NextSeal(); }
  // Withdraws the kWaitingForData announcement so the peer does not ring
  // while we watch the ring; PrepareToSleep again before sleeping.
  void StopWaitingForData() {
    own_wait_->bits.fetch_and(~static_cast<uint32_t>(kWaitingForData), std::memory_order_relaxed);
  }
  // Polls `seal` for at most `budget`: true once it is non-zero. With
  // `yield`, the CPU is offered to other runnable threads about every 3 us.
  static bool SpinForFrame(const ring_internal::SealWord* seal, std::chrono::nanoseconds budget,
                           bool yield = false);
  // ---- keepalive (segment_layout.h, KeepaliveWords)
  // Pings the peer: a new sequence number in our ping word and a ring of its
  // doorbell, whether it sleeps or not. Returns the number to wait for.
  uint64_t SendKeepalivePing();
  // Whether the peer has answered ping `seq` (or a later one).
  bool KeepalivePingAnswered(uint64_t seq) const;
  // Answers the peer's pings: for pollers, on every wake-up, whether or not
  // they read the ring. True if there was a new ping to answer.
  bool AnswerKeepalivePings();

  platform::NativeHandle liveness_handle() const { return socket_.get(); }
  // kPeerClosed once the peer has hung up or broke the protocol.
  Status CheckAlive();

  // Hangs up: the peer sees kPeerClosed. Idempotent.
  void Close();

 private:
  friend class ServerHandshake;
  friend Status Connect(const std::string&, const ConnectionOptions&, std::unique_ptr<Connection>*);

  Connection(Side side, const ConnectionOptions& options, uint32_t c2s_bytes, uint32_t s2c_bytes,
             platform::MappedRegion segment, platform::UniqueHandle socket,
             std::unique_ptr<platform::WakeReceiver> receiver,
             std::unique_ptr<platform::WakeSender> sender, platform::PeerCredentials peer);

  bool ConditionHolds(uint32_t wait_bits, size_t space_needed);
  // Wait() without the spin: announce, sleep, recheck, until a condition
  // holds, the peer dies or `deadline` passes.
  Status Sleep(uint32_t wait_bits, size_t space_needed, Clock::time_point deadline);
  void WakePeerIf(uint32_t bit);
  // The rare half of WakePeerIf: the peer sleeps; clear its bit and ring.
  void RingPeer(uint32_t bit);

  const Side side_;
  const ConnectionOptions options_;
  platform::MappedRegion segment_;
  platform::UniqueHandle socket_;
  std::unique_ptr<platform::WakeReceiver> receiver_;
  std::unique_ptr<platform::WakeSender> sender_;
  platform::PeerCredentials peer_;
  WaitWord* own_wait_;
  WaitWord* peer_wait_;
  KeepaliveWords* own_pings_;   // we ping, the peer answers
  KeepaliveWords* peer_pings_;  // the peer pings, we answer
  uint64_t pings_sent_ = 0;     // ours, never read back from shared memory
  RingWriter writer_;
  RingReader reader_;
  // Ring bytes consumed since we last looked whether the peer waits for
  // space (reader side only).
  size_t freed_since_space_check_ = 0;
  // Where the send ring's data starts in the segment, and our write
  // position at the last TrimIdleSendRing (writer side only).
  size_t send_data_offset_;
  uint64_t trimmed_at_pos_ = 0;
};

// Client side: connects to `address` (absolute path or "@abstract"), runs the
// handshake and returns a ready connection.
Status Connect(const std::string& address, const ConnectionOptions& options,
               std::unique_ptr<Connection>* connection);

class ServerHandshake;

// Server side: a listening socket. Accept() is safe to call from a poller
// when listen_handle() is readable.
class Listener {
 public:
  struct Options {
    // Upper bound for each ring; clients asking for more get this.
    uint32_t max_ring_bytes = kMaxRingBytes;
    std::chrono::milliseconds handshake_timeout{5000};
    int backlog = 128;
    // Spin budget of the server side of each connection (ConnectionOptions::spin).
    std::chrono::nanoseconds spin{0};
    // Backends that are unsafe against a hostile client are refused unless
    // enabled here. eventfd: the client shares the open file and can make
    // our reads and writes on it block. POSIX shm on Linux: the client can
    // ftruncate the segment and turn our next access into SIGBUS (memfd is
    // sealed against that; macOS refuses to resize shm objects).
    bool allow_eventfd = false;
    // Futex doorbells cannot be polled: a server that waits for its clients
    // with a poller (the gRPC transport) would never hear them ring, and
    // its calls would hang. Such a server refuses them at the handshake,
    // naming the doorbell, so the client fails at once instead.
    bool allow_futex = true;
    // Decides from the kernel-reported credentials whether a client may
    // connect, before any memory is set up for it; a refusal reaches the
    // client with the status's message. Empty: anyone who can open the
    // socket.
    std::function<Status(const platform::PeerCredentials&)> admit;
#ifdef _WIN32
    // Users or groups, as SID strings, that the named pipe's DACL admits
    // besides the server's own user (platform::ListenLocal). Windows checks
    // them when a client opens the pipe, before any handshake.
    std::vector<std::string> allowed_sids;
#endif
#ifdef __linux__
    bool allow_posix_shm = false;
#else
    bool allow_posix_shm = true;
#endif
  };
  static Status Listen(const std::string& address, const Options& options,
                       std::unique_ptr<Listener>* listener);
  ~Listener();

  platform::NativeHandle listen_handle() const { return socket_.get(); }
  const std::string& address() const { return address_; }

  // Takes one pending client socket: kWouldBlock if none. Cheap; the
  // handshake is separate so a slow client cannot hold the listener.
  Status AcceptSocket(platform::UniqueHandle* socket);
  // Runs the server half of the handshake on an accepted socket, bounded by
  // the handshake timeout. Any bad input ends in an error for this client
  // only (the client is told why when the socket still works).
  Status Handshake(platform::UniqueHandle socket, std::unique_ptr<Connection>* connection);
  // The same handshake for a poller: never blocks (see ServerHandshake). It
  // keeps a copy of the options and may outlive the listener.
  std::unique_ptr<ServerHandshake> BeginHandshake(platform::UniqueHandle socket) const;
  // AcceptSocket (waiting up to `timeout_ms`) + Handshake.
  Status Accept(std::unique_ptr<Connection>* connection, int timeout_ms = -1);

 private:
  Listener(std::string address, Options options, platform::UniqueHandle socket,
           platform::LocalSocketFile bound);
  const std::string address_;
  const Options options_;
  platform::UniqueHandle socket_;
  // The socket file we bound: removed at destruction only if the path still
  // names it.
  const platform::LocalSocketFile bound_;
};

// The server half of one handshake as a state machine that never waits, so
// that one poller can carry many handshakes at once and a client that
// connects and says nothing costs a registration, not a thread. Call
// Advance() whenever socket() is readable or hung up; once deadline() has
// passed, give up with TimedOut().
class ServerHandshake {
 public:
  ~ServerHandshake();
  ServerHandshake(const ServerHandshake&) = delete;
  ServerHandshake& operator=(const ServerHandshake&) = delete;

  platform::NativeHandle socket() const;
  Connection::Clock::time_point deadline() const;
  // kWouldBlock: waiting for the client. Ok: `connection` is set up and the
  // handshake is spent. Anything else: this client failed (it was told why
  // where the socket still works).
  Status Advance(std::unique_ptr<Connection>* connection);
  // What to report when deadline() passes first.
  Status TimedOut() const;

 private:
  friend class Listener;
  struct State;
  explicit ServerHandshake(std::unique_ptr<State> state);
  // Checks the hello, admits the client, creates the segment and doorbells
  // and sends them: the step between the two messages we wait for.
  Status AnswerHello();
  std::unique_ptr<State> state_;
};

// ---- inline hot paths (see ring.h for why).

// The waker's half of the sleep protocol. Our ring update (a release store)
// must be globally visible before we look at the peer's wait word, and the
// peer sets its word before re-checking our ring: the seq_cst fence on both
// sides is what makes "peer sleeps forever on a non-empty ring" impossible.
inline void Connection::WakePeerIf(uint32_t bit) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if ((peer_wait_->bits.load(std::memory_order_relaxed) & bit) != 0) RingPeer(bit);
}

inline void Connection::NotifyPeerOfData() { WakePeerIf(kWaitingForData); }

inline Status Connection::TryWriteFrame(const FrameHeader& header, const ConstByteSpan* parts,
                                        size_t num_parts) {
  Status s = writer_.TryWrite(header, parts, num_parts);
  if (s.ok()) NotifyPeerOfData();
  return s;
}

inline Status Connection::Peek(FrameView* frame) {
  Status s = reader_.Peek(frame);
  if (s.code() != StatusCode::kWouldBlock) return s;
  // Drained: settle the space we freed without telling the peer yet.
  if (freed_since_space_check_ != 0) {
    freed_since_space_check_ = 0;
    WakePeerIf(kWaitingForSpace);
  }
  if (receiver_->PeerHungUp()) return Status(StatusCode::kPeerClosed, "peer hung up");
  return s;
}

// A peer blocked on space has a nearly full ring in front of us, so we are
// sure to consume a quarter ring or drain it soon; checking only then saves
// a full fence per frame on the reader's hot path.
inline void Connection::Consume() {
  freed_since_space_check_ += reader_.Consume();
  if (freed_since_space_check_ >= reader_.capacity() / 4) {
    freed_since_space_check_ = 0;
    WakePeerIf(kWaitingForSpace);
  }
}

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_CONNECTION_H_
