// eventfd doorbell: one kernel counter shared by both processes. Ringing adds
// 1; the sleeper polls it (together with the liveness socket, so a dead peer
// wakes it too) and drains it with one read. Pollable, so many connections
// can share one epoll thread.
#include "plugin/platform/doorbells.h"

#ifdef __linux__
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "plugin/platform/wait_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

class EventFdReceiver final : public WakeReceiver {
 public:
  explicit EventFdReceiver(UniqueHandle fd) : fd_(std::move(fd)) {}
  NativeHandle poll_handle() const override { return fd_.get(); }
  Status Wait(std::atomic<uint32_t>*, uint32_t, NativeHandle liveness, int timeout_ms) override {
    return PollReadableOrHangup(fd_.get(), liveness, timeout_ms);
  }
  void Drain() override {
    uint64_t value;
    // Non-blocking: EAGAIN just means nobody rang since the last drain.
    (void)!::read(fd_.get(), &value, sizeof(value));
  }

 private:
  UniqueHandle fd_;
};

class EventFdSender final : public WakeSender {
 public:
  explicit EventFdSender(UniqueHandle fd) : fd_(std::move(fd)) {}
  void Ring(std::atomic<uint32_t>*) override {
    const uint64_t one = 1;
    // EAGAIN (counter saturated) still leaves the fd readable: nothing lost.
    (void)!::write(fd_.get(), &one, sizeof(one));
  }

 private:
  UniqueHandle fd_;
};

}  // namespace

Status CreateEventFdDoorbell(DoorbellHandles* out) {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return ErrnoStatus("eventfd");
  out->wait.reset(fd);
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoStatus("dup eventfd");
  out->ring.reset(dup);
  return Status::Ok();
}

std::unique_ptr<WakeReceiver> MakeEventFdReceiver(UniqueHandle wait) {
  return std::make_unique<EventFdReceiver>(std::move(wait));
}
std::unique_ptr<WakeSender> MakeEventFdSender(UniqueHandle ring) {
  return std::make_unique<EventFdSender>(std::move(ring));
}

}  // namespace platform
}  // namespace grpc_shm
#endif  // __linux__
