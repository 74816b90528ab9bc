// Connection set-up over the local socket: Connect() (client) and Listener
// (server). The server creates the shared segment and both doorbells, so a
// hostile client can never hand the server memory it could later shrink
// (SIGBUS) or remap; the client checks what it receives before mapping it.
// With socket doorbells the handshake socket itself becomes both doorbells,
// so only the segment travels; eventfd doorbells travel as two more handles.
#include <algorithm>
#include <cstring>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/handshake_format.h"

namespace grpc_shm {
namespace ipc {
namespace {

using platform::DoorbellKind;
using platform::SharedMemoryKind;
using platform::UniqueHandle;

int TimeoutMs(std::chrono::milliseconds ms) { return static_cast<int>(ms.count()); }

uint32_t RoundDownToPowerOfTwo(uint32_t v) {
  uint32_t p = 1;
  while (p <= v / 2) p <<= 1;
  return p;
}

uint32_t ClampRingBytes(uint32_t requested, uint32_t server_max) {
  uint32_t limit = std::min(std::max(server_max, kMinRingBytes), kMaxRingBytes);
  uint32_t v = std::min(std::max(requested, kMinRingBytes), limit);
  return RoundDownToPowerOfTwo(v);
}

bool IsKnownMemoryKind(uint32_t v) {
#ifdef _WIN32
  if (v == static_cast<uint32_t>(SharedMemoryKind::kSection)) return true;
#endif
  return v == static_cast<uint32_t>(SharedMemoryKind::kMemfd) ||
         v == static_cast<uint32_t>(SharedMemoryKind::kPosixShm);
}
bool IsKnownDoorbellKind(uint32_t v) {
#ifdef _WIN32
  if (v == static_cast<uint32_t>(DoorbellKind::kEvent)) return true;
#endif
  return v == static_cast<uint32_t>(DoorbellKind::kEventFd) ||
         v == static_cast<uint32_t>(DoorbellKind::kFutex) ||
         v == static_cast<uint32_t>(DoorbellKind::kSocket);
}

// Doorbells the server creates and hands over: eventfd, and Windows events.
bool BellsTravel(DoorbellKind kind) {
#ifdef _WIN32
  if (kind == DoorbellKind::kEvent) return true;
#endif
  return kind == DoorbellKind::kEventFd;
}

// The segment, and for travelling doorbells the client's wait end and the
// server's ring end.
size_t HandlesFor(DoorbellKind kind) { return BellsTravel(kind) ? 3 : 1; }

// The doorbells of one side: on the connection's socket, from the handles
// received, or (futex) the wait words alone.
void MakeDoorbells(DoorbellKind kind, platform::NativeHandle socket, UniqueHandle wait,
                   UniqueHandle ring, std::unique_ptr<platform::WakeReceiver>* receiver,
                   std::unique_ptr<platform::WakeSender>* sender) {
  if (kind == DoorbellKind::kSocket) {
    *receiver = platform::MakeSocketWakeReceiver(socket);
    *sender = platform::MakeSocketWakeSender(socket);
  } else {
    *receiver = platform::MakeWakeReceiver(kind, std::move(wait));
    *sender = platform::MakeWakeSender(kind, std::move(ring));
  }
}

// Tells the client why it was refused; best effort, the socket may be dead.
void Refuse(platform::NativeHandle socket, const Status& why, int timeout_ms) {
  ServerHello reply{};
  reply.magic = kHelloMagic;
  reply.version = kProtocolVersion;
  reply.status = static_cast<uint32_t>(why.code());
  std::strncpy(reply.message, why.message().c_str(), sizeof(reply.message) - 1);
  (void)platform::SendMessage(socket, &reply, sizeof(reply), {}, timeout_ms);
}

}  // namespace

Status Connect(const std::string& address, const ConnectionOptions& options,
               std::unique_ptr<Connection>* connection) {
  if (!platform::IsSupported(options.memory) || !platform::IsSupported(options.doorbell)) {
    return Status(StatusCode::kInvalidArgument, "backend not supported on this platform");
  }
  const int timeout = TimeoutMs(options.handshake_timeout);
  UniqueHandle socket;
  Status s = platform::ConnectLocal(address, timeout, &socket);
  if (!s.ok()) return Status(s.code(), "cannot reach " + address + ": " + s.message());

  ClientHello hello{};
  hello.magic = kHelloMagic;
  hello.version = kProtocolVersion;
  hello.memory_kind = static_cast<uint32_t>(options.memory);
  hello.doorbell_kind = static_cast<uint32_t>(options.doorbell);
  hello.c2s_bytes = options.ring_bytes;
  hello.s2c_bytes = options.ring_bytes;
  s = platform::SendMessage(socket.get(), &hello, sizeof(hello), {}, timeout);
  if (!s.ok()) return s;

  ServerHello reply;
  std::vector<UniqueHandle> handles;
  s = platform::ReceiveMessage(socket.get(), &reply, sizeof(reply), 3, &handles, timeout);
  if (!s.ok()) return Status(s.code(), "handshake with " + address + ": " + s.message());
  reply.message[sizeof(reply.message) - 1] = '\0';
  if (reply.magic != kHelloMagic) {
    return Status(StatusCode::kProtocol, address + " is not a grpc-shm server (bad magic)");
  }
  if (reply.status != 0) {
    return Status(StatusCode::kProtocol,
                  "server refused the connection: " + std::string(reply.message));
  }
  if (reply.version != kProtocolVersion) {
    return Status(StatusCode::kProtocol,
                  "server speaks protocol version " + std::to_string(reply.version));
  }
  if (reply.memory_kind != hello.memory_kind || reply.doorbell_kind != hello.doorbell_kind ||
      !IsValidRingSize(reply.c2s_bytes) || !IsValidRingSize(reply.s2c_bytes) ||
      reply.num_handles != handles.size() || handles.size() != HandlesFor(options.doorbell)) {
    return Status(StatusCode::kProtocol, "server reply does not match the request");
  }
  SegmentLayout layout{reply.c2s_bytes, reply.s2c_bytes};
  platform::MappedRegion segment;
  s = platform::MapSharedMemory(options.memory, handles[0].get(), layout.total_bytes(), &segment);
  if (!s.ok()) return s;

  // The segment's descriptor is closed once mapped (handles go out of
  // scope): the mapping keeps the memory, and a descriptor per connection
  // would count against the process's limit for nothing.
  std::unique_ptr<platform::WakeReceiver> receiver;
  std::unique_ptr<platform::WakeSender> sender;
  const bool has_bells = handles.size() == 3;
  MakeDoorbells(options.doorbell, socket.get(), has_bells ? std::move(handles[1]) : UniqueHandle(),
                has_bells ? std::move(handles[2]) : UniqueHandle(), &receiver, &sender);

  ClientReady ready{kReadyMagic, 0};
  s = platform::SendMessage(socket.get(), &ready, sizeof(ready), {}, timeout);
  if (!s.ok()) return s;

  platform::PeerCredentials peer;
  s = platform::GetPeerCredentials(socket.get(), &peer);
  if (!s.ok()) return s;
  connection->reset(new Connection(Side::kClient, options, reply.c2s_bytes, reply.s2c_bytes,
                                   std::move(segment), std::move(socket), std::move(receiver),
                                   std::move(sender), peer));
  return Status::Ok();
}

Listener::Listener(std::string address, Options options, UniqueHandle socket,
                   platform::LocalSocketFile bound)
    : address_(std::move(address)), options_(options), socket_(std::move(socket)), bound_(bound) {}

Listener::~Listener() {
  socket_.reset();
  // Not UnlinkLocal(address_): the path may be another server's by now.
  platform::UnlinkLocal(address_, bound_);
}

Status Listener::Listen(const std::string& address, const Options& options,
                        std::unique_ptr<Listener>* listener) {
  UniqueHandle socket;
  platform::LocalSocketFile bound;
#ifdef _WIN32
  Status s = platform::ListenLocal(address, options.backlog, options.allowed_sids, &socket, &bound);
#else
  Status s = platform::ListenLocal(address, options.backlog, &socket, &bound);
#endif
  if (!s.ok()) return s;
  listener->reset(new Listener(address, options, std::move(socket), bound));
  return Status::Ok();
}

Status Listener::AcceptSocket(UniqueHandle* socket) {
  return platform::AcceptLocal(socket_.get(), socket);
}

Status Listener::Accept(std::unique_ptr<Connection>* connection, int timeout_ms) {
  UniqueHandle socket;
  for (;;) {
    Status s = AcceptSocket(&socket);
    if (s.ok()) break;
    if (s.code() != StatusCode::kWouldBlock) return s;
    // A listening socket becomes readable when a connection is pending.
    s = platform::WaitReadable(socket_.get(), timeout_ms);
    if (!s.ok()) return s;
  }
  return Handshake(std::move(socket), connection);
}

struct ServerHandshake::State {
  State(const Listener::Options& listener_options, UniqueHandle client)
      : options(listener_options),
        socket(std::move(client)),
        deadline(Connection::Clock::now() + listener_options.handshake_timeout),
        receiver(std::make_unique<platform::MessageReceiver>(&hello, sizeof(hello), 0)) {}

  enum class Step { kHello, kReady, kDone };
  const Listener::Options options;
  UniqueHandle socket;
  const Connection::Clock::time_point deadline;
  Step step = Step::kHello;
  ClientHello hello{};
  ClientReady ready{};
  std::unique_ptr<platform::MessageReceiver> receiver;  // of the message we wait for
  // Set up by AnswerHello for the connection.
  SharedMemoryKind memory = SharedMemoryKind::kMemfd;
  DoorbellKind doorbell = DoorbellKind::kSocket;
  SegmentLayout layout;
  platform::PeerCredentials peer;
  platform::MappedRegion segment;
  platform::DoorbellHandles client_bell, server_bell;
};

std::unique_ptr<ServerHandshake> Listener::BeginHandshake(UniqueHandle socket) const {
  return std::unique_ptr<ServerHandshake>(
      new ServerHandshake(std::make_unique<ServerHandshake::State>(options_, std::move(socket))));
}

Status Listener::Handshake(UniqueHandle socket, std::unique_ptr<Connection>* connection) {
  std::unique_ptr<ServerHandshake> handshake = BeginHandshake(std::move(socket));
  for (;;) {
    Status s = handshake->Advance(connection);
    if (s.code() != StatusCode::kWouldBlock) return s;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(handshake->deadline() -
                                                                   Connection::Clock::now());
    if (left.count() <= 0) return handshake->TimedOut();
    s = platform::WaitReadable(handshake->socket(), static_cast<int>(left.count()));
    if (s.code() == StatusCode::kTimeout) return handshake->TimedOut();
    if (!s.ok()) return s;
  }
}

ServerHandshake::ServerHandshake(std::unique_ptr<State> state) : state_(std::move(state)) {}
ServerHandshake::~ServerHandshake() = default;

platform::NativeHandle ServerHandshake::socket() const { return state_->socket.get(); }
Connection::Clock::time_point ServerHandshake::deadline() const { return state_->deadline; }

Status ServerHandshake::TimedOut() const {
  const std::string what = "timed out waiting for the client";
  return state_->step == State::Step::kReady
             ? Status(StatusCode::kTimeout, "client did not confirm the handshake: " + what)
             : Status(StatusCode::kTimeout, "client handshake: " + what);
}

Status ServerHandshake::Advance(std::unique_ptr<Connection>* connection) {
  State& st = *state_;
  if (st.step == State::Step::kHello) {
    Status s = st.receiver->Receive(st.socket.get());
    if (s.code() == StatusCode::kWouldBlock) return s;
    if (!s.ok()) {
      st.step = State::Step::kDone;
      if (s.code() == StatusCode::kProtocol) Refuse(st.socket.get(), s, 0);
      return Status(s.code(), "client handshake: " + s.message());
    }
    s = AnswerHello();
    if (!s.ok()) {
      st.step = State::Step::kDone;
      return s;
    }
    st.step = State::Step::kReady;
    st.receiver = std::make_unique<platform::MessageReceiver>(&st.ready, sizeof(st.ready), 0);
  }
  if (st.step != State::Step::kReady) {
    return Status(StatusCode::kInvalidArgument, "handshake already finished");
  }
  Status s = st.receiver->Receive(st.socket.get());
  if (s.code() == StatusCode::kWouldBlock) return s;
  st.step = State::Step::kDone;
  if (!s.ok()) return Status(s.code(), "client did not confirm the handshake: " + s.message());
  if (st.ready.magic != kReadyMagic) {
    return Status(StatusCode::kProtocol, "client sent a bad handshake confirmation");
  }
  ConnectionOptions options;
  options.memory = st.memory;
  options.doorbell = st.doorbell;
  options.handshake_timeout = st.options.handshake_timeout;
  options.spin = st.options.spin;
  std::unique_ptr<platform::WakeReceiver> receiver;
  std::unique_ptr<platform::WakeSender> sender;
  MakeDoorbells(st.doorbell, st.socket.get(), std::move(st.server_bell.wait),
                std::move(st.client_bell.ring), &receiver, &sender);
  connection->reset(new Connection(Side::kServer, options, st.layout.c2s_bytes, st.layout.s2c_bytes,
                                   std::move(st.segment), std::move(st.socket), std::move(receiver),
                                   std::move(sender), st.peer));
  return Status::Ok();
}

Status ServerHandshake::AnswerHello() {
  State& st = *state_;
  const ClientHello& hello = st.hello;
  const platform::NativeHandle socket = st.socket.get();
  // Nothing here waits on the client: a refusal or the answer is one small
  // message into an empty socket buffer.
  constexpr int kNoWait = 0;
  Status bad;
  if (hello.magic != kHelloMagic) {
    bad = Status(StatusCode::kProtocol, "not a grpc-shm client (bad magic)");
  } else if (hello.version != kProtocolVersion) {
    bad = Status(StatusCode::kProtocol, "unsupported protocol version " +
                                            std::to_string(hello.version) + " (server speaks " +
                                            std::to_string(kProtocolVersion) + ")");
  } else if (!IsKnownMemoryKind(hello.memory_kind) || !IsKnownDoorbellKind(hello.doorbell_kind) ||
             !platform::IsSupported(static_cast<SharedMemoryKind>(hello.memory_kind)) ||
             !platform::IsSupported(static_cast<DoorbellKind>(hello.doorbell_kind))) {
    bad = Status(StatusCode::kProtocol, "unsupported shared memory or doorbell kind");
  }
  if (bad.ok() && hello.doorbell_kind == static_cast<uint32_t>(DoorbellKind::kEventFd) &&
      !st.options.allow_eventfd) {
    bad = Status(StatusCode::kProtocol,
                 "eventfd doorbells are not enabled on this server; use socket or futex");
  }
  if (bad.ok() && hello.doorbell_kind == static_cast<uint32_t>(DoorbellKind::kFutex) &&
      !st.options.allow_futex) {
    bad = Status(StatusCode::kProtocol,
                 "futex doorbells cannot be polled by this server; use socket doorbells");
  }
  if (bad.ok() && hello.memory_kind == static_cast<uint32_t>(SharedMemoryKind::kPosixShm) &&
      !st.options.allow_posix_shm) {
    bad = Status(StatusCode::kProtocol,
                 "POSIX shared memory is not enabled on this server; use memfd");
  }
  if (!bad.ok()) {
    Refuse(socket, bad, kNoWait);
    return bad;
  }
  st.memory = static_cast<SharedMemoryKind>(hello.memory_kind);
  st.doorbell = static_cast<DoorbellKind>(hello.doorbell_kind);
  st.layout = SegmentLayout{ClampRingBytes(hello.c2s_bytes, st.options.max_ring_bytes),
                            ClampRingBytes(hello.s2c_bytes, st.options.max_ring_bytes)};

  Status s = platform::GetPeerCredentials(socket, &st.peer);
  if (!s.ok()) return s;
  if (st.options.admit) {
    Status admitted = st.options.admit(st.peer);
    if (!admitted.ok()) {
      Refuse(socket, admitted, kNoWait);
      return admitted;
    }
  }

  UniqueHandle segment_handle;
  s = platform::CreateSharedMemory(st.memory, st.layout.total_bytes(), &segment_handle,
                                   &st.segment);
  if (!s.ok()) {
    Refuse(socket, s, kNoWait);
    return s;
  }
  auto* header = reinterpret_cast<SegmentHeader*>(st.segment.data());
  header->magic = kSegmentMagic;
  header->version = kProtocolVersion;
  header->c2s_bytes = st.layout.c2s_bytes;
  header->s2c_bytes = st.layout.s2c_bytes;

  if (BellsTravel(st.doorbell)) {
    s = platform::CreateDoorbell(st.doorbell, &st.client_bell);
    if (s.ok()) s = platform::CreateDoorbell(st.doorbell, &st.server_bell);
    if (!s.ok()) {
      Refuse(socket, s, kNoWait);
      return s;
    }
  }
  std::vector<platform::NativeHandle> to_send = {segment_handle.get()};
  if (BellsTravel(st.doorbell)) {
    to_send.push_back(st.client_bell.wait.get());
    to_send.push_back(st.server_bell.ring.get());
  }
  ServerHello reply{};
  reply.magic = kHelloMagic;
  reply.version = kProtocolVersion;
  reply.memory_kind = hello.memory_kind;
  reply.doorbell_kind = hello.doorbell_kind;
  reply.c2s_bytes = st.layout.c2s_bytes;
  reply.s2c_bytes = st.layout.s2c_bytes;
  reply.num_handles = static_cast<uint32_t>(to_send.size());
  s = platform::SendMessage(socket, &reply, sizeof(reply), to_send, kNoWait);
  // The client's ends are in flight (or the client is gone): ours to close,
  // and so is the segment's descriptor (segment_handle), now that it is
  // mapped and sent.
  st.client_bell.wait.reset();
  st.server_bell.ring.reset();
  return s;
}

}  // namespace ipc
}  // namespace grpc_shm
