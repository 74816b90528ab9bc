// When a gRPC thread that has just sent something should poll the receive
// ring instead of going to sleep in gRPC's poller.
//
// A sleeping thread costs a kernel wake-up per message (35-40 us between the
// two vCPUs of a small VM: more than the whole ring transfer), so a thread
// whose call now awaits the peer's answer polls the ring for a bounded time
// first: when the answer comes within the budget, no doorbell is rung and no
// thread sleeps or wakes. Spinning that does not pay (the peer answers
// later, or nothing is coming) only burns CPU, so the policy backs off after
// each miss: it skips 1, 3, 7, ... (at most 63) spin opportunities, and one
// hit restores spinning at once.
//
// SpinPolicy is not thread-safe: the transport calls it under its lock.
#ifndef GRPC_SHM_TRANSPORT_SPIN_POLICY_H_
#define GRPC_SHM_TRANSPORT_SPIN_POLICY_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace grpc_shm {
namespace transport {

class SpinPolicy {
 public:
  static constexpr uint32_t kMaxSkip = 63;

  explicit SpinPolicy(std::chrono::nanoseconds budget = std::chrono::nanoseconds(0))
      : budget_(budget) {}

  std::chrono::nanoseconds budget() const { return budget_; }

  // Whether to spin at this opportunity (false: sleep at once).
  bool ShouldSpin() {
    if (budget_.count() <= 0) return false;
    if (skip_ > 0) {
      --skip_;
      return false;
    }
    return true;
  }

  // The outcome of a spin that ShouldSpin allowed.
  void Record(bool frame_arrived) {
    if (frame_arrived) {
      misses_ = 0;
      return;
    }
    misses_ = std::min<uint32_t>(misses_ + 1, 6);
    skip_ = std::min<uint32_t>((1u << misses_) - 1, kMaxSkip);
  }

 private:
  std::chrono::nanoseconds budget_;
  uint32_t misses_ = 0;  // consecutive spins that found nothing
  uint32_t skip_ = 0;    // opportunities left to skip
};

// How many threads of a process may spin at once. A spinning thread holds a
// CPU: with more spinners than CPUs, the thread that would produce the
// awaited frame waits for a spinner's time slice (8 channels on 2 CPUs: p99
// 3.5x TCP's). Past the limit a thread sleeps at once, as with spinning off.
// Thread-safe.
class SpinSlots {
 public:
  explicit SpinSlots(int slots) : free_(std::max(slots, 1)) {}

  // Takes a slot if one is free; a true result must be followed by Release().
  bool TryAcquire() {
    int n = free_.load(std::memory_order_relaxed);
    while (n > 0) {
      if (free_.compare_exchange_weak(n, n - 1, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  void Release() { free_.fetch_add(1, std::memory_order_release); }

  // Half the CPUs, at least one: the peer process needs the other half.
  static int ForThisMachine(unsigned cpus) { return std::max(1, static_cast<int>(cpus / 2)); }

 private:
  std::atomic<int> free_;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_SPIN_POLICY_H_
