// Socket doorbell, the portable pollable wakeup that is safe against a
// hostile peer: a socketpair whose two ends are separate open files,
// so the peer cannot change the flags of ours, and every call says
// MSG_DONTWAIT / MSG_NOSIGNAL itself. Ringing a full socket (EAGAIN) is fine:
// it is already rung. When the peer process dies its end closes and our end
// reports hang-up, a second liveness signal for free. A stream socket, so
// one read drains any number of rings.
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
    if (timeout_ms >= 0) return PollReadableOrHangup(fd_.get(), liveness, timeout_ms);
    // No deadline: one blocking read both waits and drains. It also sees the
    // peer go away, since the peer's end closes when it dies or Close()s.
    char buf[256];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n == 0) return Status(StatusCode::kPeerClosed, "peer hung up");
    if (n > 0 && n < static_cast<ssize_t>(sizeof(buf))) drained_ = true;
    return Status::Ok();
  }
  void Drain() override {
    if (drained_) {
      drained_ = false;
      return;
    }
    // One call takes every pending ring (a stream socket merges them); a
    // bounded loop only if the peer rang more than a buffer's worth, so a
    // peer that rings without pause cannot keep us here.
    char buf[256];
    for (int i = 0; i < 16; ++i) {
      if (::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT) < static_cast<ssize_t>(sizeof(buf))) {
        break;
      }
    }
  }

 private:
  UniqueHandle fd_;
  bool drained_ = false;  // the last Wait() already took every pending ring
};

class SocketSender final : public WakeSender {
 public:
  explicit SocketSender(UniqueHandle fd) : fd_(std::move(fd)) {}
  void Ring(std::atomic<uint32_t>*) override {
    const char one = 1;
    (void)!::send(fd_.get(), &one, 1, MSG_DONTWAIT | kNoSignal);
  }
  void Close() override { ::shutdown(fd_.get(), SHUT_WR); }

 private:
  UniqueHandle fd_;
};

}  // namespace

Status CreateSocketDoorbell(DoorbellHandles* out) {
  int sv[2];
#ifdef SOCK_CLOEXEC
  // Close-on-exec from the start: a fork + exec on another thread must not
  // carry a doorbell into a stranger's process.
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus("socketpair");
  }
  out->wait.reset(sv[0]);
  out->ring.reset(sv[1]);
#else
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return ErrnoStatus("socketpair");
  out->wait.reset(sv[0]);
  out->ring.reset(sv[1]);
#endif
#if !defined(SOCK_CLOEXEC) || defined(SO_NOSIGPIPE)
  for (int fd : sv) {
#ifndef SOCK_CLOEXEC
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return ErrnoStatus("fcntl FD_CLOEXEC");
#endif
#ifdef SO_NOSIGPIPE
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &yes, sizeof(yes));
#endif
  }
#endif
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
