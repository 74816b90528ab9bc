// Hostile servers against the client half of the handshake: a fake server
// lies to Connect() in every field of its reply and in the descriptors it
// hands over (HostileServer), or hands the client a blocking doorbell
// (HostileServerDoorbell). Connect() must refuse each lie with a clear status
// and leak nothing, and never hang.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/handshake_format.h"
#include "plugin/ipc/segment_layout.h"
#include "plugin/ipc/status.h"
#include "plugin/ipc/tests/hostile_peer.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace ipc {
namespace testing {
namespace {

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
  if (doorbell == DoorbellKind::kEventFd) {
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
      {"SocketDoorbellWithHandlesOfItsOwn", memfd, pipe,
       [](const ClientHello& h, ServerHello* r, std::vector<UniqueHandle>* fds) {
         // Socket doorbells are the handshake socket: descriptors sent as
         // doorbells anyway are refused, not held.
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

// A hostile server marks itself as sleeping on data again and again and
// never reads its doorbell, the handshake socket, until the socket buffer is
// full. The client's rings must never block on it (a full buffer already
// means a ring is pending).
TEST(HostileServerDoorbell, ServerThatNeverReadsItsDoorbellDoesNotHangTheClient) {
  const std::string address = NewAddress();
  UniqueHandle listen;
  ASSERT_TRUE(platform::ListenLocal(address, 4, &listen).ok());
  Child child = ForkIsolatedChild(
      [&]() -> int {
        std::unique_ptr<Connection> c;
        ConnectionOptions options = OptionsFor(SharedMemoryKind::kMemfd, DoorbellKind::kSocket);
        options.ring_bytes = 4096;
        Status s = Connect(address, options, &c);
        if (!s.ok()) return 1;
        // Far more rings than any socket buffer holds.
        for (int i = 0; i < 200000; ++i) c->NotifyPeerOfData();
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
  ASSERT_EQ(handles.size(), 1u);
  platform::MappedRegion map;
  ASSERT_TRUE(platform::MapSharedMemory(SharedMemoryKind::kMemfd, handles[0].get(),
                                        SegmentLayout{4096, 4096}.total_bytes(), &map)
                  .ok());
  auto* server_wait = reinterpret_cast<WaitWord*>(map.data() + SegmentLayout::kServerWaitOffset);
  server_wait->bits.store(kWaitingForData);
  // Each ring clears the bit; set it again for as long as the client runs.
  std::atomic<bool> stop{false};
  std::thread sleeper([&] {
    while (!stop.load()) {
      server_wait->bits.store(kWaitingForData);
      std::this_thread::yield();
    }
  });
  std::vector<platform::NativeHandle> raw = {handles[0].get()};
  ASSERT_TRUE(platform::SendMessage(sock.get(), &reply, sizeof(reply), raw, kIoTimeoutMs).ok());
  handles.clear();
  // The client's ClientReady and every ring stay unread in `sock`.
  const int rc = WaitChild(&child, 10000);
  stop.store(true);
  sleeper.join();
  EXPECT_EQ(rc, 0) << "the client hung (or failed) ringing a server that never reads its doorbell";
}

}  // namespace
}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm
