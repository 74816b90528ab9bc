// Pipe doorbell, the portable pollable wakeup: the sleeper holds the read end,
// the peer the write end. Ringing writes one byte; a full pipe already means
// "rung", so EAGAIN is fine.
#include <fcntl.h>
#include <unistd.h>

#include "plugin/platform/doorbells.h"
#include "plugin/platform/wait_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

class PipeReceiver final : public WakeReceiver {
 public:
  explicit PipeReceiver(UniqueHandle fd) : fd_(std::move(fd)) {}
  NativeHandle poll_handle() const override { return fd_.get(); }
  Status Wait(std::atomic<uint32_t>*, uint32_t, NativeHandle liveness, int timeout_ms) override {
    return PollReadableOrHangup(fd_.get(), liveness, timeout_ms);
  }
  void Drain() override {
    char buf[64];
    while (::read(fd_.get(), buf, sizeof(buf)) == static_cast<ssize_t>(sizeof(buf))) {
    }
  }

 private:
  UniqueHandle fd_;
};

class PipeSender final : public WakeSender {
 public:
  explicit PipeSender(UniqueHandle fd) : fd_(std::move(fd)) {}
  void Ring(std::atomic<uint32_t>*) override {
    const char one = 1;
    (void)!::write(fd_.get(), &one, 1);
  }

 private:
  UniqueHandle fd_;
};

Status SetNonBlockingCloexec(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return ErrnoStatus("fcntl O_NONBLOCK");
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return ErrnoStatus("fcntl FD_CLOEXEC");
  return Status::Ok();
}

}  // namespace

Status CreatePipeDoorbell(DoorbellHandles* out) {
  int fds[2];
  if (::pipe(fds) != 0) return ErrnoStatus("pipe");
  out->wait.reset(fds[0]);
  out->ring.reset(fds[1]);
  Status s = SetNonBlockingCloexec(fds[0]);
  if (s.ok()) s = SetNonBlockingCloexec(fds[1]);
  return s;
}

std::unique_ptr<WakeReceiver> MakePipeReceiver(UniqueHandle wait) {
  return std::make_unique<PipeReceiver>(std::move(wait));
}
std::unique_ptr<WakeSender> MakePipeSender(UniqueHandle ring) {
  return std::make_unique<PipeSender>(std::move(ring));
}

}  // namespace platform
}  // namespace grpc_shm
