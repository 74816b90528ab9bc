#include "plugin/transport/blocking_worker.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace grpc_shm {
namespace transport {
namespace {

class Worker {
 public:
  Worker() {
    std::thread([this] { Run(); }).detach();
  }
  void Post(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
    cv_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !jobs_.empty(); });
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
};

}  // namespace

void RunBlocking(BlockingLane lane, std::function<void()> job) {
  // Leaked on purpose: the threads may be blocked in a job at exit.
  static Worker* connect_worker = new Worker();
  static Worker* handshake_worker = new Worker();
  (lane == BlockingLane::kClientConnect ? connect_worker : handshake_worker)->Post(std::move(job));
}

}  // namespace transport
}  // namespace grpc_shm
