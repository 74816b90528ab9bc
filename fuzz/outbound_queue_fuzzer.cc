// The transport's OutboundQueue (plugin/transport/outbound_queue.h) under
// fuzzer-chosen sequences of its operations, writing into a real connection
// pair in this process whose other end the fuzzer drains when it chooses
// (so the ring fills, and frames wait for space).
//
// Each input plays the transport's part within the queue's contract: stream
// ids are not reused once forgotten, DropStream only on a stream held since
// before its first frame. A model of what was pushed checks what arrives:
// - per-stream order: each stream's frames arrive in the order pushed, with
//   their bytes, skipping only frames the queue was told to drop;
// - a message's chunks are contiguous on the wire but for control frames;
// - every message's completion runs exactly once, OK only once its last
//   chunk is in the ring, and every completed message arrives whole;
// - control frames arrive in the order pushed and are never held behind
//   data: a Flush that stops with control frames left stopped at a full
//   ring;
// - a stream starts a message only with window left (bounded by what the
//   peer granted: the window cannot grow past its size).
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "plugin/ipc/connection.h"
#include "plugin/transport/limits.h"
#include "plugin/transport/outbound_queue.h"

namespace {

using grpc_shm::transport::kStreamWindow;
using grpc_shm::transport::MessageCharge;
using grpc_shm::transport::OutboundQueue;
namespace ipc = grpc_shm::ipc;

struct Pair {
  std::unique_ptr<ipc::Connection> sender, receiver;
};

// Connection pairs of a small and a medium ring, made once: a handshake per
// input would cost more than the input.
Pair& PairOf(int which) {
  static Pair* pairs = [] {
    auto* p = new Pair[2];
    const uint32_t sizes[2] = {4096, 64 * 1024};
    for (int i = 0; i < 2; ++i) {
      const std::string address =
          "@grpc-shm-outbound-fuzzer-" + std::to_string(getpid()) + "-" + std::to_string(i);
      std::unique_ptr<ipc::Listener> listener;
      ipc::Listener::Options listen_options;
      listen_options.max_ring_bytes = sizes[i];
      FUZZ_CHECK(ipc::Listener::Listen(address, listen_options, &listener).ok(), "listen");
      ipc::ConnectionOptions options = ipc::DefaultConnectionOptions();
      options.ring_bytes = sizes[i];
      ipc::Status connected;
      std::thread client([&] { connected = ipc::Connect(address, options, &p[i].receiver); });
      ipc::Status accepted = listener->Accept(&p[i].sender, 5000);
      client.join();
      FUZZ_CHECK(accepted.ok() && connected.ok(), "%s / %s", accepted.ToString().c_str(),
                 connected.ToString().c_str());
    }
    return p;
  }();
  return pairs[which];
}

constexpr uint32_t kStreams[] = {1, 3, 5, 7, 9};
constexpr uint8_t kControlTypes[] = {ipc::kFrameWindowUpdate, ipc::kFramePingAck, ipc::kFrameGoaway,
                                     ipc::kFrameSettings, ipc::kFrameReset};

std::string Pattern(uint64_t serial, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(serial * 37 + i + (i >> 9));
  return s;
}

struct Expected {
  uint64_t serial;
  uint8_t type;
  std::string bytes;  // payload, or the whole message
  bool is_message = false;
  bool droppable = false;  // the queue was told it may drop it
};

struct StreamModel {
  std::deque<Expected> expected;
  bool held = false;
  bool held_from_start = false;  // held before its first frame, never released
  bool pushed = false;
  bool forgotten = false;
  int64_t granted = 0;  // window the peer gave back, in total
  int64_t charged = 0;  // charges of the messages started so far
};

struct MessageState {
  int done_calls = 0;
  bool ok = false;
  bool arrived = false;
};

class QueueHarness {
 public:
  QueueHarness(FuzzedDataProvider* in, Pair* pair) : in_(*in), pair_(*pair) {}

  void Run() {
    size_t pushed_bytes = 0;
    while (in_.remaining_bytes() > 0) {
      const uint32_t id = kStreams[in_.ConsumeIntegralInRange<size_t>(0, 4)];
      StreamModel& s = streams_[id];
      switch (in_.ConsumeIntegralInRange(0, 12)) {
        case 0:
        case 1: {
          if (s.forgotten) break;
          // Mostly small; some span many chunks; a few overdraw a window.
          const int kind = in_.ConsumeIntegralInRange(0, 15);
          const size_t size = kind == 0  ? in_.ConsumeIntegralInRange<size_t>(0, 5u << 20)
                              : kind < 4 ? in_.ConsumeIntegralInRange<size_t>(0, 64u << 10)
                                         : in_.ConsumeIntegralInRange<size_t>(0, 300);
          if (pushed_bytes + size > (24u << 20)) break;  // memory per input stays bounded
          pushed_bytes += size;
          PushMessage(id, s, size);
          break;
        }
        case 2: {
          if (s.forgotten) break;
          const uint8_t type =
              in_.ConsumeBool() ? ipc::kFrameInitialMetadata : ipc::kFrameTrailingMetadata;
          std::string payload = Pattern(serial_, in_.ConsumeIntegralInRange<size_t>(0, 200));
          Note(s, type, payload, false);
          queue_.PushFrame(type, id, 0, static_cast<uint32_t>(serial_++), std::move(payload));
          break;
        }
        case 3: {
          const uint8_t type = kControlTypes[in_.ConsumeIntegralInRange<size_t>(0, 4)];
          std::string payload = Pattern(serial_, in_.ConsumeIntegralInRange<size_t>(0, 40));
          control_.push_back(serial_);
          queue_.PushControl(type, in_.ConsumeIntegral<uint32_t>(),
                             static_cast<uint32_t>(serial_++), std::move(payload));
          break;
        }
        case 4:
        case 5:
          Flush();
          break;
        case 6:
          Drain(in_.ConsumeIntegralInRange<size_t>(1, 64));
          break;
        case 7: {
          const uint32_t bytes = in_.ConsumeIntegral<uint32_t>();
          if (!s.forgotten) s.granted += bytes;
          queue_.GrantWindow(id, bytes);
          break;
        }
        case 8:
          // The transport holds a stream only before its first frame.
          if (s.forgotten || s.pushed) break;
          s.held_from_start = true;
          s.held = true;
          queue_.HoldStream(id);
          break;
        case 9:
          s.held = false;
          s.held_from_start = false;
          queue_.ReleaseStream(id);
          break;
        case 10:
          s.forgotten = true;
          queue_.ForgetStream(id);
          break;
        case 11:
          for (Expected& e : s.expected) {
            if (e.is_message) e.droppable = true;  // unless partly written
          }
          queue_.DropMessagesOf(id, absl::CancelledError("dropped"));
          break;
        case 12:
          if (!s.held_from_start || s.forgotten) break;
          for (Expected& e : s.expected) e.droppable = true;
          s.forgotten = true;
          queue_.DropStream(id, absl::CancelledError("dropped stream"));
          break;
      }
    }
    Finish();
  }

 private:
  void Note(StreamModel& s, uint8_t type, const std::string& bytes, bool is_message) {
    Expected e;
    e.serial = serial_;
    e.type = type;
    e.bytes = bytes;
    e.is_message = is_message;
    s.expected.push_back(std::move(e));
    s.pushed = true;
  }

  void PushMessage(uint32_t id, StreamModel& s, size_t size) {
    const uint64_t serial = serial_++;
    std::string bytes = Pattern(serial, size);
    Expected e;
    e.serial = serial;
    e.type = ipc::kFrameMessage;
    e.is_message = true;
    grpc_core::SliceBuffer message;
    // Several slices, as gRPC hands them over.
    size_t at = 0;
    while (at < size) {
      const size_t take = std::min<size_t>(size - at, 1 + (serial * 977 + at) % 70000);
      message.Append(grpc_core::Slice::FromCopiedBuffer(bytes.data() + at, take));
      at += take;
    }
    e.bytes = std::move(bytes);
    s.expected.push_back(std::move(e));
    s.pushed = true;
    messages_[serial];
    queue_.PushMessage(id, 0, message, [this, serial](grpc_error_handle error) {
      MessageState& m = messages_[serial];
      ++m.done_calls;
      FUZZ_CHECK(m.done_calls == 1, "message %llu completed %d times",
                 static_cast<unsigned long long>(serial), m.done_calls);
      m.ok = error.ok();
    });
  }

  void Flush() {
    ipc::Status status = queue_.Flush(pair_.sender.get());
    FUZZ_CHECK(status.ok() || status.code() == ipc::StatusCode::kWouldBlock, "flush: %s",
               status.ToString().c_str());
    FUZZ_CHECK(status.ok() != queue_.waiting_for_ring(), "flush %s but waiting_for_ring %d",
               status.ToString().c_str(), queue_.waiting_for_ring());
    if (queue_.control_frames() > 0) {
      FUZZ_CHECK(status.code() == ipc::StatusCode::kWouldBlock,
                 "%zu control frames left behind by a flush that was not blocked by the ring",
                 queue_.control_frames());
    }
  }

  // Reads up to `max_frames` frames from the receiving end and checks them.
  void Drain(size_t max_frames) {
    ipc::FrameView frame;
    for (size_t n = 0; n < max_frames && pair_.receiver->Peek(&frame).ok(); ++n) {
      std::string payload(frame.payload_size(), '\0');
      frame.CopyPayloadTo(reinterpret_cast<uint8_t*>(&payload[0]));
      const ipc::FrameHeader header = frame.header;
      pair_.receiver->Consume();
      if (draining_leftovers_) continue;
      Check(header, payload);
    }
  }

  void Check(const ipc::FrameHeader& h, const std::string& payload) {
    const bool control = h.type != ipc::kFrameMessage && h.type != ipc::kFrameInitialMetadata &&
                         h.type != ipc::kFrameTrailingMetadata;
    if (control) {
      FUZZ_CHECK(!control_.empty() && control_.front() == h.aux,
                 "control frame %u out of order (expected %llu)", h.aux,
                 control_.empty() ? 0ull : static_cast<unsigned long long>(control_.front()));
      FUZZ_CHECK(payload == Pattern(h.aux, payload.size()), "control frame %u payload", h.aux);
      control_.pop_front();
      return;
    }
    if (assembling_) {
      FUZZ_CHECK(h.type == ipc::kFrameMessage && h.stream_id == assembling_stream_,
                 "frame type %u of stream %u between chunks of a message on stream %u", h.type,
                 h.stream_id, assembling_stream_);
    }
    if (h.type == ipc::kFrameMessage) {
      assembled_ += payload;
      if (h.flags & ipc::kFlagMoreChunks) {
        assembling_ = true;
        assembling_stream_ = h.stream_id;
        return;
      }
      assembling_ = false;
    }
    auto it = streams_.find(h.stream_id);
    FUZZ_CHECK(it != streams_.end(), "frame for unknown stream %u", h.stream_id);
    StreamModel& s = it->second;
    FUZZ_CHECK(!s.held, "frame of held stream %u", h.stream_id);
    const std::string& bytes = h.type == ipc::kFrameMessage ? assembled_ : payload;
    // Skip what the queue was allowed to drop, up to the frame that arrived.
    while (!s.expected.empty()) {
      Expected& e = s.expected.front();
      // (Messages are told apart by their completion too: two empty ones
      // have the same bytes, and only one may have been dropped.)
      const bool match =
          e.type == h.type && e.bytes == bytes &&
          (e.is_message ? messages_[e.serial].ok : h.aux == static_cast<uint32_t>(e.serial));
      if (match) break;
      FUZZ_CHECK(e.droppable,
                 "stream %u: frame type %u (%zu bytes) arrived where %s %llu "
                 "(%zu bytes) was due",
                 h.stream_id, h.type, bytes.size(), e.is_message ? "message" : "frame",
                 static_cast<unsigned long long>(e.serial), e.bytes.size());
      if (e.is_message) {
        FUZZ_CHECK(!messages_[e.serial].ok, "message %llu reported sent but never arrived",
                   static_cast<unsigned long long>(e.serial));
      }
      s.expected.pop_front();
    }
    FUZZ_CHECK(!s.expected.empty(), "stream %u: frame type %u that was never pushed", h.stream_id,
               h.type);
    Expected e = std::move(s.expected.front());
    s.expected.pop_front();
    if (e.is_message) {
      MessageState& m = messages_[e.serial];
      FUZZ_CHECK(m.done_calls == 1 && m.ok, "message %llu in the ring, completion %d/%d",
                 static_cast<unsigned long long>(e.serial), m.done_calls, m.ok);
      m.arrived = true;
      // It started with window left: what it and the earlier messages were
      // charged is less than the window plus everything granted.
      FUZZ_CHECK(s.charged < kStreamWindow + s.granted,
                 "stream %u started a message with no window (charged %lld, granted %lld)",
                 h.stream_id, static_cast<long long>(s.charged), static_cast<long long>(s.granted));
      s.charged += MessageCharge(e.bytes.size());
      assembled_.clear();
    }
  }

  void Finish() {
    // Everything that may go, goes: flush and drain until the queue is
    // left with only what waits for window or a held stream.
    for (int i = 0; i < 100000; ++i) {
      Flush();
      const bool blocked = queue_.waiting_for_ring();
      Drain(SIZE_MAX);
      if (!blocked) break;
    }
    FUZZ_CHECK(!queue_.waiting_for_ring() && queue_.control_frames() == 0,
               "queue stuck with %zu control frames", queue_.control_frames());
    FUZZ_CHECK(control_.empty(), "%zu control frames never arrived", control_.size());
    queue_.Clear(absl::UnavailableError("connection gone"));
    for (auto& entry : messages_) {
      const MessageState& m = entry.second;
      FUZZ_CHECK(m.done_calls == 1, "message %llu completed %d times",
                 static_cast<unsigned long long>(entry.first), m.done_calls);
      FUZZ_CHECK(!m.ok || m.arrived, "message %llu reported sent, never arrived",
                 static_cast<unsigned long long>(entry.first));
    }
    // A message cut short by Clear may have left chunks in the ring: the
    // next input starts from an empty ring.
    draining_leftovers_ = true;
    Drain(SIZE_MAX);
  }

  FuzzedDataProvider& in_;
  Pair& pair_;
  OutboundQueue queue_;
  std::map<uint32_t, StreamModel> streams_;
  std::map<uint64_t, MessageState> messages_;
  std::deque<uint64_t> control_;
  uint64_t serial_ = 1;
  bool assembling_ = false;
  uint32_t assembling_stream_ = 0;
  std::string assembled_;
  bool draining_leftovers_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Pair& pair = PairOf(in.ConsumeBool() ? 1 : 0);
  QueueHarness(&in, &pair).Run();
  return 0;
}
