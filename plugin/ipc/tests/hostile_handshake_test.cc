// Hostile clients against the server half of the handshake and the
// listener, beyond the message-level cases of hostile_peer_test.cc: what a
// client can make the server hold before it is admitted (descriptors), which
// doorbells a server that polls must refuse, which files a listener may
// remove, and which descriptors a fork + exec elsewhere in the process may
// inherit.
//
// Hostile clients run in forked children where what the server holds is
// counted (the child's own descriptors must not blur the count). No sleeps
// are used for synchronisation: pipes, hang-ups and deadlines.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/handshake_format.h"
#include "plugin/ipc/status.h"
#include "plugin/ipc/tests/test_util.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace ipc {
namespace {

using platform::DoorbellKind;
using platform::SharedMemoryKind;
using platform::UniqueHandle;
using std::chrono::milliseconds;

constexpr int kIoTimeoutMs = 5000;

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

std::string FdTarget(int fd) {
  char buf[256];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

ClientHello GoodHello(DoorbellKind doorbell = DoorbellKind::kSocket) {
  ClientHello h{};
  h.magic = kHelloMagic;
  h.version = kProtocolVersion;
  h.memory_kind = static_cast<uint32_t>(SharedMemoryKind::kMemfd);
  h.doorbell_kind = static_cast<uint32_t>(doorbell);
  h.c2s_bytes = 4096;
  h.s2c_bytes = 4096;
  return h;
}

std::unique_ptr<Listener> MakeListener(const std::string& address,
                                       Listener::Options options = Listener::Options()) {
  options.handshake_timeout = milliseconds(kIoTimeoutMs);
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(address, options, &listener);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return listener;
}

std::unique_ptr<ServerHandshake> AcceptOne(Listener* listener) {
  UniqueHandle socket;
  for (;;) {
    Status s = listener->AcceptSocket(&socket);
    if (s.ok()) return listener->BeginHandshake(std::move(socket));
    if (s.code() != StatusCode::kWouldBlock) {
      ADD_FAILURE() << s.ToString();
      return nullptr;
    }
    if (!platform::WaitReadable(listener->listen_handle(), kIoTimeoutMs).ok()) {
      ADD_FAILURE() << "no client came";
      return nullptr;
    }
  }
}

// Sends bytes [offset, offset + size) of `data` with `fds` attached, in one
// sendmsg (no size limit on the descriptors, unlike platform::SendMessage).
bool SendWithFds(int socket, const void* data, size_t size, const std::vector<int>& fds) {
  iovec iov = {const_cast<void*>(data), size};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(size);
}

// Waits up to `timeout_ms` for one byte on `fd`.
bool ReadByte(int fd, int timeout_ms) {
  pollfd p = {fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return ::read(fd, &c, 1) == 1;
}

// =========================================== descriptors before admission

// A client sends its hello a byte at a time with 8 descriptors on every
// byte. The server must not hold them while the hello is incomplete (it
// would be 8 per byte, for as long as the client cares to stall): the first
// piece that carries any is refused, and they are closed at once.
TEST(HostileHandshake, HelloInOneBytePiecesEachCarryingDescriptorsIsRefusedAtTheFirst) {
  const std::string address = testing::UniqueAddress("fdpieces");
  auto listener = MakeListener(address);

  int sent_pipe[2];
  ASSERT_EQ(::pipe2(sent_pipe, O_CLOEXEC), 0);
  int release_pipe[2];
  ASSERT_EQ(::pipe2(release_pipe, O_CLOEXEC), 0);
  const ClientHello hello = GoodHello();
  // The client: all but the last byte of the hello, 8 descriptors on each,
  // then it stalls (holding the connection open) until released.
  const pid_t child = testing::ForkChild([&]() -> int {
    ::close(sent_pipe[0]);
    ::close(release_pipe[1]);
    UniqueHandle socket;
    if (!platform::ConnectLocal(address, kIoTimeoutMs, &socket).ok()) return 10;
    std::vector<int> fds;
    for (int i = 0; i < 4; ++i) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return 11;
      fds.push_back(p[0]);
      fds.push_back(p[1]);
    }
    const auto* bytes = reinterpret_cast<const uint8_t*>(&hello);
    int pieces = 0;
    for (size_t i = 0; i + 1 < sizeof(hello); ++i) {
      if (!SendWithFds(socket.get(), bytes + i, 1, fds)) break;  // refused: the server hung up
      ++pieces;
    }
    const char done = static_cast<char>(pieces);
    if (::write(sent_pipe[1], &done, 1) != 1) return 12;
    ReadByte(release_pipe[0], 30000);
    return 0;
  });
  ASSERT_GT(child, 0);
  ::close(sent_pipe[1]);
  ::close(release_pipe[0]);
  const int fds_before = CountOpenFds();

  auto handshake = AcceptOne(listener.get());
  ASSERT_NE(handshake, nullptr);
  ASSERT_TRUE(ReadByte(sent_pipe[0], kIoTimeoutMs)) << "the client did not send its pieces";
  // Every piece is in the server's socket buffer now. The server's poller
  // advances the handshake as long as the socket is readable.
  Status s;
  int max_fds_during = 0;
  for (int i = 0; i < 64; ++i) {
    std::unique_ptr<Connection> connection;
    s = handshake->Advance(&connection);
    max_fds_during = std::max(max_fds_during, CountOpenFds());
    if (s.code() != StatusCode::kWouldBlock) break;
    if (platform::WaitReadable(handshake->socket(), 0).code() == StatusCode::kTimeout) break;
  }
  // The accepted socket is the one descriptor the handshake may hold.
  EXPECT_LE(max_fds_during, fds_before + 1) << "descriptors from an unadmitted client were held";
  EXPECT_EQ(s.code(), StatusCode::kProtocol) << s.ToString();
  EXPECT_NE(s.message().find("peer sent 8 descriptors, at most 0 allowed"), std::string::npos)
      << s.ToString();
  handshake.reset();
  EXPECT_EQ(CountOpenFds(), fds_before);

  const char go = 1;
  ASSERT_EQ(::write(release_pipe[1], &go, 1), 1);
  ::close(release_pipe[1]);
  ::close(sent_pipe[0]);
  EXPECT_EQ(testing::WaitChild(child), 0);
}

// More descriptors than the server's control buffer holds: the kernel closes
// the surplus and flags MSG_CTRUNC. That is refused at the piece that
// carried them, not once (or if ever) the rest of the hello arrives.
TEST(HostileHandshake, TruncatedDescriptorsOnAPartialHelloAreRefusedAtOnce) {
  const std::string address = testing::UniqueAddress("ctrunc");
  auto listener = MakeListener(address);
  const int fds_before = CountOpenFds();
  UniqueHandle client;
  ASSERT_TRUE(platform::ConnectLocal(address, kIoTimeoutMs, &client).ok());
  auto handshake = AcceptOne(listener.get());
  ASSERT_NE(handshake, nullptr);
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    fds.push_back(p[0]);
    fds.push_back(p[1]);
  }
  const ClientHello hello = GoodHello();
  ASSERT_TRUE(SendWithFds(client.get(), &hello, 4, fds));  // a partial hello, then silence
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(platform::WaitReadable(handshake->socket(), kIoTimeoutMs).ok());
  std::unique_ptr<Connection> connection;
  Status s = handshake->Advance(&connection);
  EXPECT_EQ(s.code(), StatusCode::kProtocol) << s.ToString();
  EXPECT_NE(s.message().find("more descriptors than allowed"), std::string::npos) << s.ToString();
  handshake.reset();
  client.reset();
  EXPECT_EQ(CountOpenFds(), fds_before);
}

// ================================================================ doorbells

// A server whose connections are carried by a poller (the gRPC transport)
// cannot wait on a futex: it refuses one at the handshake and says why,
// instead of accepting a client whose rings it would never hear.
TEST(HostileHandshake, FutexDoorbellIsRefusedByAListenerThatCannotPollIt) {
  const std::string address = testing::UniqueAddress("futex");
  Listener::Options options;
  options.allow_futex = false;
  auto listener = MakeListener(address, options);
  ConnectionOptions futex = DefaultConnectionOptions();
  futex.doorbell = DoorbellKind::kFutex;
  std::unique_ptr<Connection> client;
  Status client_status;
  std::thread t([&] { client_status = Connect(address, futex, &client); });
  std::unique_ptr<Connection> server;
  Status s = listener->Accept(&server, kIoTimeoutMs);
  t.join();
  EXPECT_EQ(s.code(), StatusCode::kProtocol) << s.ToString();
  EXPECT_EQ(client_status.code(), StatusCode::kProtocol) << client_status.ToString();
  EXPECT_NE(client_status.message().find("futex doorbells cannot be polled"), std::string::npos)
      << client_status.ToString();
  EXPECT_EQ(client, nullptr);

  // Socket doorbells are served as before.
  std::thread t2([&] { client_status = Connect(address, DefaultConnectionOptions(), &client); });
  s = listener->Accept(&server, kIoTimeoutMs);
  t2.join();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(client_status.ok()) << client_status.ToString();
}

// ====================================================== the socket file

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsRegularFileWith(const std::string& path, const std::string& content) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return got == content;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path);
  out << content;
}

TEST(ListenerSocketFile, ListenNeverRemovesARegularFile) {
  const std::string path = testing::UniqueAddress("regular");
  WriteFile(path, "precious");
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(path, Listener::Options(), &listener);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("EADDRINUSE"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("not a socket"), std::string::npos) << s.ToString();
  EXPECT_TRUE(IsRegularFileWith(path, "precious"));
  ::unlink(path.c_str());
}

// A live server whose backlog is full answers connects with EAGAIN: that is
// a server, not a stale file, and its socket must survive a second Listen.
TEST(ListenerSocketFile, ListenNeverReplacesALiveServerEvenWithAFullBacklog) {
  const std::string path = testing::UniqueAddress("live");
  UniqueHandle live;
  ASSERT_TRUE(platform::ListenLocal(path, 0, &live).ok());
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof(sun.sun_path) - 1);
  std::vector<UniqueHandle> queued;  // fill the backlog: nobody accepts
  for (int i = 0; i < 64; ++i) {
    UniqueHandle c(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(c.valid());
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
      ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
      break;
    }
    queued.push_back(std::move(c));
  }
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(path, Listener::Options(), &listener);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("a live server listens"), std::string::npos) << s.ToString();
  // The path still leads to the live server: empty its backlog, connect
  // again, and it is the live server that has the new client.
  queued.clear();
  for (;;) {
    UniqueHandle accepted;
    Status a = platform::AcceptLocal(live.get(), &accepted);
    if (a.code() == StatusCode::kWouldBlock) break;
    ASSERT_TRUE(a.ok()) << a.ToString();
  }
  UniqueHandle client;
  ASSERT_TRUE(platform::ConnectLocal(path, kIoTimeoutMs, &client).ok());
  ASSERT_TRUE(platform::WaitReadable(live.get(), kIoTimeoutMs).ok());
  UniqueHandle accepted;
  EXPECT_TRUE(platform::AcceptLocal(live.get(), &accepted).ok());
  live.reset();
  ::unlink(path.c_str());
}

TEST(ListenerSocketFile, StaleSocketFileIsReplaced) {
  const std::string path = testing::UniqueAddress("stale");
  {
    UniqueHandle gone;
    ASSERT_TRUE(platform::ListenLocal(path, 4, &gone).ok());
  }  // closed without removing the file, as a crashed server leaves it
  ASSERT_TRUE(PathExists(path));
  auto listener = MakeListener(path);
  ASSERT_NE(listener, nullptr);
  UniqueHandle client;
  EXPECT_TRUE(platform::ConnectLocal(path, kIoTimeoutMs, &client).ok());
  listener.reset();
  EXPECT_FALSE(PathExists(path)) << "a listener removes its own socket file";
}

// The path was taken over while we listened (our file replaced by another
// server's socket, or by anything else): shutting down removes only our own.
TEST(ListenerSocketFile, ShutdownLeavesAPathThatIsNoLongerOursAlone) {
  const std::string path = testing::UniqueAddress("taken");
  auto first = MakeListener(path);
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  auto second = MakeListener(path);
  ASSERT_NE(second, nullptr);
  first.reset();
  ASSERT_TRUE(PathExists(path)) << "the first listener removed the second's socket";
  UniqueHandle client;
  EXPECT_TRUE(platform::ConnectLocal(path, kIoTimeoutMs, &client).ok());

  ASSERT_EQ(::unlink(path.c_str()), 0);
  WriteFile(path, "not yours");
  second.reset();
  EXPECT_TRUE(IsRegularFileWith(path, "not yours"));
  ::unlink(path.c_str());
}

// ========================================================= fork + exec

// A process that forks and execs elsewhere (a subprocess launcher on
// another thread) must not hand our connection's descriptors to the child:
// a copy of the liveness socket in a stranger's process means we would
// never see the peer hang up.
TEST(ListenerCloexec, ExecedChildHoldsNoneOfAConnectionsDescriptors) {
  const std::set<int> before = [] {
    auto v = OpenFds();
    return std::set<int>(v.begin(), v.end());
  }();
  const std::string address = testing::UniqueAddress("exec");
  auto listener = MakeListener(address);
  std::unique_ptr<Connection> client, server;
  Status client_status;
  std::thread t([&] { client_status = Connect(address, DefaultConnectionOptions(), &client); });
  ASSERT_TRUE(listener->Accept(&server, kIoTimeoutMs).ok());
  t.join();
  ASSERT_TRUE(client_status.ok()) << client_status.ToString();

  std::set<std::string> ours;  // what our descriptors point at (socket:[inode], memfd, ...)
  for (int fd : OpenFds()) {
    if (before.count(fd) == 0) ours.insert(FdTarget(fd));
  }
  ASSERT_GE(ours.size(), 5u) << "listener, two connection sockets, doorbells";

  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::execl("/bin/ls", "ls", "-l", "/proc/self/fd", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  ::close(out[1]);
  std::string listing;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    listing.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  EXPECT_EQ(testing::WaitChild(pid), 0);
  ASSERT_NE(listing.find("-> "), std::string::npos) << listing;
  for (const std::string& target : ours) {
    EXPECT_EQ(listing.find("-> " + target + "\n"), std::string::npos)
        << target << " leaked into the exec'd child:\n"
        << listing;
  }
}

}  // namespace
}  // namespace ipc
}  // namespace grpc_shm
