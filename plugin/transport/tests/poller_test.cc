// The pollers alone: what they watch, what they report when they cannot
// watch, and how the poller thread survives a failing wait.
#include "plugin/transport/poller.h"

#include <fcntl.h>
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "plugin/platform/platform.h"
#include "plugin/transport/grpc_poller.h"
#include "src/core/lib/iomgr/ev_posix.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace grpc_shm {
namespace transport {
namespace {

// Only bounds a wait for something that must happen, so a broken poller
// fails the test instead of hanging it; never a measurement.
constexpr auto kPatience = std::chrono::seconds(20);

// Records what the poller tells it; tests wait on the records.
class RecordingSource : public PollSource {
 public:
  void OnEvent(int role, uint32_t events) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (events & kKick) ++kicks_;
    if (events & kHangup) hangups_.push_back(role);
    if (events & kReadable) readables_.push_back(role);
    cv_.notify_all();
  }
  void OnRemoved() override {
    std::lock_guard<std::mutex> lock(mu_);
    removed_ = true;
    cv_.notify_all();
  }

  bool WaitForKick() { return WaitForKicks(1); }
  bool WaitForKicks(int n) {
    return WaitFor([this, n] { return kicks_ >= n; });
  }
  bool WaitForHangup(int role) {
    return WaitFor([&] {
      for (int r : hangups_) {
        if (r == role) return true;
      }
      return false;
    });
  }
  bool WaitForRemoved() {
    return WaitFor([this] { return removed_; });
  }
  bool called() {
    std::lock_guard<std::mutex> lock(mu_);
    return kicks_ > 0 || !hangups_.empty() || !readables_.empty() || removed_;
  }

 private:
  template <typename Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kPatience, pred);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int kicks_ = 0;
  std::vector<int> hangups_;
  std::vector<int> readables_;
  bool removed_ = false;
};

struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    ours.reset(fds[0]);
    theirs.reset(fds[1]);
  }
  platform::UniqueHandle ours;
  platform::UniqueHandle theirs;
};

// Uses up every descriptor the process may open (below a lowered limit)
// until destroyed, so that the next dup fails with EMFILE.
class DescriptorsExhausted {
 public:
  DescriptorsExhausted() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    // Just above what is open now, so filling it up takes few descriptors.
    int highest = 0;
    for (int fd = 0; fd < 4096; ++fd) {
      if (fcntl(fd, F_GETFD) >= 0) highest = fd;
    }
    rlimit lowered = saved_;
    lowered.rlim_cur = highest + 16;
    EXPECT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    for (;;) {
      int fd = dup(0);
      if (fd < 0) {
        EXPECT_EQ(errno, EMFILE);
        break;
      }
      filler_.emplace_back(fd);
    }
  }
  ~DescriptorsExhausted() {
    filler_.clear();
    setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<platform::UniqueHandle> filler_;
};

class PollerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { grpc_init(); }
  static void TearDownTestSuite() { grpc_shutdown(); }
};

// A server's handshake socket becomes its connection's liveness socket while
// the handshake is still registered: the connection's registration must not
// collide with the handshake's, nor vanish with it (with GRPC_SHM_POLLER=thread
// the server then never saw that client die).
TEST_F(PollerTest, HandleHandedToAnotherSourceStaysWatchedAfterTheFirstIsRemoved) {
  SocketPair pair;
  Poller& poller = Poller::Get();
  RecordingSource handshake, connection;
  ASSERT_TRUE(
      poller.Add(&handshake, {{pair.ours.get(), 0, PollSource::kReadable | PollSource::kHangup}})
          .ok());
  ipc::Status added = poller.Add(&connection, {{pair.ours.get(), 7, PollSource::kHangup}});
  ASSERT_TRUE(added.ok()) << added.ToString();
  poller.Remove(&handshake);
  ASSERT_TRUE(handshake.WaitForRemoved());

  pair.theirs.reset();  // the client dies
  EXPECT_TRUE(connection.WaitForHangup(7));
  poller.Remove(&connection);
  EXPECT_TRUE(connection.WaitForRemoved());
}

TEST_F(PollerTest, ThreadPollerReportsRunningOutOfDescriptorsAndRegistersNothing) {
  SocketPair pair;
  Poller& poller = Poller::Get();
  // One registration first, so the poller's own calls have run once before
  // descriptors run out: UBSan checks a virtual call's type the first time
  // it sees it, and that check needs a descriptor (it would report an
  // "invalid vptr" that is only its own EMFILE).
  RecordingSource warm_up;
  ASSERT_TRUE(poller.Add(&warm_up, {}).ok());
  ASSERT_TRUE(warm_up.WaitForKick());
  poller.Remove(&warm_up);
  ASSERT_TRUE(warm_up.WaitForRemoved());
  RecordingSource unwatched;
  {
    DescriptorsExhausted exhausted;
    ipc::Status status = poller.Add(&unwatched, {{pair.ours.get(), 1, PollSource::kHangup}});
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.code(), ipc::StatusCode::kSystem) << status.ToString();
  }
  // Commands run in order: once a later source got its kick, the failed Add
  // would have been kicked too, had it registered anything.
  RecordingSource later;
  ASSERT_TRUE(poller.Add(&later, {}).ok());
  ASSERT_TRUE(later.WaitForKick());
  pair.theirs.reset();
  poller.Remove(&later);
  ASSERT_TRUE(later.WaitForRemoved());
  EXPECT_FALSE(unwatched.called());
}

TEST_F(PollerTest, GrpcEnginePollerReportsRunningOutOfDescriptors) {
  SocketPair pair;
  RecordingSource source;
  grpc_core::ExecCtx exec_ctx;
  {
    DescriptorsExhausted exhausted;
    ipc::Status status =
        GrpcEnginePoller::Get().Add(&source, {{pair.ours.get(), 1, PollSource::kHangup}});
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.code(), ipc::StatusCode::kSystem) << status.ToString();
  }
  exec_ctx.Flush();
  EXPECT_FALSE(source.called());
}

// A connection that stopped reading early to let others have the thread is
// called again, on either poller.
TEST_F(PollerTest, KickAfterOthersCallsTheSourceAgain) {
  for (Poller* poller :
       {static_cast<Poller*>(&Poller::Get()), static_cast<Poller*>(&GrpcEnginePoller::Get())}) {
    RecordingSource source;
    {
      grpc_core::ExecCtx exec_ctx;
      ASSERT_TRUE(poller->Add(&source, {}).ok());
    }
    ASSERT_TRUE(source.WaitForKicks(1));
    {
      grpc_core::ExecCtx exec_ctx;
      poller->KickAfterOthers(&source);
    }
    EXPECT_TRUE(source.WaitForKicks(2));
    {
      grpc_core::ExecCtx exec_ctx;
      poller->Remove(&source);
    }
    EXPECT_TRUE(source.WaitForRemoved());
  }
}

TEST_F(PollerTest, ConnectionPollerFollowsGrpcShmPollerEnv) {
  // ctest runs this suite with and without GRPC_SHM_POLLER=thread.
  const char* env = std::getenv("GRPC_SHM_POLLER");
  const bool thread = env != nullptr && std::strcmp(env, "thread") == 0;
  if (thread) {
    EXPECT_EQ(&ConnectionPoller(), &Poller::Get());
  } else if (std::strcmp(grpc_get_poll_strategy_name(), "epoll1") == 0) {
    EXPECT_EQ(&ConnectionPoller(), &GrpcEnginePoller::Get());
  }
}

// An EventSet whose Wait fails a given number of times, then waits for Wake.
class FailingEventSet final : public platform::EventSet {
 public:
  explicit FailingEventSet(int failures) : failures_(failures) {}
  ipc::Status Add(platform::NativeHandle, uint32_t, void*) override { return ipc::Status::Ok(); }
  void Remove(platform::NativeHandle) override {}
  ipc::Status Wait(int, Event* events, int, int* count) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (failures_ > 0) {
      --failures_;
      return ipc::ErrnoStatus("epoll_wait", EBADF);
    }
    cv_.wait(lock, [this] { return woken_; });
    woken_ = false;
    events[0] = Event{nullptr, kReadable};
    *count = 1;
    return ipc::Status::Ok();
  }
  void Wake() override {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int failures_;
  bool woken_ = false;
};

std::atomic<int> g_poller_errors{0};
void CountPollerErrors(gpr_log_func_args* args) {
  if (args->severity == GPR_LOG_SEVERITY_ERROR &&
      std::strstr(args->message, "grpc_shm poller") != nullptr) {
    g_poller_errors.fetch_add(1);
  }
}

TEST_F(PollerTest, FailingWaitsBackOffAndAreLoggedOnce) {
  gpr_set_log_function(CountPollerErrors);
  std::mutex mu;
  std::vector<std::chrono::milliseconds> pauses;
  // Never destroyed (its thread runs on); leaked at the end of the test.
  auto* poller =
      new ThreadPoller(std::make_unique<FailingEventSet>(12), [&](std::chrono::milliseconds pause) {
        std::lock_guard<std::mutex> lock(mu);
        pauses.push_back(pause);
      });
  RecordingSource source;
  ASSERT_TRUE(poller->Add(&source, {}).ok());
  // The poller recovers once waiting works again.
  EXPECT_TRUE(source.WaitForKick());
  gpr_set_log_function(nullptr);

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(pauses.size(), 12u);
  EXPECT_GT(pauses[0].count(), 0);
  for (size_t i = 1; i < pauses.size(); ++i) {
    EXPECT_GE(pauses[i], pauses[i - 1]);
    EXPECT_LE(pauses[i], std::chrono::seconds(1));
  }
  EXPECT_EQ(pauses.back(), std::chrono::seconds(1));
  EXPECT_EQ(g_poller_errors.load(), 1);
  poller->Remove(&source);
  EXPECT_TRUE(source.WaitForRemoved());
}

}  // namespace
}  // namespace transport
}  // namespace grpc_shm
