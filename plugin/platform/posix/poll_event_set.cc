// EventSet on poll(), for systems without epoll (macOS, the BSDs; Linux in
// GRPC_SHM_PORTABLE_POSIX builds). kqueue would scale better on those
// systems; poll() is what every one of them has and what a Linux build can
// test.
//
// The registered handles live in a map under a mutex, so Add and Remove
// work from any thread; the waiting thread polls a copy of them, rebuilt
// when they change. A self-pipe interrupts a poll in progress, both for
// Wake() and for a change the copy must pick up (a handle added while the
// thread sleeps would otherwise not be watched until something else woke
// it). Only a Wake() is reported (as the null tag); those internal wake-ups
// are not.
#ifndef __linux__  // Linux: linux/epoll_event_set.cc
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "plugin/platform/platform.h"
#include "plugin/platform/posix/posix_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

using Clock = std::chrono::steady_clock;

class PollEventSet final : public EventSet {
 public:
  PollEventSet(UniqueHandle wake_read, UniqueHandle wake_write)
      : wake_read_(std::move(wake_read)), wake_write_(std::move(wake_write)) {}

  Status Add(NativeHandle handle, uint32_t interest, void* tag) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!watched_.emplace(handle, Watched{interest, tag}).second) {
      return Status(StatusCode::kInvalidArgument,
                    "handle " + std::to_string(handle) + " is already in the event set");
    }
    ChangedLocked();
    return Status::Ok();
  }

  void Remove(NativeHandle handle) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (watched_.erase(handle) != 0) ChangedLocked();
  }

  Status Wait(int timeout_ms, Event* events, int max_events, int* count) override {
    *count = 0;
    const Clock::time_point deadline = timeout_ms < 0
                                           ? Clock::time_point::max()
                                           : Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (wake_requested_) {
          wake_requested_ = false;
          events[(*count)++] = Event{nullptr, kReadable};
          return Status::Ok();
        }
        if (changed_) Rebuild();
        polling_ = true;
      }
      int remaining = -1;
      if (timeout_ms >= 0) {
        // Rounded up, so that a wait does not end just before its deadline
        // and spin through the last fraction of a millisecond.
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        remaining = left.count() <= 0 ? 0 : static_cast<int>(left.count());
      }
      const int n = ::poll(fds_.data(), static_cast<nfds_t>(fds_.size()), remaining);
      const int poll_errno = errno;
      std::lock_guard<std::mutex> lock(mu_);
      polling_ = false;
      if (n < 0) {
        if (poll_errno == EINTR) continue;
        return ErrnoStatus("poll", poll_errno);
      }
      if (fds_[0].revents != 0) {
        char buf[64];
        while (::read(wake_read_.get(), buf, sizeof(buf)) > 0) {
        }
        wake_pending_ = false;
      }
      if (wake_requested_) {
        wake_requested_ = false;
        events[(*count)++] = Event{nullptr, kReadable};
      }
      Collect(events, max_events, count);
      if (*count > 0 || n == 0 || remaining == 0) return Status::Ok();
      // Only our own wake-up, or events for handles removed meanwhile:
      // wait on with the time that is left.
    }
  }

  void Wake() override {
    std::lock_guard<std::mutex> lock(mu_);
    wake_requested_ = true;
    InterruptLocked();
  }

 private:
  struct Watched {
    uint32_t interest;
    void* tag;
  };

  void ChangedLocked() {
    changed_ = true;
    InterruptLocked();
  }

  // Makes a poll in progress return; the next one needs no help.
  void InterruptLocked() {
    if (!polling_ || wake_pending_) return;
    wake_pending_ = true;
    const char one = 1;
    // A full pipe (EAGAIN) is already readable.
    while (::write(wake_write_.get(), &one, 1) < 0 && errno == EINTR) {
    }
  }

  // Waiting thread, under mu_.
  void Rebuild() {
    changed_ = false;
    fds_.clear();
    tags_.clear();
    fds_.push_back(pollfd{wake_read_.get(), POLLIN, 0});
    tags_.push_back(nullptr);
    for (const auto& [handle, w] : watched_) {
      // Hang-up is POLLHUP, reported without asking; but a peer that only
      // shut down its writing side (or whose end of file poll reports as
      // input, as some systems do) shows up as readable, so hang-up
      // interest watches for input too.
      fds_.push_back(pollfd{handle, POLLIN, 0});
      tags_.push_back(w.tag);
    }
  }

  // Waiting thread, under mu_: turns revents into events, skipping handles
  // removed (or re-added with another tag) since the poll began. Starts
  // where the last call stopped, so that more ready handles than
  // `max_events` all get their turn.
  void Collect(Event* events, int max_events, int* count) {
    const size_t size = fds_.size() - 1;
    for (size_t k = 0; k < size && *count < max_events; ++k) {
      const size_t i = 1 + (next_ + k) % size;
      if (fds_[i].revents == 0) continue;
      auto it = watched_.find(fds_[i].fd);
      if (it == watched_.end() || it->second.tag != tags_[i]) continue;
      const uint32_t interest = it->second.interest;
      uint32_t what = 0;
      if (fds_[i].revents & (POLLHUP | POLLERR | POLLNVAL)) what |= kHangup;
      if (fds_[i].revents & POLLIN) {
        // Input on a handle watched for hang-up only is end of file, or a
        // peer writing where it must not (a liveness socket): either way
        // the owner checks the handle, as it would after a hang-up.
        what |= (interest & kReadable) ? kReadable : kHangup;
      }
      events[(*count)++] = Event{tags_[i], what};
      next_ = (next_ + k + 1) % size;
    }
  }

  const UniqueHandle wake_read_;
  const UniqueHandle wake_write_;
  std::mutex mu_;
  std::unordered_map<NativeHandle, Watched> watched_;  // guarded by mu_
  bool changed_ = true;                                // guarded by mu_
  bool polling_ = false;                               // guarded by mu_
  bool wake_pending_ = false;                          // guarded by mu_: a byte is in the pipe
  bool wake_requested_ = false;                        // guarded by mu_: Wake() not yet reported
  // The waiting thread's copy of watched_: fds_[0] is the wake pipe.
  std::vector<pollfd> fds_;
  std::vector<void*> tags_;
  size_t next_ = 0;
};

}  // namespace

Status CreateEventSet(std::unique_ptr<EventSet>* out) {
  int fds[2];
  if (::pipe(fds) != 0) return ErrnoStatus("pipe");
  UniqueHandle wake_read(fds[0]), wake_write(fds[1]);
  Status s = SetNonBlockingCloexec(fds[0]);
  if (s.ok()) s = SetNonBlockingCloexec(fds[1]);
  if (!s.ok()) return s;
  *out = std::make_unique<PollEventSet>(std::move(wake_read), std::move(wake_write));
  return Status::Ok();
}

// No private epoll here, and no need: gRPC's poll() engine, the one these
// systems run, asks for writability only while it wants to write.
Status WatchReadable(NativeHandle handle, UniqueHandle* out) {
  return DuplicateHandle(handle, out);
}

}  // namespace platform
}  // namespace grpc_shm
#endif  // !__linux__
