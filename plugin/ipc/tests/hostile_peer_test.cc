// Hostile-peer tests of the IPC core. The hostile party never uses our
// Connect(): it speaks the handshake by hand (platform::ConnectLocal /
// SendMessage / ReceiveMessage with the structs of handshake_format.h), maps
// the segment itself and scribbles on the shared control blocks and ring
// data at the SegmentLayout offsets. The other side is the real code: a
// Listener + Connection on the server side, or ipc::Connect() facing a fake
// server. Every case asserts a clear status code and message, and that the
// survivor keeps working (the listener serves a well-behaved client next).
//
// Cross-process cases fork(); the child never returns into gtest (_exit).
// No sleeps are used for synchronisation: pipes, hang-ups and deadlines.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/ipc/handshake_format.h"
#include "plugin/ipc/ring.h"
#include "plugin/ipc/segment_layout.h"
#include "plugin/ipc/status.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace ipc {
namespace {

using platform::DoorbellKind;
using platform::SharedMemoryKind;
using platform::UniqueHandle;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kIoTimeoutMs = 5000;

// ------------------------------------------------------------------ helpers

std::string NewAddress() {
  static std::atomic<int> counter{0};
  return "@grpc-shm-hostile-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(Clock::now().time_since_epoch().count() % 1000000007);
}

int CountOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

::testing::AssertionResult HasCodeAndMessage(const Status& s, StatusCode code,
                                             const std::string& substring) {
  if (s.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeName(code) << ", got " << s.ToString();
  }
  if (s.message().find(substring) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "message of " << s.ToString() << " lacks \"" << substring << "\"";
  }
  return ::testing::AssertionSuccess();
}
#define EXPECT_STATUS(s, code, sub) EXPECT_TRUE(HasCodeAndMessage((s), (code), (sub)))
#define ASSERT_STATUS(s, code, sub) ASSERT_TRUE(HasCodeAndMessage((s), (code), (sub)))

struct Backend {
  const char* name;
  SharedMemoryKind memory;
  DoorbellKind doorbell;
};
const Backend kBackends[] = {
    {"MemfdEventFd", SharedMemoryKind::kMemfd, DoorbellKind::kEventFd},
    {"MemfdFutex", SharedMemoryKind::kMemfd, DoorbellKind::kFutex},
    {"PosixShmSocket", SharedMemoryKind::kPosixShm, DoorbellKind::kSocket},
    {"MemfdSocket", SharedMemoryKind::kMemfd, DoorbellKind::kSocket},
};

void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

size_t HandlesFor(DoorbellKind kind) { return kind == DoorbellKind::kFutex ? 1 : 3; }

ClientHello GoodHello(uint32_t ring_bytes = 4096,
                      SharedMemoryKind memory = SharedMemoryKind::kMemfd,
                      DoorbellKind doorbell = DoorbellKind::kEventFd) {
  ClientHello h{};
  h.magic = kHelloMagic;
  h.version = kProtocolVersion;
  h.memory_kind = static_cast<uint32_t>(memory);
  h.doorbell_kind = static_cast<uint32_t>(doorbell);
  h.c2s_bytes = ring_bytes;
  h.s2c_bytes = ring_bytes;
  return h;
}

ConnectionOptions OptionsFor(SharedMemoryKind memory, DoorbellKind doorbell) {
  ConnectionOptions o;
  o.memory = memory;
  o.doorbell = doorbell;
  o.ring_bytes = 8192;
  o.handshake_timeout = milliseconds(kIoTimeoutMs);
  return o;
}

std::unique_ptr<Listener> MakeListener(const std::string& address,
                                       milliseconds handshake_timeout = milliseconds(2000),
                                       uint32_t max_ring_bytes = kMaxRingBytes) {
  Listener::Options options;
  options.handshake_timeout = handshake_timeout;
  options.max_ring_bytes = max_ring_bytes;
  // Most cases attack every backend; DefaultListenerRefusesUnsafeBackends
  // checks that a listener left at its defaults refuses these two.
  options.allow_eventfd = true;
  options.allow_posix_shm = true;
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(address, options, &listener);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return listener;
}

// The hostile client: a socket, the server's reply and descriptors, and the
// segment mapped by hand.
struct RawClient {
  UniqueHandle socket;
  ServerHello reply{};
  std::vector<UniqueHandle> handles;
  platform::MappedRegion segment;
  SegmentLayout layout;

  RingControl* c2s() const {
    return reinterpret_cast<RingControl*>(segment.data() + SegmentLayout::kC2sControlOffset);
  }
  RingControl* s2c() const {
    return reinterpret_cast<RingControl*>(segment.data() + SegmentLayout::kS2cControlOffset);
  }
  WaitWord* client_wait() const {
    return reinterpret_cast<WaitWord*>(segment.data() + SegmentLayout::kClientWaitOffset);
  }
  WaitWord* server_wait() const {
    return reinterpret_cast<WaitWord*>(segment.data() + SegmentLayout::kServerWaitOffset);
  }
  uint8_t* c2s_data() const { return segment.data() + layout.c2s_data_offset(); }
  uint8_t* s2c_data() const { return segment.data() + layout.s2c_data_offset(); }
};

// Connects and sends `hello`; with `send_ready` also the ClientReady right
// behind it, so an in-process server can finish its half without a thread.
Status RawSendHello(const std::string& address, const ClientHello& hello, RawClient* raw,
                    bool send_ready) {
  Status s = platform::ConnectLocal(address, kIoTimeoutMs, &raw->socket);
  if (!s.ok()) return s;
  s = platform::SendMessage(raw->socket.get(), &hello, sizeof(hello), {}, kIoTimeoutMs);
  if (!s.ok() || !send_ready) return s;
  ClientReady ready{kReadyMagic, 0};
  return platform::SendMessage(raw->socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs);
}

// Receives the ServerHello and maps the segment by hand.
Status RawReceiveReply(RawClient* raw, SharedMemoryKind memory) {
  Status s = platform::ReceiveMessage(raw->socket.get(), &raw->reply, sizeof(raw->reply), 3,
                                      &raw->handles, kIoTimeoutMs);
  if (!s.ok()) return s;
  if (raw->reply.status != 0 || raw->handles.empty()) {
    return Status(StatusCode::kProtocol, "refused");
  }
  raw->layout = SegmentLayout{raw->reply.c2s_bytes, raw->reply.s2c_bytes};
  return platform::MapSharedMemory(memory, raw->handles[0].get(), raw->layout.total_bytes(),
                                   &raw->segment);
}

// A good in-process raw handshake against `listener`; returns the server's
// connection. The raw client then owns the segment.
void RawHandshake(Listener* listener, const std::string& address, RawClient* raw,
                  std::unique_ptr<Connection>* server, uint32_t ring_bytes = 4096,
                  SharedMemoryKind memory = SharedMemoryKind::kMemfd,
                  DoorbellKind doorbell = DoorbellKind::kEventFd) {
  ASSERT_TRUE(RawSendHello(address, GoodHello(ring_bytes, memory, doorbell), raw, true).ok());
  Status s = listener->Accept(server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = RawReceiveReply(raw, memory);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// Writes one record into a ring by hand (payload wrap handled byte-wise),
// advancing `*pos`. Only if `publish`: zeroes the next record's seal slot and
// then seals this one with `seal` (default: the right seal for `*pos`), as a
// RingWriter does.
void RawPutFrame(uint8_t* data, uint32_t capacity, uint64_t* pos, const FrameHeader& header,
                 const std::vector<uint8_t>& payload, bool publish,
                 size_t payload_bytes_to_write = SIZE_MAX, int seal = -1) {
  const uint32_t mask = capacity - 1;
  FrameHeader unsealed = header;
  unsealed.seal = 0;
  const uint8_t* h = reinterpret_cast<const uint8_t*>(&unsealed);
  for (size_t i = 0; i < sizeof(unsealed); ++i) data[(*pos + i) & mask] = h[i];
  const size_t n = std::min(payload.size(), payload_bytes_to_write);
  for (size_t i = 0; i < n; ++i) data[(*pos + kFrameHeaderSize + i) & mask] = payload[i];
  const uint64_t next = *pos + FrameRecordSize(header.payload_size);
  if (publish) {
    ring_internal::SealAt(data, mask, next)->store(0, std::memory_order_relaxed);
    ring_internal::SealAt(data, mask, *pos)
        ->store(seal < 0 ? FrameSeal(*pos) : static_cast<uint16_t>(seal),
                std::memory_order_release);
  }
  *pos = next;
}

std::vector<uint8_t> Pattern(size_t size, uint32_t seed) {
  std::vector<uint8_t> v(size);
  for (size_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 8));
  return v;
}

FrameHeader MessageHeader(uint32_t payload_size, uint32_t stream = 1, uint8_t flags = 0) {
  FrameHeader h{};
  h.payload_size = payload_size;
  h.stream_id = stream;
  h.type = kFrameMessage;
  h.flags = flags;
  return h;
}

Status ServerWrite(Connection* c, const std::vector<uint8_t>& payload, uint32_t stream = 1) {
  FrameHeader h = MessageHeader(0, stream);
  ConstByteSpan part{payload.data(), payload.size()};
  return c->TryWriteFrame(h, &part, 1);
}

std::vector<uint8_t> Payload(const FrameView& f) {
  std::vector<uint8_t> v(f.payload_size());
  f.CopyPayloadTo(v.data());
  return v;
}

Clock::time_point Deadline(int ms = kIoTimeoutMs) { return Clock::now() + milliseconds(ms); }

// ------------------------------------------------------------ child processes

void CloseInheritedFds(const std::vector<int>& keep) {
  std::vector<int> fds;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    const int own = ::dirfd(dir);
    while (dirent* e = ::readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      const int fd = std::atoi(e->d_name);
      if (fd > 2 && fd != own) fds.push_back(fd);
    }
    ::closedir(dir);
  }
  for (int fd : fds) {
    bool kept = false;
    for (int k : keep) kept |= (k == fd);
    if (!kept) ::close(fd);
  }
}

struct Child {
  pid_t pid = -1;
  int exit_fd = -1;  // read end of a pipe only the child writes: hangs up at exit
};

// Runs `body` in a forked child that keeps only stdio and `keep`; its return
// value becomes the exit status. Never returns into gtest in the child.
Child ForkChild(const std::function<int()>& body, std::vector<int> keep = {}) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    keep.push_back(p[1]);
    CloseInheritedFds(keep);
    int rc = 100;
    try {
      rc = body();
    } catch (...) {
      rc = 101;
    }
    ::_exit(rc);
  }
  ::close(p[1]);
  return {pid, p[0]};
}

// Waits for the child to exit within `timeout_ms` (SIGKILLs it if not);
// returns its exit code, or 1000 + signal, or -1 on timeout.
int WaitChild(Child* child, int timeout_ms = 10000) {
  if (child->pid <= 0) return -2;
  pollfd p = {child->exit_fd, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  const bool timed_out = n == 0;
  if (timed_out) ::kill(child->pid, SIGKILL);
  int status = 0;
  while (::waitpid(child->pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::close(child->exit_fd);
  child->pid = -1;
  if (timed_out) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return -3;
}

// Reads one byte from `fd` within `timeout_ms`: true if one came.
bool ReadByte(int fd, int timeout_ms, char* out = nullptr) {
  pollfd p = {fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  if (::read(fd, &c, 1) != 1) return false;
  if (out) *out = c;
  return true;
}

// The survivor check: a well-behaved client in another process, using the
// real Connect(), is accepted by the same listener and gets an echo.
void ExpectListenerServesChildClient(Listener* listener,
                                     SharedMemoryKind memory = SharedMemoryKind::kMemfd,
                                     DoorbellKind doorbell = DoorbellKind::kEventFd) {
  const std::string address = listener->address();
  Child child = ForkChild([&]() -> int {
    std::unique_ptr<Connection> c;
    if (!Connect(address, OptionsFor(memory, doorbell), &c).ok()) return 10;
    const std::vector<uint8_t> ping = Pattern(100, 7);
    if (!c->WriteMessage(3, 0, ping.data(), ping.size(), Deadline()).ok()) return 11;
    FrameView f;
    if (!c->ReadFrame(&f, Deadline()).ok()) return 12;
    if (f.header.stream_id != 3 || Payload(f) != Pattern(50, 9)) return 13;
    c->Consume();
    return 0;
  });
  ASSERT_GT(child.pid, 0);
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(server->peer().pid, child.pid);
  FrameView f;
  s = server->ReadFrame(&f, Deadline());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Payload(f), Pattern(100, 7));
  server->Consume();
  EXPECT_TRUE(ServerWrite(server.get(), Pattern(50, 9), 3).ok());
  EXPECT_EQ(WaitChild(&child), 0);
}

// The same, in-process (Connect on a thread): for handshake cases.
void ExpectListenerServesClient(Listener* listener) {
  std::unique_ptr<Connection> client;
  Status client_status;
  std::thread t([&] {
    client_status = Connect(listener->address(),
                            OptionsFor(SharedMemoryKind::kMemfd, DoorbellKind::kEventFd), &client);
  });
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  t.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(client_status.ok()) << client_status.ToString();
  const std::vector<uint8_t> ping = Pattern(33, 1);
  FrameHeader h = MessageHeader(0, 5);
  ConstByteSpan part{ping.data(), ping.size()};
  ASSERT_TRUE(client->TryWriteFrame(h, &part, 1).ok());
  FrameView f;
  s = server->ReadFrame(&f, Deadline());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Payload(f), ping);
  server->Consume();
}

// Receives the refusal the server sends a bad client.
void ExpectRefusal(RawClient* raw, StatusCode code, const std::string& substring) {
  ServerHello reply{};
  std::vector<UniqueHandle> handles;
  Status s =
      platform::ReceiveMessage(raw->socket.get(), &reply, sizeof(reply), 3, &handles, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(reply.magic, kHelloMagic);
  EXPECT_EQ(reply.status, static_cast<uint32_t>(code));
  EXPECT_TRUE(handles.empty());
  ASSERT_NE(std::memchr(reply.message, '\0', sizeof(reply.message)), nullptr);
  EXPECT_NE(std::string(reply.message).find(substring), std::string::npos) << reply.message;
}

// ================================================================ handshake

TEST(HostileHandshake, GarbageHelloIsRefusedWithProtocolError) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  std::mt19937 rng(1234);
  for (int round = 0; round < 20; ++round) {
    RawClient raw;
    uint8_t garbage[sizeof(ClientHello)];
    for (auto& b : garbage) b = static_cast<uint8_t>(rng());
    if (std::memcmp(garbage, &kHelloMagic, 4) == 0) garbage[0] ^= 1;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &raw.socket).ok());
    ASSERT_TRUE(
        platform::SendMessage(raw.socket.get(), garbage, sizeof(garbage), {}, kIoTimeoutMs).ok());
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "not a grpc-shm client (bad magic)");
    EXPECT_EQ(server, nullptr);
    ExpectRefusal(&raw, StatusCode::kProtocol, "bad magic");
  }
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, WrongVersionIsRefused) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  for (uint32_t version : {0u, kProtocolVersion - 1, kProtocolVersion + 1, 0xffffffffu}) {
    RawClient raw;
    ClientHello hello = GoodHello();
    hello.version = version;
    ASSERT_TRUE(RawSendHello(address, hello, &raw, true).ok());
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "unsupported protocol version " + std::to_string(version));
    ExpectRefusal(&raw, StatusCode::kProtocol,
                  "unsupported protocol version " + std::to_string(version));
  }
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, UnsupportedMemoryOrDoorbellKindIsRefused) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  const std::pair<uint32_t, uint32_t> kinds[] = {{0, 1}, {3, 1}, {0xffffffffu, 1},
                                                 {1, 0}, {1, 4}, {2, 0x80000000u}};
  for (const auto& k : kinds) {
    RawClient raw;
    ClientHello hello = GoodHello();
    hello.memory_kind = k.first;
    hello.doorbell_kind = k.second;
    ASSERT_TRUE(RawSendHello(address, hello, &raw, true).ok());
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "unsupported shared memory or doorbell kind");
    ExpectRefusal(&raw, StatusCode::kProtocol, "unsupported shared memory or doorbell kind");
  }
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, ClientThatClosesAtOnceIsPeerClosed) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  {
    UniqueHandle s;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &s).ok());
  }
  std::unique_ptr<Connection> server;
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kPeerClosed,
                "peer closed the socket during the handshake");
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, ShortHelloThenCloseIsPeerClosed) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  {
    UniqueHandle s;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &s).ok());
    ClientHello hello = GoodHello();
    ASSERT_TRUE(platform::SendMessage(s.get(), &hello, 10, {}, kIoTimeoutMs).ok());
  }
  std::unique_ptr<Connection> server;
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kPeerClosed,
                "peer closed the socket mid-message");
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, SilentClientTimesOutAndListenerAcceptsNextClient) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address, milliseconds(200));
  UniqueHandle silent;  // stays connected, says nothing
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &silent).ok());
  std::unique_ptr<Connection> server;
  // The handshake's own timeout (200 ms) ends it, not Accept's (5 s): the
  // message says which.
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kTimeout,
                "client handshake: timed out waiting for the client");
  // A client that sends half a hello and stalls is bounded the same way.
  UniqueHandle stalled;
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &stalled).ok());
  ClientHello hello = GoodHello();
  ASSERT_TRUE(platform::SendMessage(stalled.get(), &hello, 20, {}, kIoTimeoutMs).ok());
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kTimeout, "timed out");
  // A client that never confirms the handshake (no ClientReady).
  RawClient unconfirmed;
  ASSERT_TRUE(RawSendHello(address, GoodHello(), &unconfirmed, false).ok());
  EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kTimeout,
                "client did not confirm the handshake");
  ExpectListenerServesClient(listener.get());
}

// The poller's handshake: Advance() never waits, consumes what has arrived
// (so a level-triggered poller is not woken again by half a hello), and
// handshakes in different states progress independently.
TEST(HostileHandshake, PolledHandshakesNeverWaitAndProgressIndependently) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  auto accept_one = [&]() {
    UniqueHandle socket;
    for (;;) {
      Status s = listener->AcceptSocket(&socket);
      if (s.ok()) return listener->BeginHandshake(std::move(socket));
      EXPECT_EQ(s.code(), StatusCode::kWouldBlock) << s.ToString();
      EXPECT_TRUE(platform::WaitReadable(listener->listen_handle(), kIoTimeoutMs).ok());
    }
  };
  const ClientHello hello = GoodHello();
  const auto* hello_bytes = reinterpret_cast<const uint8_t*>(&hello);
  RawClient halting;  // sends half a hello, then (later) the rest
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &halting.socket).ok());
  ASSERT_TRUE(platform::SendMessage(halting.socket.get(), hello_bytes, 20, {}, kIoTimeoutMs).ok());
  auto halting_server = accept_one();
  UniqueHandle silent;
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &silent).ok());
  auto silent_server = accept_one();
  RawClient prompt;  // hello and confirmation at once
  ASSERT_TRUE(RawSendHello(address, hello, &prompt, true).ok());
  auto prompt_server = accept_one();

  std::unique_ptr<Connection> connection;
  EXPECT_EQ(halting_server->Advance(&connection).code(), StatusCode::kWouldBlock);
  EXPECT_EQ(platform::WaitReadable(halting_server->socket(), 0).code(), StatusCode::kTimeout)
      << "the half hello must have been consumed";
  EXPECT_EQ(silent_server->Advance(&connection).code(), StatusCode::kWouldBlock);
  Status s = prompt_server->Advance(&connection);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_NE(connection, nullptr);
  EXPECT_TRUE(RawReceiveReply(&prompt, SharedMemoryKind::kMemfd).ok());

  // The rest of the hello: the server answers and then waits for the
  // confirmation, again without blocking.
  ASSERT_TRUE(platform::SendMessage(halting.socket.get(), hello_bytes + 20, sizeof(hello) - 20, {},
                                    kIoTimeoutMs)
                  .ok());
  ASSERT_TRUE(platform::WaitReadable(halting_server->socket(), kIoTimeoutMs).ok());
  std::unique_ptr<Connection> halting_connection;
  EXPECT_EQ(halting_server->Advance(&halting_connection).code(), StatusCode::kWouldBlock);
  ASSERT_TRUE(RawReceiveReply(&halting, SharedMemoryKind::kMemfd).ok());
  ClientReady ready{kReadyMagic, 0};
  ASSERT_TRUE(
      platform::SendMessage(halting.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs).ok());
  ASSERT_TRUE(platform::WaitReadable(halting_server->socket(), kIoTimeoutMs).ok());
  s = halting_server->Advance(&halting_connection);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(halting_connection, nullptr);

  // The silent one is still waiting, until its own deadline.
  EXPECT_EQ(silent_server->Advance(&connection).code(), StatusCode::kWouldBlock);
  EXPECT_GT(silent_server->deadline(), Clock::now());
  EXPECT_STATUS(silent_server->TimedOut(), StatusCode::kTimeout, "client handshake: timed out");
}

TEST(HostileHandshake, BadOrFdCarryingClientReadyIsRejected) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  const int fds_before = CountOpenFds();
  {
    RawClient raw;
    ASSERT_TRUE(RawSendHello(address, GoodHello(), &raw, false).ok());
    ClientReady ready{0xdeadbeef, 0};
    ASSERT_TRUE(
        platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs).ok());
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "bad handshake confirmation");
  }
  {
    RawClient raw;
    ASSERT_TRUE(RawSendHello(address, GoodHello(), &raw, false).ok());
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ClientReady ready{kReadyMagic, 0};
    ASSERT_TRUE(
        platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {p[0], p[1]}, kIoTimeoutMs)
            .ok());
    ::close(p[0]);
    ::close(p[1]);
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "peer sent 2 descriptors, at most 0 allowed");
  }
  EXPECT_EQ(CountOpenFds(), fds_before);
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, HelloCarryingDescriptorsIsRejectedWithoutLeak) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  const int fds_before = CountOpenFds();
  {
    RawClient raw;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &raw.socket).ok());
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ClientHello hello = GoodHello();
    ASSERT_TRUE(
        platform::SendMessage(raw.socket.get(), &hello, sizeof(hello), {p[0], p[1]}, kIoTimeoutMs)
            .ok());
    ::close(p[0]);
    ::close(p[1]);
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "peer sent 2 descriptors, at most 0 allowed");
    ExpectRefusal(&raw, StatusCode::kProtocol, "descriptors");
  }
  EXPECT_EQ(CountOpenFds(), fds_before) << "descriptors sent with the hello leaked";
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, HelloCarryingTooManyDescriptorsIsRejectedWithoutLeak) {
  // More descriptors than the receive buffer holds (MSG_CTRUNC): SendMessage
  // refuses to send that many, so use sendmsg by hand.
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  const int fds_before = CountOpenFds();
  {
    RawClient raw;
    ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &raw.socket).ok());
    constexpr int kCount = 20;
    int fds[kCount];
    for (int i = 0; i < kCount; i += 2) ASSERT_EQ(::pipe2(fds + i, O_CLOEXEC), 0);
    ClientHello hello = GoodHello();
    iovec iov = {&hello, sizeof(hello)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))];
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(fds));
    std::memcpy(CMSG_DATA(c), fds, sizeof(fds));
    ASSERT_EQ(::sendmsg(raw.socket.get(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(hello)));
    for (int fd : fds) ::close(fd);
    std::unique_ptr<Connection> server;
    EXPECT_STATUS(listener->Accept(&server, kIoTimeoutMs), StatusCode::kProtocol,
                  "more descriptors than allowed");
    ExpectRefusal(&raw, StatusCode::kProtocol, "descriptors");
  }
  EXPECT_EQ(CountOpenFds(), fds_before) << "descriptors sent with the hello leaked";
  ExpectListenerServesClient(listener.get());
}

TEST(HostileHandshake, AbsurdRingSizesAreClampedToValidPowersOfTwo) {
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  auto small_listener_address = NewAddress();
  auto small_listener = MakeListener(small_listener_address, milliseconds(2000), 8192);
  struct Case {
    Listener* listener;
    const std::string* address;
    uint32_t c2s, s2c;
    uint32_t want_c2s, want_s2c;
  };
  const Case cases[] = {
      {listener.get(), &address, 0, 3, kMinRingBytes, kMinRingBytes},
      {listener.get(), &address, 1u << 31, 0xffffffffu, kMaxRingBytes, kMaxRingBytes},
      {listener.get(), &address, 5000, 65537, 4096, 65536},
      {listener.get(), &address, 4095, 1, kMinRingBytes, kMinRingBytes},
      {small_listener.get(), &small_listener_address, 1u << 20, 12345, 8192, 8192},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("c2s=" + std::to_string(c.c2s) + " s2c=" + std::to_string(c.s2c));
    RawClient raw;
    ClientHello hello = GoodHello();
    hello.c2s_bytes = c.c2s;
    hello.s2c_bytes = c.s2c;
    ASSERT_TRUE(RawSendHello(*c.address, hello, &raw, true).ok());
    std::unique_ptr<Connection> server;
    Status s = c.listener->Accept(&server, kIoTimeoutMs);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = RawReceiveReply(&raw, SharedMemoryKind::kMemfd);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(raw.reply.c2s_bytes, c.want_c2s);
    EXPECT_EQ(raw.reply.s2c_bytes, c.want_s2c);
    EXPECT_TRUE(IsValidRingSize(raw.reply.c2s_bytes));
    EXPECT_TRUE(IsValidRingSize(raw.reply.s2c_bytes));
    EXPECT_EQ(server->receive_ring_bytes(), c.want_c2s);
    EXPECT_EQ(server->send_ring_bytes(), c.want_s2c);
    auto* header = reinterpret_cast<SegmentHeader*>(raw.segment.data());
    EXPECT_EQ(header->magic, kSegmentMagic);
    // The connection works both ways, frames that wrap included.
    uint64_t pos = 0;
    for (uint32_t i = 0; i < 3; ++i) {
      const auto payload = Pattern(std::min<size_t>(c.want_c2s / 2 - 40, 100000), i);
      RawPutFrame(raw.c2s_data(), c.want_c2s, &pos,
                  MessageHeader(static_cast<uint32_t>(payload.size()), i + 1), payload, true);
      FrameView f;
      s = server->ReadFrame(&f, Deadline());
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(f.header.stream_id, i + 1);
      EXPECT_EQ(Payload(f), payload);
      server->Consume();
      EXPECT_EQ(raw.c2s()->read_pos.load(), pos);
    }
    const auto reply = Pattern(100, 3);
    ASSERT_TRUE(ServerWrite(server.get(), reply).ok());
    FrameHeader got;
    std::memcpy(&got, raw.s2c_data(), sizeof(got));
    EXPECT_EQ(got.payload_size, reply.size());
    EXPECT_EQ(std::memcmp(raw.s2c_data() + kFrameHeaderSize, reply.data(), reply.size()), 0);
  }
}

// ========================================= a fake server lies to Connect()

// A raw server: accepts one client, reads its hello, and answers with
// whatever `craft` builds. It keeps the socket open until the client hangs up
// so the client's verdict comes from validation, not from a hang-up.
class FakeServer {
 public:
  using Craft = std::function<void(const ClientHello&, ServerHello*, std::vector<UniqueHandle>*)>;

  explicit FakeServer(Craft craft) : address_(NewAddress()) {
    Status s = platform::ListenLocal(address_, 4, &listen_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    thread_ = std::thread([this, craft] { Run(craft); });
  }
  ~FakeServer() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& address() const { return address_; }

 private:
  void Run(const Craft& craft) {
    if (!platform::WaitReadable(listen_.get(), kIoTimeoutMs).ok()) return;
    UniqueHandle sock;
    if (!platform::AcceptLocal(listen_.get(), &sock).ok()) return;
    ClientHello hello{};
    std::vector<UniqueHandle> none;
    if (!platform::ReceiveMessage(sock.get(), &hello, sizeof(hello), 0, &none, kIoTimeoutMs).ok()) {
      return;
    }
    ServerHello reply{};
    std::vector<UniqueHandle> handles;
    craft(hello, &reply, &handles);
    if (reply.magic == 0xffffffffu) return;  // "hang up instead of answering"
    std::vector<platform::NativeHandle> raw;
    for (auto& h : handles) raw.push_back(h.get());
    (void)platform::SendMessage(sock.get(), &reply, sizeof(reply), raw, kIoTimeoutMs);
    handles.clear();  // our copies
    (void)platform::WaitForHangup(sock.get(), kIoTimeoutMs);
  }

  std::string address_;
  UniqueHandle listen_;
  std::thread thread_;
};

// What a real server would send for `hello`: a sealed memfd (or posix shm) of
// the right size and the doorbell descriptors.
void LegitReply(const ClientHello& hello, ServerHello* reply, std::vector<UniqueHandle>* handles,
                size_t segment_bytes_delta = 0) {
  const uint32_t ring = 4096;
  SegmentLayout layout{ring, ring};
  *reply = ServerHello{};
  reply->magic = kHelloMagic;
  reply->version = kProtocolVersion;
  reply->memory_kind = hello.memory_kind;
  reply->doorbell_kind = hello.doorbell_kind;
  reply->c2s_bytes = ring;
  reply->s2c_bytes = ring;
  UniqueHandle seg;
  platform::MappedRegion map;
  Status s = platform::CreateSharedMemory(static_cast<SharedMemoryKind>(hello.memory_kind),
                                          layout.total_bytes() + segment_bytes_delta, &seg, &map);
  EXPECT_TRUE(s.ok()) << s.ToString();
  handles->push_back(std::move(seg));
  const auto doorbell = static_cast<DoorbellKind>(hello.doorbell_kind);
  if (doorbell != DoorbellKind::kFutex) {
    platform::DoorbellHandles a, b;
    EXPECT_TRUE(platform::CreateDoorbell(doorbell, &a).ok());
    EXPECT_TRUE(platform::CreateDoorbell(doorbell, &b).ok());
    handles->push_back(std::move(a.wait));
    handles->push_back(std::move(b.ring));
  }
  reply->num_handles = static_cast<uint32_t>(handles->size());
}

struct LieCase {
  const char* name;
  SharedMemoryKind memory;
  DoorbellKind doorbell;
  FakeServer::Craft craft;
  StatusCode code;
  const char* message;
};

std::vector<LieCase> LieCases() {
  const auto memfd = SharedMemoryKind::kMemfd;
  const auto posix = SharedMemoryKind::kPosixShm;
  const auto efd = DoorbellKind::kEventFd;
  const auto pipe = DoorbellKind::kSocket;
  const auto futex = DoorbellKind::kFutex;
  return {
      {"HangsUpWithoutAnswer", memfd, efd,
       [](const ClientHello&, ServerHello* r, std::vector<UniqueHandle>*) {
         r->magic = 0xffffffffu;
       },
       StatusCode::kPeerClosed, "handshake with"},
      {"WrongMagic", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         r->magic = 0x12345678;
       },
       StatusCode::kProtocol, "is not a grpc-shm server (bad magic)"},
      {"Refusal", memfd, efd,
       [](const ClientHello&, ServerHello* r, std::vector<UniqueHandle>*) {
         r->magic = kHelloMagic;
         r->version = kProtocolVersion;
         r->status = static_cast<uint32_t>(StatusCode::kProtocol);
         std::strcpy(r->message, "not today");
       },
       StatusCode::kProtocol, "server refused the connection: not today"},
      {"RefusalWithUnterminatedMessageAndDescriptors", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         r->status = 1;
         std::memset(r->message, 'A', sizeof(r->message));
       },
       StatusCode::kProtocol, "server refused the connection: AAAA"},
      {"WrongVersion", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         r->version = 9;
       },
       StatusCode::kProtocol, "server speaks protocol version 9"},
      {"MismatchedMemoryKind", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         r->memory_kind = static_cast<uint32_t>(SharedMemoryKind::kPosixShm);
       },
       StatusCode::kProtocol, "server reply does not match the request"},
      {"MismatchedDoorbellKind", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         r->doorbell_kind = static_cast<uint32_t>(DoorbellKind::kSocket);
       },
       StatusCode::kProtocol, "server reply does not match the request"},
      {"InvalidRingSize", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         r->s2c_bytes = 5000;
       },
       StatusCode::kProtocol, "server reply does not match the request"},
      {"HugeRingSize", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         r->c2s_bytes = 1u << 31;
       },
       StatusCode::kProtocol, "server reply does not match the request"},
      {"HandleCountClaimsMoreThanSent", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         fds->pop_back();
       },
       StatusCode::kProtocol, "server reply does not match the request"},
      {"NoHandlesAtAll", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         fds->clear();
         r->num_handles = 0;
       },
       StatusCode::kProtocol, "server reply does not match the request"},
      {"FutexWithThreeHandles", memfd, futex,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         ClientHello as_eventfd = h;
         as_eventfd.doorbell_kind = static_cast<uint32_t>(DoorbellKind::kEventFd);
         LegitReply(as_eventfd, r, fds);
         r->doorbell_kind = h.doorbell_kind;
       },
       StatusCode::kProtocol, "server reply does not match the request"},
      {"TooManyHandles", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         int p[2];
         EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
         fds->emplace_back(p[0]);
         fds->emplace_back(p[1]);
         r->num_handles = 5;
       },
       StatusCode::kProtocol, "peer sent 5 descriptors, at most 3 allowed"},
      {"SegmentTooSmall", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds, static_cast<size_t>(-4096));
       },
       StatusCode::kProtocol, "shared segment is 8192 bytes, expected 12288"},
      {"SegmentTooLarge", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds, 4096);
       },
       StatusCode::kProtocol, "shared segment is 16384 bytes, expected 12288"},
      {"PosixSegmentTooSmall", posix, pipe,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds, static_cast<size_t>(-1));
       },
       StatusCode::kProtocol, "shared segment is 12287 bytes, expected 12288"},
      {"UnsealedMemfd", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         int fd = ::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
         EXPECT_GE(fd, 0);
         EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(SegmentLayout{4096, 4096}.total_bytes())), 0);
         (*fds)[0].reset(fd);
       },
       StatusCode::kProtocol, "shared segment is not sealed against resizing"},
      {"MemfdSealedOnlyAgainstGrowth", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         int fd = ::memfd_create("half-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
         EXPECT_GE(fd, 0);
         EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(SegmentLayout{4096, 4096}.total_bytes())), 0);
         EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), 0);
         (*fds)[0].reset(fd);
       },
       StatusCode::kProtocol, "shared segment is not sealed against resizing"},
      {"MemfdSealedAgainstWrites", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         int fd = ::memfd_create("write-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
         EXPECT_GE(fd, 0);
         EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(SegmentLayout{4096, 4096}.total_bytes())), 0);
         EXPECT_EQ(
             ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL), 0);
         (*fds)[0].reset(fd);
       },
       StatusCode::kSystem, "mmap"},
      {"SegmentIsNotMemoryAtAll", memfd, efd,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         LegitReply(h, r, fds);
         int p[2];
         EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
         ::close(p[1]);
         (*fds)[0].reset(p[0]);
       },
       StatusCode::kSystem, "F_GET_SEALS"},
  };
}

class HostileServer : public ::testing::TestWithParam<size_t> {};

TEST_P(HostileServer, ConnectRejectsTheLie) {
  const LieCase c = LieCases()[GetParam()];
  SCOPED_TRACE(c.name);
  const int fds_before = CountOpenFds();
  {
    FakeServer fake(c.craft);
    std::unique_ptr<Connection> client;
    ConnectionOptions options = OptionsFor(c.memory, c.doorbell);
    options.ring_bytes = 4096;
    Status s = Connect(fake.address(), options, &client);
    EXPECT_STATUS(s, c.code, c.message);
    EXPECT_EQ(client, nullptr);
    if (std::string(c.name) == "RefusalWithUnterminatedMessageAndDescriptors") {
      // The unterminated 96-byte message is cut at 95 characters.
      EXPECT_EQ(s.message().size(), std::string("server refused the connection: ").size() + 95);
    }
  }
  EXPECT_EQ(CountOpenFds(), fds_before) << "descriptors leaked";
}

INSTANTIATE_TEST_SUITE_P(Lies, HostileServer, ::testing::Range<size_t>(0, LieCases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::string(LieCases()[info.param].name);
                         });

// A hostile server hands the client a blocking, already-full pipe as the
// server's socket doorbell and marks itself as sleeping on data. The client
// must refuse it, or at least never hang ringing it.
TEST(HostileServerDoorbell, BlockingDoorbellDescriptorDoesNotHangTheClient) {
  const std::string address = NewAddress();
  UniqueHandle listen;
  ASSERT_TRUE(platform::ListenLocal(address, 4, &listen).ok());
  Child child = ForkChild(
      [&]() -> int {
        std::unique_ptr<Connection> c;
        ConnectionOptions options = OptionsFor(SharedMemoryKind::kMemfd, DoorbellKind::kSocket);
        options.ring_bytes = 4096;
        Status s = Connect(address, options, &c);
        if (!s.ok()) return 0;  // rejecting the lie is fine too
        const std::vector<uint8_t> payload = Pattern(10, 1);
        FrameHeader h = MessageHeader(0);
        ConstByteSpan part{payload.data(), payload.size()};
        (void)c->TryWriteFrame(h, &part, 1);  // rings the (hostile) doorbell
        return 0;
      },
      {});
  ASSERT_GT(child.pid, 0);
  ASSERT_TRUE(platform::WaitReadable(listen.get(), kIoTimeoutMs).ok());
  UniqueHandle sock;
  ASSERT_TRUE(platform::AcceptLocal(listen.get(), &sock).ok());
  ClientHello hello{};
  std::vector<UniqueHandle> none;
  ASSERT_TRUE(
      platform::ReceiveMessage(sock.get(), &hello, sizeof(hello), 0, &none, kIoTimeoutMs).ok());
  ServerHello reply{};
  std::vector<UniqueHandle> handles;
  LegitReply(hello, &reply, &handles);
  // Mark the "server" as sleeping on data so the client rings.
  {
    platform::MappedRegion map;
    ASSERT_TRUE(platform::MapSharedMemory(SharedMemoryKind::kMemfd, handles[0].get(),
                                          SegmentLayout{4096, 4096}.total_bytes(), &map)
                    .ok());
    reinterpret_cast<WaitWord*>(map.data() + SegmentLayout::kServerWaitOffset)
        ->bits.store(kWaitingForData);
  }
  // Replace the server doorbell's ring end by a full, blocking pipe.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  char junk[4096] = {};
  while (::write(p[1], junk, sizeof(junk)) > 0) {
  }
  ASSERT_EQ(::fcntl(p[1], F_SETFL, ::fcntl(p[1], F_GETFL) & ~O_NONBLOCK), 0);
  handles[2].reset(p[1]);
  UniqueHandle keep_read_end(p[0]);
  std::vector<platform::NativeHandle> raw;
  for (auto& h : handles) raw.push_back(h.get());
  ASSERT_TRUE(platform::SendMessage(sock.get(), &reply, sizeof(reply), raw, kIoTimeoutMs).ok());
  handles.clear();
  EXPECT_EQ(WaitChild(&child, 3000), 0)
      << "the client hung writing to a blocking doorbell descriptor supplied by the server";
}

// ============================== corrupt control blocks after a good handshake

class HostileRing : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = NewAddress();
    listener_ = MakeListener(address_);
    ASSERT_NO_FATAL_FAILURE(RawHandshake(listener_.get(), address_, &raw_, &server_, kRing));
    ASSERT_EQ(server_->receive_ring_bytes(), kRing);
    ASSERT_EQ(server_->send_ring_bytes(), kRing);
  }
  void TearDown() override {
    // The hostile connection is done with; the listener must serve the next
    // well-behaved client (another process, real Connect()).
    server_.reset();
    raw_ = RawClient();
    if (listener_ && !HasFatalFailure()) ExpectListenerServesChildClient(listener_.get());
  }

  // Publishes `n` good frames c2s; returns their payloads.
  std::vector<std::vector<uint8_t>> PutGoodFrames(int n, size_t size = 100) {
    std::vector<std::vector<uint8_t>> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(Pattern(size, static_cast<uint32_t>(i)));
      RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(static_cast<uint32_t>(size), 1),
                  out.back(), true);
    }
    return out;
  }
  void ReadGoodFrames(const std::vector<std::vector<uint8_t>>& frames) {
    for (const auto& want : frames) {
      FrameView f;
      Status s = server_->ReadFrame(&f, Deadline());
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(Payload(f), want);
      server_->Consume();
    }
  }
  // The server writes until something other than Ok comes back.
  Status ServerWriteUntilError(size_t payload = 200) {
    const auto data = Pattern(payload, 5);
    for (int i = 0; i < 1000; ++i) {
      Status s = ServerWrite(server_.get(), data);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  static constexpr uint32_t kRing = 4096;
  std::string address_;
  std::unique_ptr<Listener> listener_;
  RawClient raw_;
  std::unique_ptr<Connection> server_;
  uint64_t c2s_pos_ = 0;
};
constexpr uint32_t HostileRing::kRing;

TEST_F(HostileRing, WrongSealIsCorrupt) {
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(4), Pattern(4, 1), true, SIZE_MAX,
              FrameSeal(0) + 1);
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kCorrupt,
                "frame seal 32769 at position 0 is not the expected 32768");
}

TEST_F(HostileRing, SealOfAnotherPositionIsCorrupt) {
  // A seal that would be right one lap later (or one record earlier) is a
  // replayed or misplaced record, not the next one.
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(4), Pattern(4, 1), true, SIZE_MAX,
              FrameSeal(kRing));
  FrameView f;
  EXPECT_STATUS(server_->Peek(&f), StatusCode::kCorrupt, "frame seal");
}

TEST_F(HostileRing, StaleSealAfterGoodFramesIsCorrupt) {
  auto frames = PutGoodFrames(2);
  ASSERT_NO_FATAL_FAILURE(ReadGoodFrames(frames));
  const uint64_t read_pos = c2s_pos_;
  ASSERT_EQ(raw_.c2s()->read_pos.load(), read_pos);
  // The next slot sealed as if it were the record before.
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(8), Pattern(8, 1), true, SIZE_MAX,
              FrameSeal(read_pos - kFrameAlignment));
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kCorrupt,
                "frame seal " + std::to_string(FrameSeal(read_pos - kFrameAlignment)) +
                    " at position " + std::to_string(read_pos));
}

TEST_F(HostileRing, UnsealedFrameIsNotRead) {
  // Header and payload written, seal never stored: nothing to read yet.
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(16), Pattern(16, 1), false);
  FrameView f;
  EXPECT_EQ(server_->Peek(&f).code(), StatusCode::kWouldBlock);
  EXPECT_STATUS(server_->ReadFrame(&f, Clock::now() + milliseconds(50)), StatusCode::kTimeout,
                "deadline");
}

TEST_F(HostileRing, FrameLengthBeyondTheLargestFrameIsCorrupt) {
  // One byte more than a frame can carry in this ring (the ring minus this
  // header and the next record's seal slot).
  const uint32_t too_long = kRing - 2 * kFrameHeaderSize + 1;
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(too_long), Pattern(8, 1), true, 8);
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kCorrupt,
                "frame length 4065 exceeds the ring's largest frame (4064 bytes)");
}

TEST_F(HostileRing, FrameLengthLargerThanTheRingIsCorrupt) {
  auto frames = PutGoodFrames(1);
  // Then a sealed header claiming 4 GiB.
  RawPutFrame(raw_.c2s_data(), kRing, &c2s_pos_, MessageHeader(0xffffffffu), {}, true);
  ASSERT_NO_FATAL_FAILURE(ReadGoodFrames(frames));
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kCorrupt,
                "frame length 4294967295 exceeds the");
}

TEST_F(HostileRing, HeaderRewrittenAfterPeekIsNotTrustedTwice) {
  auto frames = PutGoodFrames(1, 64);
  FrameView f;
  ASSERT_TRUE(server_->ReadFrame(&f, Deadline()).ok());
  // The peer rewrites the length after the server validated it.
  FrameHeader evil = MessageHeader(0xfffffff0u);
  std::memcpy(raw_.c2s_data(), &evil, sizeof(evil));
  EXPECT_EQ(f.payload_size(), 64u);
  EXPECT_EQ(f.parts[0].size + f.parts[1].size, 64u);
  EXPECT_EQ(Payload(f), frames[0]);
  server_->Consume();
  EXPECT_EQ(raw_.c2s()->read_pos.load(), FrameRecordSize(64));
}

TEST_F(HostileRing, ReadPosAheadOfServerWritePosIsCorrupt) {
  raw_.s2c()->read_pos.store(4096);
  EXPECT_STATUS(ServerWriteUntilError(), StatusCode::kCorrupt,
                "ring read position 4096 is inconsistent with write position");
  size_t writable = 0;
  EXPECT_STATUS(server_->writer().WritableBytes(&writable), StatusCode::kCorrupt,
                "ring read position 4096");
}

TEST_F(HostileRing, UnalignedReadPosIsCorrupt) {
  ASSERT_TRUE(ServerWrite(server_.get(), Pattern(200, 1)).ok());
  raw_.s2c()->read_pos.store(12);
  EXPECT_STATUS(ServerWriteUntilError(), StatusCode::kCorrupt,
                "ring read position 12 is inconsistent with write position");
}

TEST_F(HostileRing, ReadPosGoingBackwardsIsCorrupt) {
  // Fill the ring; the server has then seen read position 0.
  EXPECT_EQ(ServerWriteUntilError().code(), StatusCode::kWouldBlock);
  const uint64_t full = server_->writer().write_pos();
  // The client "consumes" everything; the server's next write sees that.
  raw_.s2c()->read_pos.store(full);
  ASSERT_TRUE(ServerWrite(server_.get(), Pattern(200, 2)).ok());
  // Then it moves its read position back (still aligned, still within one
  // ring of the write position).
  raw_.s2c()->read_pos.store(full - 64);
  EXPECT_STATUS(ServerWriteUntilError(), StatusCode::kCorrupt,
                "ring read position " + std::to_string(full - 64) + " is inconsistent");
}

TEST_F(HostileRing, BytesOnTheLivenessSocketArePeerClosed) {
  const char byte = 'x';
  ASSERT_EQ(::send(raw_.socket.get(), &byte, 1, MSG_NOSIGNAL), 1);
  FrameView f;
  EXPECT_STATUS(server_->ReadFrame(&f, Deadline()), StatusCode::kPeerClosed,
                "unexpected bytes on the liveness socket");
  EXPECT_STATUS(server_->CheckAlive(), StatusCode::kPeerClosed, "unexpected bytes");
}

TEST_F(HostileRing, RandomScribblesNeverEscapeTheRing) {
  // Random control values and frame headers: every answer is a frame that
  // lies inside the receive ring, "empty", or kCorrupt; never a crash.
  std::mt19937_64 rng(42);
  for (int round = 0; round < 200; ++round) {
    RawClient raw;
    std::unique_ptr<Connection> server;
    ASSERT_NO_FATAL_FAILURE(RawHandshake(listener_.get(), address_, &raw, &server, kRing));
    for (int step = 0; step < 8; ++step) {
      for (int i = 0; i < 6; ++i) {
        const size_t off = rng() % kRing;
        raw.c2s_data()[off] = static_cast<uint8_t>(rng());
        if (rng() % 2) {
          uint32_t len = static_cast<uint32_t>(rng() % (2 * kRing));
          std::memcpy(raw.c2s_data() + (off & ~size_t{7}), &len, sizeof(len));
        }
      }
      // The seal the server looks at next: right, random, or zero.
      const uint64_t read_pos = raw.c2s()->read_pos.load();
      uint16_t seal;
      switch (rng() % 3) {
        case 0:
          seal = FrameSeal(read_pos);
          break;
        case 1:
          seal = static_cast<uint16_t>(rng());
          break;
        default:
          seal = 0;
          break;
      }
      ring_internal::SealAt(raw.c2s_data(), kRing - 1, read_pos)->store(seal);
      raw.s2c()->read_pos.store(rng() % 3 == 0 ? rng() : (rng() % (kRing / 16)) * 16);
      FrameView f;
      Status s = server->Peek(&f);
      if (s.ok()) {
        ASSERT_LE(f.payload_size(), kRing - 2 * kFrameHeaderSize);
        ASSERT_EQ(f.parts[0].size + f.parts[1].size, f.payload_size());
        std::vector<uint8_t> copy = Payload(f);  // in bounds, or ASan/SEGV says so
        (void)copy;
        server->Consume();
      } else {
        ASSERT_TRUE(s.code() == StatusCode::kWouldBlock || s.code() == StatusCode::kCorrupt)
            << s.ToString();
        if (s.code() == StatusCode::kCorrupt) break;
      }
      s = ServerWrite(server.get(), Pattern(rng() % 600, 1));
      ASSERT_TRUE(s.ok() || s.code() == StatusCode::kWouldBlock || s.code() == StatusCode::kCorrupt)
          << s.ToString();
      if (s.code() == StatusCode::kCorrupt) break;
    }
  }
}

// ======================== the peer's doorbell descriptors as a weapon

// With eventfd doorbells the server keeps one descriptor of each eventfd and
// hands the client a dup of it: both share one open file description, so
// the file status flags (O_NONBLOCK) are shared too. A hostile client that
// clears O_NONBLOCK on its copy turns the server's own "non-blocking" reads
// and writes into blocking ones. The server must never block on a doorbell:
// one stuck connection would stall the poller that serves all of them.
class HostileDoorbell : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    address_ = NewAddress();
    listener_ = MakeListener(address_);
    ASSERT_NO_FATAL_FAILURE(RawHandshake(listener_.get(), address_, &raw_, &server_, 4096,
                                         GetParam().memory, GetParam().doorbell));
    ASSERT_EQ(raw_.handles.size(), 3u);
  }
  static void ClearNonBlocking(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    ASSERT_GE(fl, 0);
    ASSERT_EQ(::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK), 0);
  }
  // Runs `op` on a thread; if it has not finished within `ms`, records a
  // failure, calls `unblock` (which must free the thread) and joins.
  static void ExpectFinishesWithin(int ms, const std::function<Status()>& op,
                                   const std::function<void()>& unblock, Status* result,
                                   const char* what) {
    std::promise<Status> done;
    std::future<Status> future = done.get_future();
    std::thread t([&] { done.set_value(op()); });
    if (future.wait_for(milliseconds(ms)) != std::future_status::ready) {
      ADD_FAILURE() << what;
      unblock();
    }
    t.join();
    *result = future.get();
  }

  std::string address_;
  std::unique_ptr<Listener> listener_;
  RawClient raw_;
  std::unique_ptr<Connection> server_;
};

TEST_P(HostileDoorbell, ClientClearingNonBlockOnServerBellCannotBlockServerDrain) {
  // handles[2] is the ring end of the server's own doorbell.
  ASSERT_NO_FATAL_FAILURE(ClearNonBlocking(raw_.handles[2].get()));
  Status s;
  ExpectFinishesWithin(
      3000,
      [&] {
        FrameView f;
        return server_->ReadFrame(&f, Clock::now() + milliseconds(200));
      },
      [&] {
        const uint64_t one = 1;  // makes the stuck read return
        (void)!::write(raw_.handles[2].get(), &one, sizeof(one));
      },
      &s,
      "server ReadFrame blocked in its doorbell Drain() after the client cleared O_NONBLOCK "
      "on the shared eventfd description");
  EXPECT_STATUS(s, StatusCode::kTimeout, "deadline passed");
}

TEST_P(HostileDoorbell, ClientSaturatingItsBellCannotBlockServerWrite) {
  // handles[1] is the wait end of the client's doorbell, which the server
  // rings whenever the client says it sleeps on data.
  const int bell = raw_.handles[1].get();
  ASSERT_NO_FATAL_FAILURE(ClearNonBlocking(bell));
  if (GetParam().doorbell == DoorbellKind::kEventFd) {
    const uint64_t max = 0xfffffffffffffffeull;  // one more would overflow
    ASSERT_EQ(::write(bell, &max, sizeof(max)), 8);
  }
  raw_.client_wait()->bits.store(kWaitingForData);
  Status s;
  ExpectFinishesWithin(
      3000, [&] { return ServerWrite(server_.get(), Pattern(10, 1)); },
      [&] {
        uint64_t v;  // resets the counter: the stuck write completes
        (void)!::read(bell, &v, sizeof(v));
      },
      &s,
      "server TryWriteFrame blocked ringing the client's doorbell after the client cleared "
      "O_NONBLOCK on the shared eventfd description and saturated its counter");
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// eventfd is refused by default listeners for exactly this reason (see
// DefaultListenerRefusesUnsafeBackends); the socket doorbell must hold.
INSTANTIATE_TEST_SUITE_P(Backends, HostileDoorbell, ::testing::Values(kBackends[3], kBackends[2]),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

// ================================ shrinking the shared segment under the server

// The server creates the segment so that a client cannot shrink it under the
// server (an access past the end of a shrunk file is SIGBUS, which kills the
// whole server). memfd is sealed against that. A client may also ask for the
// POSIX backend, whose descriptor has no seals: if it truncates it, the
// server must still survive. The server runs in a child process here, since
// the failure mode is a signal.
class SegmentShrink : public ::testing::TestWithParam<Backend> {};

TEST_P(SegmentShrink, ClientTruncatingTheSegmentCannotKillTheServer) {
  const Backend b = GetParam();
  const std::string address = NewAddress();
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  Child server = ForkChild(
      [&]() -> int {
        std::unique_ptr<Listener> listener;
        Listener::Options options;
        if (!Listener::Listen(address, options, &listener).ok()) return 40;
        const char l = 'L';
        if (::write(sp[1], &l, 1) != 1) return 41;
        std::unique_ptr<Connection> c;
        if (!listener->Accept(&c, kIoTimeoutMs).ok()) return 42;
        char go;
        if (!ReadByte(sp[1], kIoTimeoutMs, &go)) return 43;
        // Touch the rings: read what the client published, then write.
        FrameView f;
        (void)c->ReadFrame(&f, Clock::now() + milliseconds(200));
        (void)ServerWrite(c.get(), Pattern(100, 1));
        return 0;  // survived
      },
      {sp[1]});
  ::close(sp[1]);
  ASSERT_GT(server.pid, 0);
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs)) << "server did not start listening";
  RawClient raw;
  ASSERT_TRUE(RawSendHello(address, GoodHello(4096, b.memory, b.doorbell), &raw, false).ok());
  ASSERT_TRUE(RawReceiveReply(&raw, b.memory).ok());
  ClientReady ready{kReadyMagic, 0};
  ASSERT_TRUE(
      platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs).ok());
  // Publish a frame, then try to shrink the segment to nothing.
  uint64_t pos = 0;
  RawPutFrame(raw.c2s_data(), raw.reply.c2s_bytes, &pos, MessageHeader(8), Pattern(8, 1), true);
  const int truncated = ::ftruncate(raw.handles[0].get(), 0);
  if (b.memory == SharedMemoryKind::kMemfd) {
    EXPECT_NE(truncated, 0) << "memfd segment is not sealed against shrinking";
  }
  raw.segment = platform::MappedRegion();  // our mapping is past EOF now
  const char go = 'g';
  ASSERT_EQ(::send(sp[0], &go, 1, MSG_NOSIGNAL), 1);
  const int rc = WaitChild(&server);
  EXPECT_EQ(rc, 0) << (rc == 1000 + SIGBUS ? "the server died of SIGBUS: the client shrank the " +
                                                 std::string(b.name) + " segment under it"
                                           : "server child exit " + std::to_string(rc));
  ::close(sp[0]);
}

// POSIX shm cannot be sealed on Linux, so default listeners refuse it there.
INSTANTIATE_TEST_SUITE_P(Backends, SegmentShrink, ::testing::Values(kBackends[1], kBackends[3]),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

// ======================================= a doorbell nobody listens to any more

// With a pipe doorbell the client would hold the only read end of its doorbell.
// A client that closes it (or dies) while its wait word says "sleeping"
// makes the server's next ring a write to a pipe without readers: SIGPIPE,
// whose default action kills the whole server. The server runs in a child
// with the default SIGPIPE disposition, as a real server would.
TEST(HostileDoorbellPeerGone, ClosedDoorbellReadEndCannotKillTheServer) {
  const Backend b = kBackends[3];  // MemfdSocket
  const std::string address = NewAddress();
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  Child server = ForkChild(
      [&]() -> int {
        ::signal(SIGPIPE, SIG_DFL);
        std::unique_ptr<Listener> listener;
        if (!Listener::Listen(address, Listener::Options(), &listener).ok()) return 40;
        const char l = 'L';
        if (::write(sp[1], &l, 1) != 1) return 41;
        std::unique_ptr<Connection> c;
        if (!listener->Accept(&c, kIoTimeoutMs).ok()) return 42;
        char go;
        if (!ReadByte(sp[1], kIoTimeoutMs, &go)) return 43;
        FrameView f;
        if (!c->ReadFrame(&f, Deadline()).ok()) return 44;
        c->Consume();                                // rings "space" for the client
        (void)ServerWrite(c.get(), Pattern(10, 1));  // rings "data" for the client
        return 0;                                    // survived
      },
      {sp[1]});
  ::close(sp[1]);
  ASSERT_GT(server.pid, 0);
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs)) << "server did not start listening";
  RawClient raw;
  ASSERT_TRUE(RawSendHello(address, GoodHello(4096, b.memory, b.doorbell), &raw, false).ok());
  ASSERT_TRUE(RawReceiveReply(&raw, b.memory).ok());
  ASSERT_EQ(raw.handles.size(), 3u);
  ClientReady ready{kReadyMagic, 0};
  ASSERT_TRUE(
      platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs).ok());
  uint64_t pos = 0;
  RawPutFrame(raw.c2s_data(), raw.reply.c2s_bytes, &pos, MessageHeader(8), Pattern(8, 1), true);
  // "I sleep on data and on space", then drop the only read end of our bell.
  raw.client_wait()->bits.store(kWaitingForData | kWaitingForSpace);
  raw.handles[1].reset();
  const char go = 'g';
  ASSERT_EQ(::send(sp[0], &go, 1, MSG_NOSIGNAL), 1);
  const int rc = WaitChild(&server);
  EXPECT_EQ(rc, 0) << (rc == 1000 + SIGPIPE
                           ? std::string("the server died of SIGPIPE ringing a pipe doorbell "
                                         "whose read end the client closed")
                           : "server child exit " + std::to_string(rc));
  ::close(sp[0]);
}

// ==================================================== a peer dies mid-frame

class PeerDeath : public ::testing::TestWithParam<Backend> {
 protected:
  // A killed client may die while its wait word says "sleeping"; with the
  // pipe doorbell the server's next ring then raises SIGPIPE in this process
  // (see HostileDoorbellPeerGone, which exposes that bug on its own). Here
  // we test what the server reads, so SIGPIPE is ignored for the duration.
  void SetUp() override { old_sigpipe_ = ::signal(SIGPIPE, SIG_IGN); }
  void TearDown() override { ::signal(SIGPIPE, old_sigpipe_); }

 private:
  sighandler_t old_sigpipe_ = SIG_DFL;
};

// Child: hand-made handshake with the given backend; `body` then writes into
// the c2s ring; `ready_fd` receives one byte when the child has done its part.
Child ForkRawClient(const std::string& address, const Backend& b, int ready_fd,
                    const std::function<void(RawClient*)>& body) {
  return ForkChild(
      [&]() -> int {
        RawClient raw;
        if (!RawSendHello(address, GoodHello(4096, b.memory, b.doorbell), &raw, false).ok()) {
          return 20;
        }
        if (!RawReceiveReply(&raw, b.memory).ok()) return 21;
        if (raw.handles.size() != HandlesFor(b.doorbell)) return 22;
        ClientReady ready{kReadyMagic, 0};
        if (!platform::SendMessage(raw.socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs)
                 .ok()) {
          return 23;
        }
        body(&raw);
        const char c = 'r';
        if (::write(ready_fd, &c, 1) != 1) return 24;
        // Wait to be killed (or, if the parent went away, give up).
        char x;
        ReadByte(ready_fd, 30000, &x);
        return 25;
      },
      {ready_fd});
}

TEST_P(PeerDeath, HeaderWrittenButNotPublishedThenDeathIsPeerClosed) {
  const Backend b = GetParam();
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  Child child = ForkRawClient(address, b, sp[1], [](RawClient* raw) {
    uint64_t pos = 0;
    // A header (and half its payload) written, never sealed.
    RawPutFrame(raw->c2s_data(), raw->reply.c2s_bytes, &pos, MessageHeader(500), Pattern(500, 1),
                false, 250);
  });
  ::close(sp[1]);
  ASSERT_GT(child.pid, 0);
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs)) << "child did not write its header";
  FrameView f;
  EXPECT_EQ(server->Peek(&f).code(), StatusCode::kWouldBlock);
  ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
  const auto killed = Clock::now();
  s = server->ReadFrame(&f, Deadline());
  const auto detect = Clock::now() - killed;
  EXPECT_STATUS(s, StatusCode::kPeerClosed, "peer");
  EXPECT_LT(detect, milliseconds(1000));
  EXPECT_EQ(WaitChild(&child), 1000 + SIGKILL);
  EXPECT_EQ(server->Peek(&f).code(), StatusCode::kWouldBlock) << "garbage after death";
  EXPECT_STATUS(server->CheckAlive(), StatusCode::kPeerClosed, "peer hung up");
  ::close(sp[0]);
  server.reset();
  ExpectListenerServesChildClient(listener.get(), b.memory, b.doorbell);
}

TEST_P(PeerDeath, KilledMidChunkedMessageServerReadsPublishedChunksThenPeerClosed) {
  const Backend b = GetParam();
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  constexpr size_t kChunk = 1000;
  constexpr int kPublished = 3;
  Child child = ForkRawClient(address, b, sp[1], [](RawClient* raw) {
    uint64_t pos = 0;
    const uint32_t cap = raw->reply.c2s_bytes;
    // Three complete chunks of one message, published one by one...
    for (int i = 0; i < kPublished; ++i) {
      RawPutFrame(raw->c2s_data(), cap, &pos, MessageHeader(kChunk, 7, kFlagMoreChunks),
                  Pattern(kChunk, i), true);
    }
    // ...and a fourth one half written, never published.
    RawPutFrame(raw->c2s_data(), cap, &pos, MessageHeader(kChunk, 7, kFlagMoreChunks),
                Pattern(kChunk, 99), false, 300);
  });
  ::close(sp[1]);
  ASSERT_GT(child.pid, 0);
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs)) << "child did not write its chunks";
  // Read the first chunk while the peer is alive, then kill it.
  FrameView f;
  s = server->ReadFrame(&f, Deadline());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Payload(f), Pattern(kChunk, 0));
  server->Consume();
  ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(&child), 1000 + SIGKILL);
  for (int i = 1; i < kPublished; ++i) {
    s = server->ReadFrame(&f, Deadline());
    ASSERT_TRUE(s.ok()) << "published chunk " << i << ": " << s.ToString();
    EXPECT_EQ(f.header.stream_id, 7u);
    EXPECT_EQ(f.header.flags, kFlagMoreChunks);
    EXPECT_EQ(Payload(f), Pattern(kChunk, static_cast<uint32_t>(i)));
    server->Consume();
  }
  s = server->ReadFrame(&f, Deadline());
  EXPECT_STATUS(s, StatusCode::kPeerClosed, "peer");
  EXPECT_EQ(server->Peek(&f).code(), StatusCode::kWouldBlock) << "garbage after death";
  ::close(sp[0]);
  server.reset();
  ExpectListenerServesChildClient(listener.get(), b.memory, b.doorbell);
}

TEST_P(PeerDeath, RealClientKilledWhileBlockedInChunkedWriteLeavesOnlyWholeChunks) {
  // A real client (Connect + WriteMessage) sends a message four times the
  // ring; the server reads a little, then the client is SIGKILLed while it
  // waits for space. Everything the server reads is whole chunks of the
  // message, in order, then kPeerClosed.
  const Backend b = GetParam();
  const std::string address = NewAddress();
  auto listener = MakeListener(address);
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  const size_t kMessage = 4 * 8192;
  const auto message = Pattern(kMessage, 77);
  Child child = ForkChild(
      [&]() -> int {
        std::unique_ptr<Connection> c;
        if (!Connect(address, OptionsFor(b.memory, b.doorbell), &c).ok()) return 30;
        const char go = 'g';
        if (::write(sp[1], &go, 1) != 1) return 31;
        (void)c->WriteMessage(9, 0, message.data(), message.size(), Deadline(30000));
        char x;
        ReadByte(sp[1], 30000, &x);
        return 32;
      },
      {sp[1]});
  ::close(sp[1]);
  ASSERT_GT(child.pid, 0);
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(ReadByte(sp[0], kIoTimeoutMs));
  size_t offset = 0;
  FrameView f;
  // Take the first chunk, so the writer is mid-message and mid-back-pressure.
  s = server->ReadFrame(&f, Deadline());
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(f.header.flags, kFlagMoreChunks);
  auto chunk = Payload(f);
  ASSERT_EQ(std::memcmp(chunk.data(), message.data(), chunk.size()), 0);
  offset += chunk.size();
  server->Consume();
  ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(&child), 1000 + SIGKILL);
  for (;;) {
    s = server->ReadFrame(&f, Deadline());
    if (!s.ok()) break;
    chunk = Payload(f);
    ASSERT_LE(offset + chunk.size(), kMessage);
    ASSERT_EQ(std::memcmp(chunk.data(), message.data() + offset, chunk.size()), 0)
        << "garbage at offset " << offset;
    offset += chunk.size();
    server->Consume();
  }
  EXPECT_STATUS(s, StatusCode::kPeerClosed, "peer");
  EXPECT_LT(offset, kMessage) << "the whole message got through before the kill";
  ::close(sp[0]);
  server.reset();
  ExpectListenerServesChildClient(listener.get(), b.memory, b.doorbell);
}

INSTANTIATE_TEST_SUITE_P(Backends, PeerDeath, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace ipc
}  // namespace grpc_shm

namespace grpc_shm {
namespace ipc {
namespace {

// A listener at its defaults refuses the two backends a hostile client could
// turn against it, and says why.
TEST(DefaultListener, RefusesUnsafeBackends) {
  const std::string address = NewAddress();
  std::unique_ptr<Listener> listener;
  ASSERT_TRUE(Listener::Listen(address, Listener::Options(), &listener).ok());
  struct Case {
    SharedMemoryKind memory;
    DoorbellKind doorbell;
    const char* why;
  };
  const Case cases[] = {
      {SharedMemoryKind::kMemfd, DoorbellKind::kEventFd, "eventfd doorbells are not enabled"},
#ifdef __linux__
      {SharedMemoryKind::kPosixShm, DoorbellKind::kSocket, "POSIX shared memory is not enabled"},
#endif
  };
  for (const Case& c : cases) {
    std::unique_ptr<Connection> client;
    Status client_status;
    std::thread t(
        [&] { client_status = Connect(address, OptionsFor(c.memory, c.doorbell), &client); });
    std::unique_ptr<Connection> server;
    Status s = listener->Accept(&server, kIoTimeoutMs);
    t.join();
    EXPECT_STATUS(s, StatusCode::kProtocol, c.why);
    EXPECT_STATUS(client_status, StatusCode::kProtocol, c.why);
  }
  // The safe default backend is served.
  std::unique_ptr<Connection> client;
  Status client_status;
  std::thread t([&] { client_status = Connect(address, DefaultConnectionOptions(), &client); });
  std::unique_ptr<Connection> server;
  EXPECT_TRUE(listener->Accept(&server, kIoTimeoutMs).ok());
  t.join();
  EXPECT_TRUE(client_status.ok()) << client_status.ToString();
}

}  // namespace
}  // namespace ipc
}  // namespace grpc_shm
