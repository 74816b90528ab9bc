// Socket doorbell, the portable pollable wakeup that is safe against a
// hostile peer: the connection's own local socket, in both directions. A
// byte written wakes the peer, reading drains any number of rings (a stream
// socket merges them), and end of file is the peer's hang-up, so one
// descriptor carries wake-ups and liveness alike. Each side owns its end as
// a separate open file, so the peer cannot change the flags of ours, and
// every call says MSG_DONTWAIT / MSG_NOSIGNAL itself. Ringing a full socket
// (EAGAIN) is fine: the peer has a ring pending already. A peer that floods
// us with bytes costs a bounded read per wake-up; one that sends descriptors
// along has them closed by the kernel (we never ask for control data).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

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

#ifdef POLLRDHUP
constexpr short kHangupEvents = POLLHUP | POLLERR | POLLRDHUP;
#else
constexpr short kHangupEvents = POLLHUP | POLLERR;
#endif

class SocketReceiver final : public WakeReceiver {
 public:
  // `owned` may be empty: then `fd` is borrowed and must outlive us.
  SocketReceiver(UniqueHandle owned, NativeHandle fd) : owned_(std::move(owned)), fd_(fd) {}
  NativeHandle poll_handle() const override { return fd_; }
  Status Wait(std::atomic<uint32_t>*, uint32_t, NativeHandle liveness, int timeout_ms) override {
    if (liveness != fd_ && liveness != kInvalidHandle) {
      // A doorbell apart from the liveness socket: watch both.
      return PollReadableOrHangup(fd_, liveness, timeout_ms);
    }
    if (hung_up_.load(std::memory_order_relaxed)) return HungUp();
    pollfd p = {fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0) return errno == EINTR ? Status::Ok() : ErrnoStatus("poll");
    if (r == 0) return Status(StatusCode::kTimeout, "timed out waiting for the peer");
    // Readable: rings, end of file, or both. Take them now, so that the end
    // of file is seen here and not polled for again.
    DrainUpTo(kDrainReads);
    drained_ = true;
    return hung_up_.load(std::memory_order_relaxed) ? HungUp() : Status::Ok();
  }
  void Drain() override {
    if (drained_) {
      drained_ = false;
      return;
    }
    DrainUpTo(kDrainReads);
  }
  bool PeerHungUp() const override { return hung_up_.load(std::memory_order_relaxed); }

 private:
  // A bound on the reads per drain, so a peer that rings without pause
  // cannot keep us here; the rest is taken at the next wake-up.
  static constexpr int kDrainReads = 16;

  static Status HungUp() { return Status(StatusCode::kPeerClosed, "peer hung up"); }

  void DrainUpTo(int reads) {
    char buf[256];
    for (int i = 0; i < reads; ++i) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0) {
        hung_up_.store(true, std::memory_order_relaxed);  // end of file: every ring is read
        return;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        // EAGAIN: drained. Anything else (ECONNRESET) ends the connection.
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          hung_up_.store(true, std::memory_order_relaxed);
        return;
      }
    }
  }

  UniqueHandle owned_;
  const NativeHandle fd_;
  bool drained_ = false;  // the last Wait() already took the pending rings
  // Read end of file (or a reset): the peer is gone. Atomic: CheckAlive()
  // may ask from another thread than the reader's.
  std::atomic<bool> hung_up_{false};
};

class SocketSender final : public WakeSender {
 public:
  SocketSender(UniqueHandle owned, NativeHandle fd) : owned_(std::move(owned)), fd_(fd) {}
  void Ring(std::atomic<uint32_t>*) override {
    const char one = 1;
    (void)!::send(fd_, &one, 1, MSG_DONTWAIT | kNoSignal);
  }
  // A borrowed socket is hung up by its owner (the connection).
  void Close() override {
    if (owned_.valid()) ::shutdown(fd_, SHUT_WR);
  }

 private:
  UniqueHandle owned_;
  const NativeHandle fd_;
};

}  // namespace

std::unique_ptr<WakeReceiver> MakeSocketReceiver(UniqueHandle wait) {
  const NativeHandle fd = wait.get();
  return std::make_unique<SocketReceiver>(std::move(wait), fd);
}
std::unique_ptr<WakeSender> MakeSocketSender(UniqueHandle ring) {
  const NativeHandle fd = ring.get();
  return std::make_unique<SocketSender>(std::move(ring), fd);
}

std::unique_ptr<WakeReceiver> MakeSocketWakeReceiver(NativeHandle socket) {
  return std::make_unique<SocketReceiver>(UniqueHandle(), socket);
}
std::unique_ptr<WakeSender> MakeSocketWakeSender(NativeHandle socket) {
  return std::make_unique<SocketSender>(UniqueHandle(), socket);
}

bool PeerHungUp(NativeHandle socket) {
  pollfd p = {socket, static_cast<short>(POLLIN | kHangupEvents), 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (kHangupEvents | POLLNVAL)) != 0;
}

}  // namespace platform
}  // namespace grpc_shm
