// Cross-process behaviour of Connection and Listener, for every backend.
#include "plugin/ipc/connection.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "plugin/ipc/tests/checked_traffic.h"
#include "plugin/ipc/tests/test_util.h"

namespace grpc_shm {
namespace ipc {
namespace {

using testing::Exchange;
using testing::FillFor;
using testing::ForkChild;
using testing::UniqueAddress;
using testing::WaitChild;
using Clock = std::chrono::steady_clock;

ConnectionOptions Backend(platform::SharedMemoryKind memory, platform::DoorbellKind doorbell) {
  ConnectionOptions o;
  o.memory = memory;
  o.doorbell = doorbell;
  return o;
}

std::vector<ConnectionOptions> AllBackends() {
  std::vector<ConnectionOptions> v;
#ifdef __linux__
  v.push_back(Backend(platform::SharedMemoryKind::kMemfd, platform::DoorbellKind::kSocket));
  v.push_back(Backend(platform::SharedMemoryKind::kMemfd, platform::DoorbellKind::kEventFd));
  v.push_back(Backend(platform::SharedMemoryKind::kMemfd, platform::DoorbellKind::kFutex));
#endif
  v.push_back(Backend(platform::SharedMemoryKind::kPosixShm, platform::DoorbellKind::kSocket));
  return v;
}

Clock::time_point In(std::chrono::milliseconds ms) { return Clock::now() + ms; }

uint64_t StressMessageCount() {
  // Half each way. CI's sanitizer run lowers it; the default proves 10M.
  const char* env = std::getenv("GRPC_SHM_STRESS_MESSAGES");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 10'000'000;
}

class ConnectionTest : public ::testing::TestWithParam<ConnectionOptions> {
 protected:
  ConnectionOptions options() const { return GetParam(); }

  // Listens on a fresh address; the child runs `client` against it.
  // These tests exercise the mechanics of every backend, including those a
  // listener refuses by default (DefaultListener in hostile_handshake_test covers
  // the refusal).
  std::unique_ptr<Listener> Listen(Listener::Options lo = {}) {
    lo.allow_eventfd = true;
    lo.allow_posix_shm = true;
    address_ = UniqueAddress("conn");
    std::unique_ptr<Listener> listener;
    Status s = Listener::Listen(address_, lo, &listener);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return listener;
  }
  std::unique_ptr<Connection> ConnectInChild() {
    std::unique_ptr<Connection> c;
    Status s = Connect(address_, options(), &c);
    if (!s.ok()) std::fprintf(stderr, "child connect: %s\n", s.ToString().c_str());
    return c;
  }
  std::unique_ptr<Connection> AcceptFrom(Listener& listener) {
    std::unique_ptr<Connection> c;
    Status s = listener.Accept(&c, 10000);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  std::string address_;
};

TEST_P(ConnectionTest, RingSizesAreNegotiatedWithinServerLimits) {
  Listener::Options lo;
  lo.max_ring_bytes = 1 << 16;
  auto listener = Listen(lo);
  pid_t child = ForkChild([&] {
    ConnectionOptions o = options();
    o.ring_bytes = 1 << 20;  // more than the server allows
    std::unique_ptr<Connection> c;
    if (!Connect(address_, o, &c).ok()) return 1;
    if (c->send_ring_bytes() != (1 << 16) || c->receive_ring_bytes() != (1 << 16)) return 2;
    o.ring_bytes = 5000;  // not a power of two
    std::unique_ptr<Connection> c2;
    if (!Connect(address_, o, &c2).ok()) return 3;
    return c2->send_ring_bytes() == 4096 ? 0 : 4;
  });
  auto a = AcceptFrom(*listener);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->receive_ring_bytes(), 1u << 16);
  auto b = AcceptFrom(*listener);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->receive_ring_bytes(), 4096u);
  EXPECT_EQ(WaitChild(child), 0);
}

TEST_P(ConnectionTest, PeerCredentialsIdentifyTheOtherProcess) {
  auto listener = Listen();
  const pid_t server_pid = ::getpid();
  pid_t child = ForkChild([&] {
    auto c = ConnectInChild();
    if (!c) return 1;
    if (c->peer().uid != ::getuid()) return 2;
#ifdef __linux__
    if (c->peer().pid != server_pid) return 3;
#endif
    return 0;
  });
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->peer().uid, ::getuid());
  EXPECT_EQ(c->peer().gid, ::getgid());
#ifdef __linux__
  EXPECT_EQ(c->peer().pid, child);
#endif
  EXPECT_EQ(WaitChild(child), 0);
}

// Ten million frames of random sizes with checksums (half each way, both
// directions at once, a 64 KiB ring so back-pressure and wrap-around happen
// constantly): no loss, no reordering, no corruption.
TEST_P(ConnectionTest, StressManyMessagesBothDirections) {
  const uint64_t per_direction = StressMessageCount() / 2;
  auto listener = Listen();
  pid_t child = ForkChild([&] {
    ConnectionOptions o = options();
    o.ring_bytes = 1 << 16;
    std::unique_ptr<Connection> c;
    Status s = Connect(address_, o, &c);
    if (!s.ok()) return 1;
    std::string err = Exchange(*c, per_direction);
    if (!err.empty()) std::fprintf(stderr, "child: %s\n", err.c_str());
    return err.empty() ? 0 : 2;
  });
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  const auto start = Clock::now();
  EXPECT_EQ(Exchange(*c, per_direction), "");
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("[ info ] %s: %llu frames in %.2f s (%.1f M frames/s)\n",
              testing::BackendName(options()).c_str(),
              static_cast<unsigned long long>(2 * per_direction), secs,
              2 * per_direction / secs / 1e6);
  EXPECT_EQ(WaitChild(child), 0);
}

TEST_P(ConnectionTest, MessagesLargerThanTheRingStreamInChunks) {
  auto listener = Listen();
  const size_t kSizes[] = {0, 1, 4096, (8u << 20) + 3};
  pid_t child = ForkChild([&] {
    ConnectionOptions o = options();
    o.ring_bytes = 1 << 16;
    std::unique_ptr<Connection> c;
    if (!Connect(address_, o, &c).ok()) return 1;
    for (uint32_t i = 0; i < 4; ++i) {
      std::vector<uint8_t> msg(kSizes[i]);
      FillFor(i, msg.data(), msg.size());
      if (!c->WriteMessage(i, kFlagCompressed, msg.data(), msg.size(), In(std::chrono::seconds(60)))
               .ok()) {
        return 2;
      }
    }
    // Stay alive until the server has read everything.
    return platform::WaitForHangup(c->liveness_handle(), 60000).code() == StatusCode::kPeerClosed
               ? 0
               : 3;
  });
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  for (uint32_t i = 0; i < 4; ++i) {
    std::vector<uint8_t> got;
    int chunks = 0;
    for (;;) {
      FrameView f;
      Status s = c->ReadFrame(&f, In(std::chrono::seconds(60)));
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_EQ(f.header.stream_id, i);
      EXPECT_TRUE(f.header.flags & kFlagCompressed);
      EXPECT_LE(f.payload_size(), c->max_frame_payload());
      const size_t old = got.size();
      got.resize(old + f.payload_size());
      f.CopyPayloadTo(got.data() + old);
      const bool more = f.header.flags & kFlagMoreChunks;
      c->Consume();
      ++chunks;
      if (!more) break;
    }
    std::vector<uint8_t> want(kSizes[i]);
    FillFor(i, want.data(), want.size());
    EXPECT_EQ(got.size(), want.size());
    EXPECT_TRUE(got == want) << "message " << i;
    if (kSizes[i] > (1u << 16)) {
      EXPECT_GT(chunks, 8);
    }
  }
  c->Close();
  EXPECT_EQ(WaitChild(child), 0);
}

// True once process `pid` is asleep in the kernel ("S" in /proc/PID/stat).
bool IsSleeping(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return false;
  char buf[512] = {0};
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  const char* close_paren = std::strrchr(buf, ')');  // the name may contain spaces
  return n > 0 && close_paren && close_paren[1] == ' ' && close_paren[2] == 'S';
}

// A writer sleeping for room for one frame nearly as large as the ring, and
// a reader that frees much less than a quarter ring and then drains it: the
// reader must wake the writer before it goes to sleep itself, or both sleep
// forever (ReadFrame once skipped that check).
TEST_P(ConnectionTest, ReaderThatDrainsTheRingWakesAWriterWaitingForSpace) {
  auto listener = Listen();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ForkChild([&] {
    ConnectionOptions o = options();
    o.ring_bytes = 4096;
    o.spin = std::chrono::nanoseconds(0);  // every wait sleeps
    std::unique_ptr<Connection> c;
    if (!Connect(address_, o, &c).ok()) return 1;
    std::vector<uint8_t> small(100, 1), big(c->max_frame_payload(), 2);
    FrameHeader h{};
    ConstByteSpan part{small.data(), small.size()};
    if (!c->WriteFrame(h, &part, 1, In(std::chrono::seconds(30))).ok()) return 2;
    const char byte = 'w';
    if (::write(ready[1], &byte, 1) != 1) return 3;
    part = {big.data(), big.size()};
    // Does not fit until the small frame is consumed: sleeps for space.
    if (!c->WriteFrame(h, &part, 1, In(std::chrono::seconds(30))).ok()) return 4;
    return 0;
  });
  ::close(ready[1]);
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->receive_ring_bytes(), 4096u);
  char byte;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  // Only consume once the writer is asleep waiting for space.
  const auto give_up = In(std::chrono::seconds(10));
  while (!IsSleeping(child) && Clock::now() < give_up) std::this_thread::yield();
  ASSERT_TRUE(IsSleeping(child)) << "the writer never went to sleep";
  FrameView f;
  for (size_t want : {size_t{100}, c->max_frame_payload()}) {
    Status s = c->ReadFrame(&f, In(std::chrono::seconds(5)));
    ASSERT_TRUE(s.ok()) << "frame of " << want << " bytes: " << s.ToString();
    EXPECT_EQ(f.payload_size(), want);
    c->Consume();
  }
  EXPECT_EQ(WaitChild(child), 0);
}

TEST_P(ConnectionTest, KilledClientIsSeenAsPeerClosed) {
  auto listener = Listen();
  pid_t child = ForkChild([&] {
    auto c = ConnectInChild();
    if (!c) return 1;
    ::pause();  // until SIGKILL
    return 0;
  });
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  Clock::time_point killed_at;
  std::thread killer([&] {
    killed_at = Clock::now();
    ::kill(child, SIGKILL);
  });
  FrameView f;
  Status s = c->ReadFrame(&f, In(std::chrono::seconds(30)));
  const auto detected_at = Clock::now();
  killer.join();
  EXPECT_EQ(s.code(), StatusCode::kPeerClosed) << s.ToString();
  std::printf("[ info ] %s: client death noticed %.3f ms after kill -9\n",
              testing::BackendName(options()).c_str(),
              std::chrono::duration<double, std::milli>(detected_at - killed_at).count());
  EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
}

// A writer waiting to put a frame into a full ring must sleep, and so see
// its reader die. Before, an empty or padded payload made the wait say
// "fits" while the write said "full", and the writer spun for ever.
TEST_P(ConnectionTest, WriterWaitingOnAFullRingForAnEmptyFrameSeesTheReaderDie) {
  auto listener = Listen();
  pid_t child = ForkChild([&] {
    auto c = ConnectInChild();
    if (!c) return 1;
    ::pause();  // never reads; until SIGKILL
    return 0;
  });
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  FrameHeader h{};
  h.type = kFrameMessage;
  h.stream_id = 1;
  while (c->TryWriteFrame(h, nullptr, 0).ok()) {
  }
  ::kill(child, SIGKILL);
  Status s = c->WriteFrame(h, nullptr, 0, In(std::chrono::seconds(30)));
  EXPECT_EQ(s.code(), StatusCode::kPeerClosed) << s.ToString();
  // A payload whose padding is what no longer fits.
  const uint8_t byte = 1;
  ConstByteSpan part{&byte, 1};
  s = c->WriteFrame(h, &part, 1, In(std::chrono::seconds(30)));
  EXPECT_EQ(s.code(), StatusCode::kPeerClosed) << s.ToString();
  EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
}

TEST_P(ConnectionTest, KilledServerIsSeenAsPeerClosedByClient) {
  auto listener = Listen();
  pid_t server = ForkChild([&] {
    std::unique_ptr<Connection> c;
    if (!listener->Accept(&c, 10000).ok()) return 1;
    ::pause();
    return 0;
  });
  // The child accepts on the inherited listening socket; ours stays idle.
  std::unique_ptr<Connection> c;
  ASSERT_TRUE(Connect(address_, options(), &c).ok());
  std::thread killer([&] { ::kill(server, SIGKILL); });
  FrameView f;
  Status s = c->ReadFrame(&f, In(std::chrono::seconds(30)));
  killer.join();
  EXPECT_EQ(s.code(), StatusCode::kPeerClosed) << s.ToString();
  // A writer blocked on a full ring must not hang either.
  std::vector<uint8_t> big(c->max_frame_payload());
  Status w = Status::Ok();
  for (int i = 0; i < 4 && w.ok(); ++i) {
    FrameHeader h{};
    ConstByteSpan part{big.data(), big.size()};
    w = c->WriteFrame(h, &part, 1, In(std::chrono::seconds(30)));
  }
  EXPECT_EQ(w.code(), StatusCode::kPeerClosed) << w.ToString();
  EXPECT_EQ(WaitChild(server), 128 + SIGKILL);
}

TEST_P(ConnectionTest, FramesPublishedBeforeDeathAreStillDelivered) {
  auto listener = Listen();
  pid_t child = ForkChild([&] {
    auto c = ConnectInChild();
    if (!c) return 1;
    for (uint32_t i = 0; i < 3; ++i) {
      FrameHeader h{};
      h.stream_id = i;
      if (!c->TryWriteFrame(h, nullptr, 0).ok()) return 2;
    }
    ::_exit(0);  // no orderly goodbye
  });
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  ASSERT_EQ(WaitChild(child), 0);
  for (uint32_t i = 0; i < 3; ++i) {
    FrameView f;
    Status s = c->ReadFrame(&f, In(std::chrono::seconds(10)));
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(f.header.stream_id, i);
    c->Consume();
  }
  FrameView f;
  EXPECT_EQ(c->ReadFrame(&f, In(std::chrono::seconds(10))).code(), StatusCode::kPeerClosed);
}

TEST_P(ConnectionTest, WaitTimesOutWhenNothingArrives) {
  auto listener = Listen();
  int release[2];
  ASSERT_EQ(::pipe(release), 0);
  pid_t child = ForkChild([&] {
    ::close(release[1]);
    auto c = ConnectInChild();
    char b;
    (void)!::read(release[0], &b, 1);  // stay connected until the test is done
    return c ? 0 : 1;
  });
  ::close(release[0]);
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  FrameView f;
  EXPECT_EQ(c->ReadFrame(&f, In(std::chrono::milliseconds(50))).code(), StatusCode::kTimeout);
  ::close(release[1]);
  EXPECT_EQ(WaitChild(child), 0);
}

// One thread, one poll() over every connection's doorbell and liveness
// socket: connections do not need threads of their own.
TEST_P(ConnectionTest, OnePollerServesManyConnections) {
  if (options().doorbell == platform::DoorbellKind::kFutex) {
    GTEST_SKIP() << "futex doorbells cannot be polled";
  }
  constexpr int kConnections = 64;
  constexpr int kFramesEach = 50;
  auto listener = Listen();
  pid_t child = ForkChild([&] {
    std::vector<std::unique_ptr<Connection>> cs;
    for (int i = 0; i < kConnections; ++i) {
      cs.push_back(ConnectInChild());
      if (!cs.back()) return 1;
    }
    // Interleave writes across connections.
    for (int n = 0; n < kFramesEach; ++n) {
      for (int i = 0; i < kConnections; ++i) {
        FrameHeader h{};
        h.stream_id = static_cast<uint32_t>(i);
        h.aux = static_cast<uint32_t>(n);
        if (!cs[i]->WriteFrame(h, nullptr, 0, In(std::chrono::seconds(30))).ok()) return 2;
      }
    }
    for (auto& c : cs) {
      if (platform::WaitForHangup(c->liveness_handle(), 60000).code() != StatusCode::kPeerClosed)
        return 3;
    }
    return 0;
  });
  std::vector<std::unique_ptr<Connection>> cs;
  for (int i = 0; i < kConnections; ++i) {
    cs.push_back(AcceptFrom(*listener));
    ASSERT_TRUE(cs.back());
  }
  std::vector<int> next(kConnections, 0);
  int remaining = kConnections * kFramesEach;
  const auto deadline = In(std::chrono::seconds(60));
  while (remaining > 0 && Clock::now() < deadline) {
    std::vector<pollfd> fds;
    std::vector<int> owner;
    for (int i = 0; i < kConnections; ++i) {
      if (next[i] == kFramesEach) continue;
      if (!cs[i]->PrepareToSleep(kWaitingForData)) {
        fds.push_back({-1, 0, 0});  // already readable: do not sleep
      } else {
        fds.push_back({cs[i]->poll_handle(), POLLIN, 0});
      }
      owner.push_back(i);
    }
    const bool any_ready =
        std::any_of(fds.begin(), fds.end(), [](const pollfd& p) { return p.fd < 0; });
    ASSERT_GE(::poll(fds.data(), fds.size(), any_ready ? 0 : 10000), 0);
    for (size_t k = 0; k < owner.size(); ++k) {
      Connection& c = *cs[owner[k]];
      c.Drain();
      FrameView f;
      while (c.Peek(&f).ok()) {
        EXPECT_EQ(f.header.stream_id, static_cast<uint32_t>(owner[k]));
        EXPECT_EQ(f.header.aux, static_cast<uint32_t>(next[owner[k]]));
        ++next[owner[k]];
        --remaining;
        c.Consume();
      }
    }
  }
  EXPECT_EQ(remaining, 0);
  cs.clear();
  EXPECT_EQ(WaitChild(child), 0);
}

// Keepalive pings go around the rings: a peer that is not waiting for data
// (a poller whose reading is paused by back-pressure) is still woken, and
// answers when it looks at the connection, without reading its ring.
TEST_P(ConnectionTest, KeepalivePingWakesAPeerNotWaitingForDataAndItAnswers) {
  if (options().doorbell == platform::DoorbellKind::kFutex) {
    GTEST_SKIP() << "futex doorbells cannot be polled";
  }
  auto listener = Listen();
  pid_t child = ForkChild([&] {
    auto c = ConnectInChild();
    if (!c) return 1;
    // Never announces kWaitingForData: only an unconditional ring wakes it.
    for (int answered = 0; answered < 2;) {
      pollfd p{c->poll_handle(), POLLIN, 0};
      if (::poll(&p, 1, 30000) != 1) return 2;
      c->Drain();
      if (c->AnswerKeepalivePings()) ++answered;
    }
    FrameView f;
    if (c->Peek(&f).code() != StatusCode::kWouldBlock) return 3;  // no frame was sent
    return platform::WaitForHangup(c->liveness_handle(), 60000).code() == StatusCode::kPeerClosed
               ? 0
               : 4;
  });
  auto c = AcceptFrom(*listener);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->KeepalivePingAnswered(1));
  for (uint64_t want : {1u, 2u}) {
    const uint64_t seq = c->SendKeepalivePing();
    EXPECT_EQ(seq, want);
    const auto give_up = In(std::chrono::seconds(30));
    while (!c->KeepalivePingAnswered(seq) && Clock::now() < give_up) std::this_thread::yield();
    EXPECT_TRUE(c->KeepalivePingAnswered(seq)) << "ping " << seq;
  }
  c.reset();
  EXPECT_EQ(WaitChild(child), 0);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ConnectionTest, ::testing::ValuesIn(AllBackends()),
                         [](const ::testing::TestParamInfo<ConnectionOptions>& info) {
                           return testing::BackendName(info.param);
                         });

// ---- backend-independent behaviour

std::vector<std::string> DevShmEntries() {
  std::vector<std::string> names;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) {
      if (std::strncmp(e->d_name, "gshm.", 5) == 0) names.push_back(e->d_name);
    }
    ::closedir(d);
  }
  return names;
}

TEST(ConnectionSetupTest, PosixBackendLeavesNothingInDevShm) {
  const auto before = DevShmEntries();
  const std::string address = UniqueAddress("devshm");
  std::unique_ptr<Listener> listener;
  Listener::Options lo;
  lo.allow_posix_shm = true;
  ASSERT_TRUE(Listener::Listen(address, lo, &listener).ok());
  pid_t child = ForkChild([&] {
    std::unique_ptr<Connection> c;
    if (!Connect(address, PosixConnectionOptions(), &c).ok()) return 1;
    ::pause();
    return 0;
  });
  std::unique_ptr<Connection> c;
  ASSERT_TRUE(listener->Accept(&c, 10000).ok());
  EXPECT_EQ(DevShmEntries(), before) << "a live connection must not have a name in /dev/shm";
  ::kill(child, SIGKILL);
  WaitChild(child);
  EXPECT_EQ(DevShmEntries(), before);
}

TEST(ConnectionSetupTest, AdmissionHookRefusesWithItsReason) {
  const std::string address = UniqueAddress("admit");
  Listener::Options lo;
  platform::PeerCredentials seen{};
  lo.admit = [&seen](const platform::PeerCredentials& peer) {
    seen = peer;
    return Status(StatusCode::kProtocol, "not you, uid " + std::to_string(peer.uid));
  };
  std::unique_ptr<Listener> listener;
  ASSERT_TRUE(Listener::Listen(address, lo, &listener).ok());
  pid_t child = ForkChild([&] {
    std::unique_ptr<Connection> c;
    Status s = Connect(address, DefaultConnectionOptions(), &c);
    const std::string want =
        "server refused the connection: not you, uid " + std::to_string(::getuid());
    if (s.ok() || s.message() != want) {
      std::fprintf(stderr, "child: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  });
  std::unique_ptr<Connection> c;
  Status s = listener->Accept(&c, 10000);
  EXPECT_EQ(s.code(), StatusCode::kProtocol) << s.ToString();
  EXPECT_FALSE(c);
  EXPECT_EQ(seen.pid, child);
  EXPECT_EQ(seen.uid, ::getuid());
  EXPECT_EQ(WaitChild(child), 0);
}

TEST(ConnectionSetupTest, ConnectToMissingAddressNamesIt) {
  std::unique_ptr<Connection> c;
  const std::string address = UniqueAddress("missing");
  Status s = Connect(address, DefaultConnectionOptions(), &c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(address), std::string::npos) << s.ToString();
}

TEST(ConnectionSetupTest, RelativeAndOverlongAddressesAreRejected) {
  std::unique_ptr<Listener> listener;
  EXPECT_EQ(Listener::Listen("relative.sock", {}, &listener).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Listener::Listen("/" + std::string(200, 'x'), {}, &listener).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Listener::Listen("", {}, &listener).code(), StatusCode::kInvalidArgument);
}

TEST(ConnectionSetupTest, StaleSocketFileIsReplacedButLiveOneIsNot) {
  const std::string address = UniqueAddress("stale");
  {
    // A socket file left behind by a crashed server: bound, never unlinked.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, address.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)), 0);
    ::close(fd);
  }
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen(address, {}, &listener);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<Listener> second;
  s = Listener::Listen(address, {}, &second);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("in use"), std::string::npos) << s.ToString();
}

#ifdef GRPC_SHM_PORTABLE_POSIX
// The portable core, as on macOS and the BSDs, has no abstract names.
TEST(ConnectionSetupTest, AbstractAddressIsRefused) {
  std::unique_ptr<Listener> listener;
  Status s = Listener::Listen("@gshm-test-abstract-" + std::to_string(::getpid()), {}, &listener);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  std::unique_ptr<Connection> c;
  s = Connect("@gshm-test-abstract", DefaultConnectionOptions(), &c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
}
#elif defined(__linux__)
TEST(ConnectionSetupTest, AbstractAddressWorks) {
  const std::string address = "@gshm-test-abstract-" + std::to_string(::getpid());
  std::unique_ptr<Listener> listener;
  ASSERT_TRUE(Listener::Listen(address, {}, &listener).ok());
  pid_t child = ForkChild([&] {
    std::unique_ptr<Connection> c;
    if (!Connect(address, DefaultConnectionOptions(), &c).ok()) return 1;
    FrameHeader h{};
    h.aux = 77;
    return c->WriteFrame(h, nullptr, 0).ok() ? 0 : 2;
  });
  std::unique_ptr<Connection> c;
  ASSERT_TRUE(listener->Accept(&c, 10000).ok());
  FrameView f;
  ASSERT_TRUE(c->ReadFrame(&f, In(std::chrono::seconds(10))).ok());
  EXPECT_EQ(f.header.aux, 77u);
  EXPECT_EQ(WaitChild(child), 0);
}
#endif

}  // namespace
}  // namespace ipc
}  // namespace grpc_shm
