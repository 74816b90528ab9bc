// futex doorbell: the sleeper waits on its own wait word in shared memory;
// the peer wakes it with FUTEX_WAKE. No file descriptor at all, so it is the
// cheapest wake, but it cannot be polled: a futex sleeper cannot also watch
// the liveness socket, so it sleeps in slices and checks the socket between
// them (kFutexLivenessSliceMs bounds how late a peer's death is noticed).
#include "plugin/platform/doorbells.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace grpc_shm {
namespace platform {
namespace {

constexpr int kFutexLivenessSliceMs = 20;

class FutexReceiver final : public WakeReceiver {
 public:
  NativeHandle poll_handle() const override { return kInvalidHandle; }
  Status Wait(std::atomic<uint32_t>* word, uint32_t expected, NativeHandle liveness,
              int timeout_ms) override {
    const int slice =
        timeout_ms < 0 || timeout_ms > kFutexLivenessSliceMs ? kFutexLivenessSliceMs : timeout_ms;
    struct timespec ts = {slice / 1000, (slice % 1000) * 1000000L};
    // Not FUTEX_PRIVATE: the word is shared with another process.
    long r = ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts,
                       nullptr, 0);
    // Woken (0) or the word already changed (EAGAIN): the peer is alive and
    // made progress. Only a quiet slice costs a liveness check.
    if (r == 0 || errno == EAGAIN) return Status::Ok();
    Status alive = CheckAlive(liveness);
    if (!alive.ok()) return alive;
    if (r != 0 && errno == ETIMEDOUT && timeout_ms >= 0 && timeout_ms <= kFutexLivenessSliceMs) {
      return Status(StatusCode::kTimeout, "timed out waiting for the peer");
    }
    return Status::Ok();  // a quiet slice or a signal: the caller re-checks
  }
  void Drain() override {}
};

class FutexSender final : public WakeSender {
 public:
  void Ring(std::atomic<uint32_t>* word) override {
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr,
              0);
  }
};

}  // namespace

std::unique_ptr<WakeReceiver> MakeFutexReceiver() { return std::make_unique<FutexReceiver>(); }
std::unique_ptr<WakeSender> MakeFutexSender() { return std::make_unique<FutexSender>(); }

}  // namespace platform
}  // namespace grpc_shm
#endif  // __linux__
