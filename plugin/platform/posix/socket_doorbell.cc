// Socket doorbell, the portable pollable wakeup that is safe against a
// hostile peer: a datagram socketpair whose two ends are separate open files,
// so the peer cannot change the flags of ours, and every call says
// MSG_DONTWAIT / MSG_NOSIGNAL itself. Ringing a full socket (EAGAIN) is fine:
// it is already rung. When the peer process dies its end closes and our end
// reports hang-up, a second liveness signal for free.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "plugin/platform/doorbells.h"
#include "plugin/platform/wait_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

#ifdef MSG_NOSIGNAL
constexpr int kNoSignal = MSG_NOSIGNAL;
#else
constexpr int kNoSignal = 0;  // SO_NOSIGPIPE is set on the socket instead
#endif

class SocketReceiver final : public WakeReceiver {
 public:
  explicit SocketReceiver(UniqueHandle fd) : fd_(std::move(fd)) {}
  NativeHandle poll_handle() const override { return fd_.get(); }
  Status Wait(std::atomic<uint32_t>*, uint32_t, NativeHandle liveness, int timeout_ms) override {
    return PollReadableOrHangup(fd_.get(), liveness, timeout_ms);
  }
  void Drain() override {
    char buf[16];
    // Bounded: a peer that rings without pause cannot keep us here.
    for (int i = 0; i < 64; ++i) {
      if (::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT) <= 0) break;
    }
  }

 private:
  UniqueHandle fd_;
};

class SocketSender final : public WakeSender {
 public:
  explicit SocketSender(UniqueHandle fd) : fd_(std::move(fd)) {}
  void Ring(std::atomic<uint32_t>*) override {
    const char one = 1;
    (void)!::send(fd_.get(), &one, 1, MSG_DONTWAIT | kNoSignal);
  }

 private:
  UniqueHandle fd_;
};

}  // namespace

Status CreateSocketDoorbell(DoorbellHandles* out) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) return ErrnoStatus("socketpair");
  out->wait.reset(sv[0]);
  out->ring.reset(sv[1]);
  for (int fd : sv) {
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return ErrnoStatus("fcntl FD_CLOEXEC");
#ifdef SO_NOSIGPIPE
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &yes, sizeof(yes));
#endif
  }
  return Status::Ok();
}

std::unique_ptr<WakeReceiver> MakeSocketReceiver(UniqueHandle wait) {
  return std::make_unique<SocketReceiver>(std::move(wait));
}
std::unique_ptr<WakeSender> MakeSocketSender(UniqueHandle ring) {
  return std::make_unique<SocketSender>(std::move(ring));
}

}  // namespace platform
}  // namespace grpc_shm
