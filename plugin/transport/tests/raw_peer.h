// A client that speaks grpc-shm's wire protocol itself, through the IPC
// core, so tests can play a peer that ignores every rule against a real gRPC
// server in another process. Also reads what a process holds (/proc), so
// tests can check that a server's memory, descriptors, mappings and threads
// stay bounded while such a peer works on it.
#ifndef GRPC_SHM_TRANSPORT_TESTS_RAW_PEER_H_
#define GRPC_SHM_TRANSPORT_TESTS_RAW_PEER_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"

namespace grpc_shm {
namespace testing {

class RawPeer {
 public:
  using Clock = ipc::Connection::Clock;

  // Connects to `ipc_address` ("@name" or a path) and reads the server's
  // settings frame. Null (with `status` set) on failure.
  static std::unique_ptr<RawPeer> Connect(const std::string& ipc_address, ipc::Status* status);

  // What the server announced in its settings frame.
  uint32_t max_concurrent_streams() const { return max_concurrent_streams_; }
  ipc::Connection& connection() { return *connection_; }

  // Writes one frame, waiting for ring space up to `timeout`.
  ipc::Status Send(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                   const std::string& payload = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Writes one frame if it fits now (kWouldBlock when the ring is full).
  ipc::Status TrySend(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                      const std::string& payload = {});

  // Opens stream `id` on `method` ("/grpc_shm.test.EchoTest/Unary").
  ipc::Status OpenStream(uint32_t id, const std::string& method);
  // Sends `message` (serialized protobuf) as one message frame.
  ipc::Status SendMessage(uint32_t id, const std::string& message);

  // The next frame (payload copied out), waiting up to `timeout`; the
  // status is kPeerClosed once the server has hung up and the ring is empty.
  struct Frame {
    ipc::FrameHeader header{};
    std::string payload;
  };
  ipc::Status Read(Frame* frame, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads until a frame of `type` for `stream_id` arrives (returned), the
  // server hangs up, or `timeout` passes.
  ipc::Status ReadUntil(uint8_t type, uint32_t stream_id, Frame* frame,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads (and drops) frames until the server hangs up; true if it did
  // within `timeout`.
  bool WaitForHangup(std::chrono::milliseconds timeout = std::chrono::seconds(20));

 private:
  std::unique_ptr<ipc::Connection> connection_;
  uint32_t max_concurrent_streams_ = 0;
};

// A metadata block with these entries, as the transport encodes it.
std::string MetadataBlock(const std::vector<std::pair<std::string, std::string>>& entries);

// What a process holds now, read from /proc.
struct ProcessUsage {
  size_t rss_kib = 0;
  int descriptors = 0;
  int threads = 0;
  int memfd_mappings = 0;  // mappings of memfd segments (our rings)
  int eventfds = 0;        // of `descriptors`
};
ProcessUsage UsageOf(pid_t pid);
// "fd -> what it is", one per open descriptor of `pid`: for failure messages.
std::string DescribeDescriptors(pid_t pid);

}  // namespace testing
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_TESTS_RAW_PEER_H_
