// EventSet and timers on Windows: WaitForMultipleObjects over the handles'
// waitable events (a pipe end's ready event, a doorbell event, a waitable
// timer). Windows waits on at most 64 objects at once: one is the wake
// event, one the "set changed" event, so a set holds 62 handles; a poller
// that needs more would run several sets (or move to an I/O completion
// port), which the transport on Windows does not do yet.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "plugin/platform/windows/windows_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

constexpr size_t kMaxWatched = MAXIMUM_WAIT_OBJECTS - 2;

class WaitEventSet final : public EventSet {
 public:
  WaitEventSet(UniqueHandle wake, UniqueHandle changed)
      : wake_(std::move(wake)), changed_(std::move(changed)) {}

  Status Add(NativeHandle handle, uint32_t interest, void* tag) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Watch& w : watches_) {
      if (w.handle == handle) return Status(StatusCode::kInvalidArgument, "handle already in set");
    }
    if (watches_.size() >= kMaxWatched) {
      return Status(StatusCode::kSystem, "an event set waits on at most " +
                                             std::to_string(kMaxWatched) + " handles on Windows");
    }
    watches_.push_back(Watch{handle, interest, tag});
    ::SetEvent(AsHandle(changed_.get()));
    return Status::Ok();
  }

  // Returns once no Wait is blocked on `handle`'s object any more, so the
  // caller may close it (closing a handle another thread waits on is
  // undefined on Windows).
  void Remove(NativeHandle handle) override {
    std::unique_lock<std::mutex> lock(mu_);
    watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                  [&](const Watch& w) { return w.handle == handle; }),
                   watches_.end());
    if (!waiting_ || waiter_ == std::this_thread::get_id()) return;
    const uint64_t generation = generation_;
    ::SetEvent(AsHandle(changed_.get()));
    rebuilt_.wait(lock, [&] { return !waiting_ || generation_ != generation; });
  }

  Status Wait(int timeout_ms, Event* events, int max_events, int* count) override {
    *count = 0;
    const Clock::time_point deadline = DeadlineFromMs(timeout_ms);
    for (;;) {
      std::vector<Watch> watches;
      std::vector<HANDLE> objects = {AsHandle(wake_.get()), AsHandle(changed_.get())};
      {
        std::lock_guard<std::mutex> lock(mu_);
        ::ResetEvent(AsHandle(changed_.get()));
        watches = watches_;
        waiting_ = true;
        waiter_ = std::this_thread::get_id();
        ++generation_;
      }
      rebuilt_.notify_all();
      for (const Watch& w : watches) objects.push_back(WaitableFor(w.handle));
      const DWORD r = ::WaitForMultipleObjects(static_cast<DWORD>(objects.size()), objects.data(),
                                               FALSE, RemainingMs(deadline));
      int n = 0;
      if (r == WAIT_OBJECT_0) events[n++] = Event{nullptr, 0};
      if (r >= WAIT_OBJECT_0 + 2 && r < WAIT_OBJECT_0 + objects.size()) {
        // The lowest signalled index woke us; look at every watched object.
        for (size_t i = 0; i < watches.size() && n < max_events; ++i) {
          if (::WaitForSingleObject(objects[i + 2], 0) != WAIT_OBJECT_0) continue;
          // A pipe's event does not say whether data or a hang-up is
          // waiting: the owner's next read (or CheckAlive) tells.
          const uint32_t bits = (watches[i].interest & kReadable) ? kReadable : kHangup;
          events[n++] = Event{watches[i].tag, bits};
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        waiting_ = false;
      }
      rebuilt_.notify_all();
      if (r == WAIT_FAILED) return WindowsErrorStatus("WaitForMultipleObjects");
      *count = n;
      if (n > 0 || r == WAIT_TIMEOUT) return Status::Ok();
      // The set changed: wait again on the new set.
    }
  }

  void Wake() override { ::SetEvent(AsHandle(wake_.get())); }

 private:
  struct Watch {
    NativeHandle handle;
    uint32_t interest;
    void* tag;
  };
  const UniqueHandle wake_;     // auto-reset: one Wake, one report
  const UniqueHandle changed_;  // manual-reset: Add/Remove happened
  std::mutex mu_;
  std::condition_variable rebuilt_;
  std::vector<Watch> watches_;
  bool waiting_ = false;
  std::thread::id waiter_;
  uint64_t generation_ = 0;
};

}  // namespace

Status CreateEventSet(std::unique_ptr<EventSet>* out) {
  UniqueHandle wake(FromHandle(::CreateEventW(nullptr, FALSE, FALSE, nullptr)));
  UniqueHandle changed(FromHandle(::CreateEventW(nullptr, TRUE, FALSE, nullptr)));
  if (!wake.valid() || !changed.valid()) return WindowsErrorStatus("CreateEvent");
  *out = std::make_unique<WaitEventSet>(std::move(wake), std::move(changed));
  return Status::Ok();
}

Status CreateTimer(UniqueHandle* timer) {
  // Manual-reset: it stays signalled (readable) until re-armed.
  HANDLE h = ::CreateWaitableTimerW(nullptr, TRUE, nullptr);
  if (h == nullptr) return WindowsErrorStatus("CreateWaitableTimer");
  timer->reset(FromHandle(h));
  return Status::Ok();
}

Status ArmTimer(NativeHandle timer, std::chrono::nanoseconds after) {
  // Relative due times are negative, in 100 ns units; at least one unit.
  const long long units = std::max<long long>(1, (after.count() + 99) / 100);
  LARGE_INTEGER due;
  due.QuadPart = -units;
  if (!::SetWaitableTimer(AsHandle(timer), &due, 0, nullptr, nullptr, FALSE)) {
    return WindowsErrorStatus("SetWaitableTimer");
  }
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
