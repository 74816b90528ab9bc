// Timers a poller can wait on: timerfd.
#include <sys/timerfd.h>

#include <algorithm>
#include <chrono>

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {

Status CreateTimer(UniqueHandle* timer) {
  int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return ErrnoStatus("timerfd_create");
  timer->reset(fd);
  return Status::Ok();
}

Status ArmTimer(NativeHandle timer, std::chrono::nanoseconds after) {
  // A zero it_value would disarm the timer instead of firing it at once.
  after = std::max(after, std::chrono::nanoseconds(1));
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(after);
  itimerspec when{};
  when.it_value.tv_sec = static_cast<time_t>(secs.count());
  when.it_value.tv_nsec = static_cast<long>((after - secs).count());
  if (::timerfd_settime(timer, 0, &when, nullptr) != 0) return ErrnoStatus("timerfd_settime");
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
