// The hostile party of the hostile-peer tests (hostile_handshake_test,
// hostile_server_test, hostile_ring_test, peer_death_test). It never uses
// our Connect(): it speaks the handshake by hand (platform::ConnectLocal /
// SendMessage / ReceiveMessage with the structs of handshake_format.h), maps
// the segment itself and writes the shared control blocks and ring data at
// the SegmentLayout offsets. The other side is the real code, and the checks
// here say whether it survived: a clear status code and message, and a
// listener that still serves a well-behaved client.
//
// Children never return into gtest (_exit). Nothing here sleeps to
// synchronise: pipes, hang-ups and deadlines.
#ifndef GRPC_SHM_IPC_TESTS_HOSTILE_PEER_H_
#define GRPC_SHM_IPC_TESTS_HOSTILE_PEER_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/ipc/handshake_format.h"
#include "plugin/ipc/segment_layout.h"
#include "plugin/ipc/status.h"
#include "plugin/ipc/tests/test_util.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace ipc {
namespace testing {

// The vocabulary of every hostile-peer test (this namespace is test-only).
using platform::DoorbellKind;
using platform::SharedMemoryKind;
using platform::UniqueHandle;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Every socket operation and Accept of these tests waits at most this long.
constexpr int kIoTimeoutMs = 5000;

// An abstract socket address no other test (or test process) uses.
std::string NewAddress();

// The descriptors this process has open (the directory stream used to list
// them excluded), and how many.
std::vector<int> OpenFds();
int CountOpenFds();

// Reads one byte from `fd` within `timeout_ms`: true if one came.
bool ReadByte(int fd, int timeout_ms, char* out = nullptr);

::testing::AssertionResult HasCodeAndMessage(const Status& s, StatusCode code,
                                             const std::string& substring);
#define EXPECT_STATUS(s, code, sub) \
  EXPECT_TRUE(::grpc_shm::ipc::testing::HasCodeAndMessage((s), (code), (sub)))
#define ASSERT_STATUS(s, code, sub) \
  ASSERT_TRUE(::grpc_shm::ipc::testing::HasCodeAndMessage((s), (code), (sub)))

// A shared memory + doorbell pair to attack; `name` is the test-name suffix.
struct Backend {
  const char* name;
  SharedMemoryKind memory;
  DoorbellKind doorbell;
};
inline constexpr Backend kBackends[] = {
    {"MemfdEventFd", SharedMemoryKind::kMemfd, DoorbellKind::kEventFd},
    {"MemfdFutex", SharedMemoryKind::kMemfd, DoorbellKind::kFutex},
    {"PosixShmSocket", SharedMemoryKind::kPosixShm, DoorbellKind::kSocket},
    {"MemfdSocket", SharedMemoryKind::kMemfd, DoorbellKind::kSocket},
};
inline void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

// A well-formed hello for the given rings and backend.
ClientHello GoodHello(uint32_t ring_bytes = 4096,
                      SharedMemoryKind memory = SharedMemoryKind::kMemfd,
                      DoorbellKind doorbell = DoorbellKind::kEventFd);

// What a well-behaved client asks for: 8 KiB rings, kIoTimeoutMs handshake.
ConnectionOptions OptionsFor(SharedMemoryKind memory, DoorbellKind doorbell);

// Listens at `address` with exactly `options`; a failure fails the test.
std::unique_ptr<Listener> MakeListener(const std::string& address,
                                       const Listener::Options& options);

// A listener that admits every backend, so that each can be attacked
// (DefaultListener.RefusesUnsafeBackends checks that one left at its
// defaults refuses eventfd and POSIX shm).
std::unique_ptr<Listener> MakeListener(const std::string& address,
                                       milliseconds handshake_timeout = milliseconds(2000),
                                       uint32_t max_ring_bytes = kMaxRingBytes);

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
  // Where the client rings the server, and where the server rings the
  // client: the handles sent for eventfd, else (socket doorbells) the
  // handshake socket itself in both directions.
  int server_bell() const { return handles.size() == 3 ? handles[2].get() : socket.get(); }
  int client_bell() const { return handles.size() == 3 ? handles[1].get() : socket.get(); }
};

// Connects and sends `hello`; with `send_ready` also the ClientReady right
// behind it, so an in-process server can finish its half without a thread.
Status RawSendHello(const std::string& address, const ClientHello& hello, RawClient* raw,
                    bool send_ready);

// Receives the ServerHello and maps the segment by hand.
Status RawReceiveReply(RawClient* raw, SharedMemoryKind memory);

// A good in-process raw handshake against `listener`; returns the server's
// connection. The raw client then owns the segment. Fails with gtest
// assertions (call under ASSERT_NO_FATAL_FAILURE).
void RawHandshake(Listener* listener, const std::string& address, RawClient* raw,
                  std::unique_ptr<Connection>* server, uint32_t ring_bytes = 4096,
                  SharedMemoryKind memory = SharedMemoryKind::kMemfd,
                  DoorbellKind doorbell = DoorbellKind::kEventFd);

// Writes one record into a ring by hand (payload wrap handled byte-wise),
// advancing `*pos`. Only if `publish`: zeroes the next record's seal slot and
// then seals this one with `seal` (default: the right seal for `*pos`), as a
// RingWriter does.
void RawPutFrame(uint8_t* data, uint32_t capacity, uint64_t* pos, const FrameHeader& header,
                 const std::vector<uint8_t>& payload, bool publish,
                 size_t payload_bytes_to_write = SIZE_MAX, int seal = -1);

// `size` bytes that differ with `seed` and along the buffer.
std::vector<uint8_t> Pattern(size_t size, uint32_t seed);

FrameHeader MessageHeader(uint32_t payload_size, uint32_t stream = 1, uint8_t flags = 0);

// One message frame from the server's side, without waiting for space.
Status ServerWrite(Connection* c, const std::vector<uint8_t>& payload, uint32_t stream = 1);

// A copy of a frame's payload (both parts, if it wraps).
std::vector<uint8_t> Payload(const FrameView& f);

Clock::time_point Deadline(int ms = kIoTimeoutMs);

// A child process whose exit the parent can await with a timeout.
struct Child {
  pid_t pid = -1;
  int exit_fd = -1;  // read end of a pipe only the child writes: hangs up at exit
};

// Runs `body` in a forked child that keeps only stdio and `keep` (so what it
// holds cannot blur the parent's view of the peer); its return value becomes
// the exit status. Never returns into gtest in the child. Unlike
// testing::ForkChild, it closes what it inherits.
Child ForkIsolatedChild(const std::function<int()>& body, std::vector<int> keep = {});

// Waits for the child to exit within `timeout_ms` (SIGKILLs it if not);
// returns its exit code, or 1000 + signal, or -1 on timeout.
int WaitChild(Child* child, int timeout_ms = 10000);

// The survivor check: a well-behaved client in another process, using the
// real Connect(), is accepted by the same listener and gets an echo.
void ExpectListenerServesChildClient(Listener* listener,
                                     SharedMemoryKind memory = SharedMemoryKind::kMemfd,
                                     DoorbellKind doorbell = DoorbellKind::kEventFd);

// The same, in-process (Connect on a thread): for handshake cases.
void ExpectListenerServesClient(Listener* listener);

}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_TESTS_HOSTILE_PEER_H_
