// platform::EventSet: what the transport's poller thread waits in.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {
namespace {

struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    ours.reset(fds[0]);
    theirs.reset(fds[1]);
  }
  UniqueHandle ours;
  UniqueHandle theirs;
};

std::unique_ptr<EventSet> NewSet() {
  std::unique_ptr<EventSet> set;
  Status status = CreateEventSet(&set);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return set;
}

TEST(EventSetTest, NothingReadyTimesOutWithNoEvents) {
  auto set = NewSet();
  SocketPair pair;
  int tag;
  ASSERT_TRUE(set->Add(pair.ours.get(), EventSet::kReadable, &tag).ok());
  EventSet::Event events[4];
  int n = -1;
  ASSERT_TRUE(set->Wait(0, events, 4, &n).ok());
  EXPECT_EQ(n, 0);
}

TEST(EventSetTest, ReportsReadableAndHangupWithTheirTags) {
  auto set = NewSet();
  SocketPair data, dying;
  int data_tag, dying_tag;
  ASSERT_TRUE(set->Add(data.ours.get(), EventSet::kReadable, &data_tag).ok());
  ASSERT_TRUE(set->Add(dying.ours.get(), EventSet::kHangup, &dying_tag).ok());
  ASSERT_EQ(write(data.theirs.get(), "x", 1), 1);
  dying.theirs.reset();

  bool readable = false, hung_up = false;
  while (!(readable && hung_up)) {
    EventSet::Event events[4];
    int n = 0;
    ASSERT_TRUE(set->Wait(-1, events, 4, &n).ok());
    for (int i = 0; i < n; ++i) {
      if (events[i].tag == &data_tag) {
        EXPECT_EQ(events[i].events, uint32_t{EventSet::kReadable});
        readable = true;
      } else {
        ASSERT_EQ(events[i].tag, &dying_tag);
        EXPECT_TRUE(events[i].events & EventSet::kHangup);
        hung_up = true;
      }
    }
  }
  set->Remove(data.ours.get());
  set->Remove(dying.ours.get());
  EventSet::Event events[4];
  int n = -1;
  ASSERT_TRUE(set->Wait(0, events, 4, &n).ok());
  EXPECT_EQ(n, 0);  // removed handles report nothing, though still ready
}

TEST(EventSetTest, OneObjectTwiceThroughADuplicate) {
  auto set = NewSet();
  SocketPair pair;
  int first, second;
  ASSERT_TRUE(set->Add(pair.ours.get(), EventSet::kHangup, &first).ok());
  EXPECT_FALSE(set->Add(pair.ours.get(), EventSet::kHangup, &second).ok());
  UniqueHandle dup;
  ASSERT_TRUE(DuplicateHandle(pair.ours.get(), &dup).ok());
  ASSERT_TRUE(set->Add(dup.get(), EventSet::kHangup, &second).ok());
  // Removing the first registration leaves the second watching.
  set->Remove(pair.ours.get());
  pair.theirs.reset();
  EventSet::Event events[4];
  int n = 0;
  ASSERT_TRUE(set->Wait(-1, events, 4, &n).ok());
  ASSERT_EQ(n, 1);
  EXPECT_EQ(events[0].tag, &second);
  set->Remove(dup.get());
}

TEST(EventSetTest, WakeEndsAWaitInAnotherThread) {
  auto set = NewSet();
  EventSet::Event events[4];
  int n = 0;
  Status status;
  std::thread waiter([&] { status = set->Wait(-1, events, 4, &n); });
  set->Wake();
  waiter.join();
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(n, 1);
  EXPECT_EQ(events[0].tag, nullptr);
  // The wake was consumed: the next wait sleeps again.
  ASSERT_TRUE(set->Wait(0, events, 4, &n).ok());
  EXPECT_EQ(n, 0);
}

std::atomic<int> g_signals{0};
void CountSignal(int) { g_signals.fetch_add(1); }

TEST(EventSetTest, SignalsDoNotEndAWait) {
  struct sigaction action {};
  action.sa_handler = CountSignal;  // no SA_RESTART: epoll_wait fails with EINTR
  struct sigaction saved {};
  ASSERT_EQ(sigaction(SIGUSR1, &action, &saved), 0);
  auto set = NewSet();
  EventSet::Event events[4];
  int n = 0;
  Status status;
  std::atomic<bool> started{false}, returned{false};
  std::thread waiter([&] {
    started = true;
    status = set->Wait(-1, events, 4, &n);
    returned = true;
  });
  while (!started) std::this_thread::yield();
  // Signals until several arrived, most of them while it waits (or until the
  // wait gave up, which is the failure this test is about).
  const int before = g_signals.load();
  while (g_signals.load() < before + 20 && !returned) {
    pthread_kill(waiter.native_handle(), SIGUSR1);
    std::this_thread::yield();
  }
  set->Wake();
  waiter.join();
  sigaction(SIGUSR1, &saved, nullptr);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(n, 1);
  EXPECT_EQ(events[0].tag, nullptr);
}

}  // namespace
}  // namespace platform
}  // namespace grpc_shm
