#include "plugin/transport/blocking_worker.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace grpc_shm {
namespace transport {
namespace {

// Threads started on demand when every thread is busy and a job waits, up
// to kMaxThreads, never stopped. One slow or silent peer then holds one
// thread for up to the handshake timeout while the others carry on; the cap
// keeps the thread count independent of the number of peers.
class Workers {
 public:
  static constexpr int kMaxThreads = 8;

  void Post(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
    // More waiting jobs than threads free to take them: start one more.
    if (jobs_.size() > static_cast<size_t>(idle_) && threads_ < kMaxThreads) {
      ++threads_;
      ++idle_;  // counted idle until it takes its first job
      std::thread([this] { Run(); }).detach();
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return !jobs_.empty(); });
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      --idle_;
      lock.unlock();
      job();
      job = nullptr;  // destroy captures outside the lock
      lock.lock();
      ++idle_;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  int threads_ = 0;
  int idle_ = 0;
};

}  // namespace

void RunBlocking(std::function<void()> job) {
  // Leaked on purpose: the threads may be blocked in a job at exit.
  static Workers* workers = new Workers();
  workers->Post(std::move(job));
}

}  // namespace transport
}  // namespace grpc_shm
