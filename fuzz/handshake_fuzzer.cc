// The server half of the handshake (ipc::ServerHandshake, handshake.cc) fed
// by a client the fuzzer plays over a socket pair: a hello and a
// confirmation whose fields the fuzzer picks (mostly valid, so the server
// gets as far as setting up memory), sent in fuzzer-chosen pieces with any
// number of descriptors attached to each, with Advance() called in between
// as a poller would, and the client hanging up at a chosen point.
//
// Invariants: no crash or sanitizer report; every descriptor the client
// sends and everything the server set up is closed once the handshake (and
// the connection it made, if any) is gone, however it ended; once the client
// has hung up the handshake finishes instead of waiting (a level-triggered
// poller would otherwise spin on it); a handshake that succeeds sent the
// client a hello it accepts.
#include <dirent.h>
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "plugin/ipc/connection.h"
#include "plugin/ipc/handshake_format.h"

namespace {

using namespace grpc_shm::ipc;  // NOLINT: a fuzzer of this one namespace
namespace platform = grpc_shm::platform;

int OpenDescriptors() {
  int n = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
    closedir(dir);
  }
  return n - 1;  // the directory itself
}

// Listeners with the option sets a server may run with; BeginHandshake only
// takes their options, so one of each serves every input.
std::vector<std::unique_ptr<Listener>>& Listeners() {
  static auto* listeners = [] {
    auto* v = new std::vector<std::unique_ptr<Listener>>();
    for (int variant = 0; variant < 3; ++variant) {
      Listener::Options options;
      options.max_ring_bytes = 16 * 1024;  // memory set up per input stays small
      if (variant == 1) {
        options.allow_eventfd = true;
        options.allow_posix_shm = true;
        options.allow_futex = false;
      }
      if (variant == 2) {
        options.admit = [](const platform::PeerCredentials&) {
          return Status(StatusCode::kProtocol, "not admitted");
        };
      }
      std::unique_ptr<Listener> listener;
      const std::string address =
          "@grpc-shm-handshake-fuzzer-" + std::to_string(getpid()) + "-" + std::to_string(variant);
      Status s = Listener::Listen(address, options, &listener);
      FUZZ_CHECK(s.ok(), "%s", s.ToString().c_str());
      v->push_back(std::move(listener));
    }
    return v;
  }();
  return *listeners;
}

template <typename T>
void Append(std::string* out, const T& value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(value));
}

// What the client sends: a hello, a confirmation, maybe more bytes.
std::string ClientBytes(FuzzedDataProvider& in) {
  ClientHello hello{};
  hello.magic =
      in.ConsumeIntegralInRange(0, 15) == 0 ? in.ConsumeIntegral<uint32_t>() : kHelloMagic;
  hello.version =
      in.ConsumeIntegralInRange(0, 15) == 0 ? in.ConsumeIntegral<uint32_t>() : kProtocolVersion;
  hello.memory_kind = in.ConsumeIntegralInRange<uint32_t>(0, 3);
  hello.doorbell_kind = in.ConsumeIntegralInRange<uint32_t>(0, 4);
  hello.c2s_bytes = in.ConsumeIntegral<uint32_t>();
  hello.s2c_bytes = in.ConsumeIntegral<uint32_t>();
  hello.reserved[0] = in.ConsumeIntegral<uint32_t>();
  ClientReady ready{};
  ready.magic = in.ConsumeIntegralInRange(0, 7) == 0 ? in.ConsumeIntegral<uint32_t>() : kReadyMagic;
  ready.reserved = in.ConsumeIntegral<uint32_t>();
  std::string bytes;
  Append(&bytes, hello);
  Append(&bytes, ready);
  bytes += in.ConsumeRandomLengthString(64);
  return bytes;
}

class Handshake {
 public:
  Handshake(FuzzedDataProvider* in, Listener* listener) : in_(*in) {
    int fds[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
    client_ = platform::UniqueHandle(fds[0]);
    // Accepted sockets are non-blocking (accept4 with SOCK_NONBLOCK).
    FUZZ_CHECK(::fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0, "fcntl");
    handshake_ = listener->BeginHandshake(platform::UniqueHandle(fds[1]));
  }

  void Run() {
    const std::string bytes = ClientBytes(in_);
    size_t sent = 0;
    const size_t hang_up_at = in_.ConsumeIntegralInRange<size_t>(0, bytes.size() + 8);
    while (!done_ && sent < bytes.size() && sent < hang_up_at) {
      const size_t piece = in_.ConsumeIntegralInRange<size_t>(1, bytes.size() - sent);
      SendPiece(bytes.data() + sent, piece);
      sent += piece;
      for (int i = in_.ConsumeIntegralInRange(0, 2); i > 0 && !done_; --i) Advance();
    }
    // The client hangs up (write side: the server's answer stays readable).
    ::shutdown(client_.get(), SHUT_WR);
    for (int i = 0; i < 4 && !done_; ++i) Advance();
    FUZZ_CHECK(done_, "handshake still waiting after the client hung up");
    if (result_.ok()) CheckClientAccepts();
  }

 private:
  void SendPiece(const char* data, size_t size) {
    std::vector<platform::UniqueHandle> attached;
    std::vector<platform::NativeHandle> handles;
    int count = 0;
    switch (in_.ConsumeIntegralInRange(0, 7)) {
      case 0:
        count = in_.ConsumeIntegralInRange(1, 3);
        break;
      case 1:
        count = in_.ConsumeIntegralInRange(4, 16);
        break;
      default:
        break;
    }
    for (int i = 0; i < count; ++i) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      FUZZ_CHECK(fd >= 0, "open");
      attached.emplace_back(fd);
      handles.push_back(fd);
    }
    // May fail (too many descriptors for one message, server gone): the
    // server sees whatever arrived.
    (void)platform::SendMessage(client_.get(), data, size, handles, 0);
  }

  void Advance() {
    Status s = handshake_->Advance(&connection_);
    if (s.code() == StatusCode::kWouldBlock) return;
    done_ = true;
    result_ = s;
    FUZZ_CHECK(s.ok() == (connection_ != nullptr), "%s with connection %p", s.ToString().c_str(),
               static_cast<void*>(connection_.get()));
  }

  void CheckClientAccepts() {
    ServerHello reply{};
    std::vector<platform::UniqueHandle> handles;
    Status s = platform::ReceiveMessage(client_.get(), &reply, sizeof(reply), 3, &handles, 0);
    FUZZ_CHECK(s.ok(), "client cannot read the server hello: %s", s.ToString().c_str());
    FUZZ_CHECK(reply.magic == kHelloMagic && reply.status == 0 &&
                   reply.num_handles == handles.size() && IsValidRingSize(reply.c2s_bytes) &&
                   IsValidRingSize(reply.s2c_bytes) && reply.c2s_bytes <= 16 * 1024,
               "bad server hello: status %u, %u handles (%zu sent), rings %u/%u", reply.status,
               reply.num_handles, handles.size(), reply.c2s_bytes, reply.s2c_bytes);
  }

  FuzzedDataProvider& in_;
  platform::UniqueHandle client_;
  std::unique_ptr<ServerHandshake> handshake_;
  std::unique_ptr<Connection> connection_;
  bool done_ = false;
  Status result_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& listeners = Listeners();
  const int before = OpenDescriptors();
  {
    FuzzedDataProvider in(data, size);
    Listener* listener =
        listeners[in.ConsumeIntegralInRange<size_t>(0, listeners.size() - 1)].get();
    Handshake(&in, listener).Run();
  }
  const int after = OpenDescriptors();
  FUZZ_CHECK(after == before, "%d descriptors open before the handshake, %d after", before, after);
  return 0;
}
