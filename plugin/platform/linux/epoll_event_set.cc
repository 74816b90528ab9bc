// EventSet on epoll, with an eventfd as its wake handle.
#include "plugin/platform/platform.h"

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace grpc_shm {
namespace platform {
namespace {

class EpollEventSet final : public EventSet {
 public:
  EpollEventSet(UniqueHandle epoll, UniqueHandle wake)
      : epoll_(std::move(epoll)), wake_(std::move(wake)) {}

  Status Add(NativeHandle handle, uint32_t interest, void* tag) override {
    epoll_event ev{};
    if (interest & kReadable) ev.events |= EPOLLIN;
    if (interest & kHangup) ev.events |= EPOLLRDHUP;
    ev.data.ptr = tag;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, handle, &ev) != 0) {
      return ErrnoStatus("epoll_ctl(ADD, " + std::to_string(handle) + ")");
    }
    return Status::Ok();
  }

  void Remove(NativeHandle handle) override {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, handle, nullptr);
  }

  Status Wait(int timeout_ms, Event* events, int max_events, int* count) override {
    constexpr int kMaxBatch = 64;
    epoll_event ready[kMaxBatch];
    int n;
    do {
      n = ::epoll_wait(epoll_.get(), ready, std::min(max_events, kMaxBatch), timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoStatus("epoll_wait");
    for (int i = 0; i < n; ++i) {
      void* tag = ready[i].data.ptr;
      if (tag == nullptr) {
        // Reset the counter so the next Wait sleeps until the next Wake.
        uint64_t value;
        while (::read(wake_.get(), &value, sizeof(value)) < 0 && errno == EINTR) {
        }
        events[i] = Event{nullptr, kReadable};
        continue;
      }
      uint32_t what = 0;
      if (ready[i].events & EPOLLIN) what |= kReadable;
      if (ready[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) what |= kHangup;
      events[i] = Event{tag, what};
    }
    *count = n;
    return Status::Ok();
  }

  void Wake() override {
    const uint64_t one = 1;
    // EAGAIN (counter saturated) still leaves the eventfd readable.
    while (::write(wake_.get(), &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  }

 private:
  const UniqueHandle epoll_;
  const UniqueHandle wake_;  // registered with a null tag
};

}  // namespace

Status CreateEventSet(std::unique_ptr<EventSet>* out) {
  UniqueHandle epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoStatus("epoll_create1");
  UniqueHandle wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoStatus("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) {
    return ErrnoStatus("epoll_ctl(ADD, wake)");
  }
  *out = std::make_unique<EpollEventSet>(std::move(epoll), std::move(wake));
  return Status::Ok();
}

Status WatchReadable(NativeHandle handle, UniqueHandle* out) {
  UniqueHandle epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoStatus("epoll_create1");
  // Level-triggered: the watch stays readable until `handle` is drained, so
  // an edge-triggered outer poller sees one edge per arrival after a drain.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, handle, &ev) != 0) {
    return ErrnoStatus("epoll_ctl(ADD, " + std::to_string(handle) + ")");
  }
  *out = std::move(epoll);
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm

#else  // !__linux__

namespace grpc_shm {
namespace platform {

Status CreateEventSet(std::unique_ptr<EventSet>*) {
  return Status(StatusCode::kSystem, "no EventSet on this platform yet");
}

Status WatchReadable(NativeHandle handle, UniqueHandle* out) {
  return DuplicateHandle(handle, out);
}

}  // namespace platform
}  // namespace grpc_shm

#endif  // __linux__
