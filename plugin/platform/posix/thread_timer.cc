// Timers a poller can wait on, without timerfd (macOS, the BSDs; Linux in
// GRPC_SHM_PORTABLE_POSIX builds; Linux itself uses linux/timer.cc).
//
// A timer is one end of a socketpair; one thread per process holds the other
// ends and writes a byte to a timer's end when its deadline passes, which
// makes the timer readable. ArmTimer sends the deadline through the timer's
// own socket, so the thread keeps no table of descriptor numbers (which a
// closed and reused number would confuse), and the owner closing its timer is
// hang-up on the thread's end, which drops it. Each timer costs a descriptor
// in the thread until then.
#ifndef __linux__
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "plugin/platform/platform.h"
#include "plugin/platform/posix/posix_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

using Clock = std::chrono::steady_clock;

// What ArmTimer sends: the deadline in steady_clock ticks (one process, one
// clock).
using Message = int64_t;

class TimerThread {
 public:
  // The process's timer thread, started on first use. After fork() the
  // child starts its own: the parent's thread does not exist there.
  static TimerThread* Get() {
    static std::once_flag once;
    std::call_once(once, [] {
      ::pthread_atfork(nullptr, nullptr, [] {
        // Another thread of the parent may have held the mutex at fork.
        new (&instance_mu_) std::mutex();
        instance_ = nullptr;
      });
    });
    std::lock_guard<std::mutex> lock(instance_mu_);
    if (instance_ == nullptr) {
      auto* thread = new TimerThread();  // leaked: it runs until the process exits
      if (!thread->Start().ok()) {
        delete thread;
        return nullptr;
      }
      instance_ = thread;
    }
    return instance_;
  }

  // Hands the thread its end of a new timer.
  void Adopt(UniqueHandle end) {
    std::lock_guard<std::mutex> lock(mu_);
    adopted_.push_back(std::move(end));
    if (!wake_pending_) {
      wake_pending_ = true;
      const char one = 1;
      while (::write(wake_write_.get(), &one, 1) < 0 && errno == EINTR) {
      }
    }
  }

 private:
  struct Timer {
    UniqueHandle end;
    bool armed = false;
    Clock::time_point deadline;
    uint8_t partial[sizeof(Message)];  // a message that arrived in pieces
    size_t partial_bytes = 0;
  };

  Status Start() {
    int fds[2];
    if (::pipe(fds) != 0) return ErrnoStatus("pipe");
    wake_read_.reset(fds[0]);
    wake_write_.reset(fds[1]);
    Status s = SetNonBlockingCloexec(fds[0]);
    if (s.ok()) s = SetNonBlockingCloexec(fds[1]);
    if (!s.ok()) return s;
    std::thread([this] { Run(); }).detach();
    return Status::Ok();
  }

  void Run() {
    // A timer whose owner is gone makes our write fail with EPIPE; blocked,
    // the SIGPIPE stays pending on this thread and harms nobody (sockets
    // with SO_NOSIGPIPE do not raise it at all).
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    std::vector<pollfd> fds;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (UniqueHandle& end : adopted_) {
          timers_.emplace_back();
          timers_.back().end = std::move(end);
        }
        adopted_.clear();
      }
      fds.clear();
      fds.push_back(pollfd{wake_read_.get(), POLLIN, 0});
      Clock::time_point next = Clock::time_point::max();
      for (const Timer& t : timers_) {
        fds.push_back(pollfd{t.end.get(), POLLIN, 0});
        if (t.armed) next = std::min(next, t.deadline);
      }
      int timeout_ms = -1;
      if (next != Clock::time_point::max()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
        timeout_ms =
            static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(left.count(), INT32_MAX)));
      }
      if (::poll(fds.data(), static_cast<nfds_t>(fds.size()), timeout_ms) < 0 && errno != EINTR) {
        // Nothing that goes away by itself (out of memory): do not spin.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (fds[0].revents != 0) {
        char buf[64];
        while (::read(wake_read_.get(), buf, sizeof(buf)) > 0) {
        }
        std::lock_guard<std::mutex> lock(mu_);
        wake_pending_ = false;
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents != 0 && !ReadArms(&timers_[i - 1])) timers_[i - 1].end.reset();
      }
      const Clock::time_point now = Clock::now();
      for (Timer& t : timers_) {
        if (t.end.valid() && t.armed && t.deadline <= now) {
          t.armed = false;
          const char one = 1;
          (void)SendNoSigpipe(t.end.get(), &one, 1, MSG_DONTWAIT);
        }
      }
      timers_.erase(std::remove_if(timers_.begin(), timers_.end(),
                                   [](const Timer& t) { return !t.end.valid(); }),
                    timers_.end());
    }
  }

  // Takes the deadlines the owner sent; the last one counts. False once the
  // owner has closed its end (or broke the protocol, which cannot happen in
  // one process).
  static bool ReadArms(Timer* t) {
    for (;;) {
      uint8_t buf[8 * sizeof(Message)];
      const ssize_t n = ::recv(t->end.get(), buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      for (ssize_t i = 0; i < n; ++i) {
        t->partial[t->partial_bytes++] = buf[i];
        if (t->partial_bytes == sizeof(Message)) {
          Message ticks;
          std::memcpy(&ticks, t->partial, sizeof(ticks));
          t->partial_bytes = 0;
          t->deadline = Clock::time_point(Clock::duration(ticks));
          t->armed = true;
        }
      }
    }
  }

  static std::mutex instance_mu_;
  static TimerThread* instance_;

  UniqueHandle wake_read_;
  UniqueHandle wake_write_;
  std::mutex mu_;
  std::vector<UniqueHandle> adopted_;  // guarded by mu_
  bool wake_pending_ = false;          // guarded by mu_
  std::vector<Timer> timers_;          // the thread's own
};

std::mutex TimerThread::instance_mu_;
TimerThread* TimerThread::instance_ = nullptr;

}  // namespace

Status CreateTimer(UniqueHandle* timer) {
  TimerThread* thread = TimerThread::Get();
  if (thread == nullptr) return Status(StatusCode::kSystem, "cannot start the timer thread");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return ErrnoStatus("socketpair");
  UniqueHandle ours(sv[0]), theirs(sv[1]);
  for (int fd : sv) {
    Status s = SetNonBlockingCloexec(fd);
    if (!s.ok()) return s;
    SetNoSigpipe(fd);
  }
  thread->Adopt(std::move(theirs));
  *timer = std::move(ours);
  return Status::Ok();
}

Status ArmTimer(NativeHandle timer, std::chrono::nanoseconds after) {
  // An expiry not yet seen would make the re-armed timer readable at once.
  // (One the thread is writing right now still can: re-arming a timer that
  // may be expiring can report one early expiry; the transport arms each
  // timer once.)
  char buf[64];
  while (::recv(timer, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
  // At least 1 ns (as timerfd: 0 would disarm), at most a year (no
  // overflow of the clock).
  after = std::clamp<std::chrono::nanoseconds>(after, std::chrono::nanoseconds(1),
                                               std::chrono::hours(24 * 365));
  const Message ticks =
      std::chrono::duration_cast<Clock::duration>((Clock::now() + after).time_since_epoch())
          .count();
  // Eight bytes into an empty socket: sent whole, or not at all.
  if (SendNoSigpipe(timer, &ticks, sizeof(ticks), MSG_DONTWAIT) !=
      static_cast<ssize_t>(sizeof(ticks))) {
    return ErrnoStatus("arming timer");
  }
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
#endif  // !__linux__
