#include "plugin/ipc/tests/hostile_peer.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <thread>

#include "plugin/ipc/ring.h"

namespace grpc_shm {
namespace ipc {
namespace testing {
namespace {

// In a child: closes every descriptor above stdio but those in `keep`.
void CloseInheritedFds(const std::vector<int>& keep) {
  for (int fd : OpenFds()) {
    if (fd > 2 && std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
  }
}

}  // namespace

std::string NewAddress() {
  static std::atomic<int> counter{0};
  const std::string name = "grpc-shm-hostile-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1)) + "-" +
                           std::to_string(Clock::now().time_since_epoch().count() % 1000000007);
#ifdef GRPC_SHM_PORTABLE_POSIX
  return "/tmp/" + name + ".sock";  // no abstract names there, as on macOS
#else
  return "@" + name;
#endif
}

std::vector<int> OpenFds() {
  std::vector<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  const int own = ::dirfd(dir);
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != own) fds.push_back(fd);
  }
  ::closedir(dir);
  return fds;
}

int CountOpenFds() { return static_cast<int>(OpenFds().size()); }

bool ReadByte(int fd, int timeout_ms, char* out) {
  pollfd p = {fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  if (::read(fd, &c, 1) != 1) return false;
  if (out) *out = c;
  return true;
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

namespace {

// The portable core (GRPC_SHM_PORTABLE_POSIX builds: macOS, the BSDs) has
// only POSIX shared memory and socket doorbells. Most attacks here name a
// Linux kind only because it is the default there (the attack is on the
// ring, the handshake or the listener), so there they get the portable
// kinds. Tests about a Linux kind itself (seals, eventfd flags, futexes)
// are left out of portable runs by name (scripts/test.sh).
SharedMemoryKind Available(SharedMemoryKind kind) {
  return platform::IsSupported(kind) ? kind : SharedMemoryKind::kPosixShm;
}
DoorbellKind Available(DoorbellKind kind) {
  return platform::IsSupported(kind) ? kind : DoorbellKind::kSocket;
}

}  // namespace

ClientHello GoodHello(uint32_t ring_bytes, SharedMemoryKind memory, DoorbellKind doorbell) {
  memory = Available(memory);
  doorbell = Available(doorbell);
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
  o.memory = Available(memory);
  o.doorbell = Available(doorbell);
  o.ring_bytes = 8192;
  o.handshake_timeout = milliseconds(kIoTimeoutMs);
  return o;
}

std::unique_ptr<Listener> MakeListener(const std::string& address,
                                       const Listener::Options& options) {
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(address, options, &listener);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return listener;
}

std::unique_ptr<Listener> MakeListener(const std::string& address, milliseconds handshake_timeout,
                                       uint32_t max_ring_bytes) {
  Listener::Options options;
  options.handshake_timeout = handshake_timeout;
  options.max_ring_bytes = max_ring_bytes;
  options.allow_eventfd = true;
  options.allow_posix_shm = true;
  return MakeListener(address, options);
}

Status RawSendHello(const std::string& address, const ClientHello& hello, RawClient* raw,
                    bool send_ready) {
  Status s = platform::ConnectLocal(address, kIoTimeoutMs, &raw->socket);
  if (!s.ok()) return s;
  s = platform::SendMessage(raw->socket.get(), &hello, sizeof(hello), {}, kIoTimeoutMs);
  if (!s.ok() || !send_ready) return s;
  ClientReady ready{kReadyMagic, 0};
  return platform::SendMessage(raw->socket.get(), &ready, sizeof(ready), {}, kIoTimeoutMs);
}

Status RawReceiveReply(RawClient* raw, SharedMemoryKind memory) {
  Status s = platform::ReceiveMessage(raw->socket.get(), &raw->reply, sizeof(raw->reply), 3,
                                      &raw->handles, kIoTimeoutMs);
  if (!s.ok()) return s;
  if (raw->reply.status != 0 || raw->handles.empty()) {
    return Status(StatusCode::kProtocol, "refused");
  }
  raw->layout = SegmentLayout{raw->reply.c2s_bytes, raw->reply.s2c_bytes};
  return platform::MapSharedMemory(Available(memory), raw->handles[0].get(),
                                   raw->layout.total_bytes(), &raw->segment);
}

void RawHandshake(Listener* listener, const std::string& address, RawClient* raw,
                  std::unique_ptr<Connection>* server, uint32_t ring_bytes, SharedMemoryKind memory,
                  DoorbellKind doorbell) {
  ASSERT_TRUE(RawSendHello(address, GoodHello(ring_bytes, memory, doorbell), raw, true).ok());
  Status s = listener->Accept(server, kIoTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = RawReceiveReply(raw, memory);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

void RawPutFrame(uint8_t* data, uint32_t capacity, uint64_t* pos, const FrameHeader& header,
                 const std::vector<uint8_t>& payload, bool publish, size_t payload_bytes_to_write,
                 int seal) {
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

FrameHeader MessageHeader(uint32_t payload_size, uint32_t stream, uint8_t flags) {
  FrameHeader h{};
  h.payload_size = payload_size;
  h.stream_id = stream;
  h.type = kFrameMessage;
  h.flags = flags;
  return h;
}

Status ServerWrite(Connection* c, const std::vector<uint8_t>& payload, uint32_t stream) {
  FrameHeader h = MessageHeader(0, stream);
  ConstByteSpan part{payload.data(), payload.size()};
  return c->TryWriteFrame(h, &part, 1);
}

std::vector<uint8_t> Payload(const FrameView& f) {
  std::vector<uint8_t> v(f.payload_size());
  f.CopyPayloadTo(v.data());
  return v;
}

Clock::time_point Deadline(int ms) { return Clock::now() + milliseconds(ms); }

Child ForkIsolatedChild(const std::function<int()>& body, std::vector<int> keep) {
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

int WaitChild(Child* child, int timeout_ms) {
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

void ExpectListenerServesChildClient(Listener* listener, SharedMemoryKind memory,
                                     DoorbellKind doorbell) {
  const std::string address = listener->address();
  Child child = ForkIsolatedChild([&]() -> int {
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

}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm
