// platform::EventSet: what the transport's poller thread waits in.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#if defined(__linux__) && !defined(GRPC_SHM_PORTABLE_POSIX)
#include <sys/epoll.h>
#endif
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
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

// A set without epoll (poll(): macOS, the BSDs) waits on a copy of its
// handles; one added while another thread waits must still be watched.
TEST(EventSetTest, AHandleAddedDuringAWaitIsWatched) {
  auto set = NewSet();
  SocketPair pair;
  int tag;
  EventSet::Event events[4];
  int n = 0;
  Status status;
  std::atomic<bool> started{false};
  std::thread waiter([&] {
    started = true;
    status = set->Wait(-1, events, 4, &n);
  });
  while (!started) std::this_thread::yield();
  ASSERT_TRUE(set->Add(pair.ours.get(), EventSet::kReadable, &tag).ok());
  ASSERT_EQ(write(pair.theirs.get(), "x", 1), 1);
  waiter.join();
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(n, 1);  // the Add itself is no event: only what it watches
  EXPECT_EQ(events[0].tag, &tag);
  EXPECT_EQ(events[0].events & EventSet::kReadable, EventSet::kReadable);
  set->Remove(pair.ours.get());
}

TEST(EventSetTest, ARemovedHandleIsNotReported) {
  auto set = NewSet();
  SocketPair pair;
  int tag;
  ASSERT_TRUE(set->Add(pair.ours.get(), EventSet::kReadable, &tag).ok());
  ASSERT_EQ(write(pair.theirs.get(), "x", 1), 1);
  set->Remove(pair.ours.get());
  EventSet::Event events[4];
  int n = -1;
  ASSERT_TRUE(set->Wait(0, events, 4, &n).ok());
  EXPECT_EQ(n, 0);
}

TEST(EventSetTest, MoreReadyHandlesThanRoomAllGetTheirTurn) {
  auto set = NewSet();
  constexpr int kPairs = 5;
  SocketPair pairs[kPairs];
  int tags[kPairs];
  for (int i = 0; i < kPairs; ++i) {
    ASSERT_TRUE(set->Add(pairs[i].ours.get(), EventSet::kReadable, &tags[i]).ok());
    ASSERT_EQ(write(pairs[i].theirs.get(), "x", 1), 1);
  }
  // Two at a time, nothing drained: level-triggered, every handle stays
  // ready, and each must be reported within a few rounds.
  std::set<void*> seen;
  for (int round = 0; round < 2 * kPairs && seen.size() < kPairs; ++round) {
    EventSet::Event events[2];
    int n = 0;
    ASSERT_TRUE(set->Wait(0, events, 2, &n).ok());
    ASSERT_LE(n, 2);
    for (int i = 0; i < n; ++i) seen.insert(events[i].tag);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kPairs));
  for (auto& pair : pairs) set->Remove(pair.ours.get());
}

// Timers a poller waits on (timerfd on Linux, a timer thread elsewhere).
// WatchReadable: what the transport gives gRPC's poller for a doorbell.
TEST(WatchReadableTest, ReadableWithDataOrHangupAndNotAfterADrain) {
  auto set = NewSet();
  SocketPair pair;
  UniqueHandle watch;
  ASSERT_TRUE(WatchReadable(pair.ours.get(), &watch).ok());
  int tag;
  ASSERT_TRUE(set->Add(watch.get(), EventSet::kReadable, &tag).ok());
  EventSet::Event events[4];
  int n = -1;
  ASSERT_TRUE(set->Wait(0, events, 4, &n).ok());
  EXPECT_EQ(n, 0);
  ASSERT_EQ(::send(pair.theirs.get(), "x", 1, 0), 1);
  ASSERT_TRUE(set->Wait(-1, events, 4, &n).ok());
  ASSERT_EQ(n, 1);
  EXPECT_EQ(events[0].tag, &tag);
  char byte;
  ASSERT_EQ(::recv(pair.ours.get(), &byte, 1, 0), 1);
  ASSERT_TRUE(set->Wait(0, events, 4, &n).ok());
  EXPECT_EQ(n, 0) << "still readable after the socket was drained";
  pair.theirs.reset();
  ASSERT_TRUE(set->Wait(-1, events, 4, &n).ok());
  ASSERT_EQ(n, 1) << "a hang-up must make the watch readable";
  set->Remove(watch.get());
}

#if defined(__linux__) && !defined(GRPC_SHM_PORTABLE_POSIX)
// gRPC's epoll1 engine watches each descriptor edge-triggered for input and
// output. Over a socket that rings both ways, the peer draining our ring
// byte is an output edge: the watch must not pass it on, while the plain
// duplicate it replaced does (which is what made it worth having).
int OutputEdgesSeenWhenThePeerDrains(NativeHandle watched, const SocketPair& pair) {
  UniqueHandle grpc_like(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
  EXPECT_EQ(::epoll_ctl(grpc_like.get(), EPOLL_CTL_ADD, watched, &ev), 0);
  epoll_event ready[4];
  // Registering reports the initial state once; take it.
  (void)::epoll_wait(grpc_like.get(), ready, 4, 0);
  EXPECT_EQ(::send(pair.ours.get(), "x", 1, 0), 1);
  (void)::epoll_wait(grpc_like.get(), ready, 4, 0);
  char byte;
  EXPECT_EQ(::recv(pair.theirs.get(), &byte, 1, 0), 1);
  return ::epoll_wait(grpc_like.get(), ready, 4, 0);
}

TEST(WatchReadableTest, ThePeerDrainingOurBytesWakesNobody) {
  SocketPair pair;
  UniqueHandle watch, dup;
  ASSERT_TRUE(WatchReadable(pair.ours.get(), &watch).ok());
  ASSERT_TRUE(DuplicateHandle(pair.ours.get(), &dup).ok());
  EXPECT_EQ(OutputEdgesSeenWhenThePeerDrains(watch.get(), pair), 0);
  EXPECT_EQ(OutputEdgesSeenWhenThePeerDrains(dup.get(), pair), 1);
}
#endif

TEST(TimerTest, ArmedTimerBecomesReadable) {
  UniqueHandle timer;
  ASSERT_TRUE(CreateTimer(&timer).ok());
  ASSERT_TRUE(ArmTimer(timer.get(), std::chrono::milliseconds(1)).ok());
  Status status = WaitReadable(timer.get(), 60 * 1000);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST(TimerTest, TimerIsNotReadableBeforeItsDeadline) {
  UniqueHandle timer;
  ASSERT_TRUE(CreateTimer(&timer).ok());
  EXPECT_EQ(WaitReadable(timer.get(), 0).code(), StatusCode::kTimeout);  // never armed
  ASSERT_TRUE(ArmTimer(timer.get(), std::chrono::hours(1)).ok());
  EXPECT_EQ(WaitReadable(timer.get(), 50).code(), StatusCode::kTimeout);
}

TEST(TimerTest, ManyTimersEachFireThroughAnEventSet) {
  auto set = NewSet();
  constexpr int kTimers = 20;
  UniqueHandle timers[kTimers];
  std::set<void*> pending;
  for (int i = 0; i < kTimers; ++i) {
    ASSERT_TRUE(CreateTimer(&timers[i]).ok());
    ASSERT_TRUE(ArmTimer(timers[i].get(), std::chrono::milliseconds(i)).ok());
    ASSERT_TRUE(set->Add(timers[i].get(), EventSet::kReadable, &timers[i]).ok());
    pending.insert(&timers[i]);
  }
  while (!pending.empty()) {
    EventSet::Event events[8];
    int n = 0;
    ASSERT_TRUE(set->Wait(60 * 1000, events, 8, &n).ok());
    ASSERT_GT(n, 0) << pending.size() << " timers never fired";
    for (int i = 0; i < n; ++i) {
      auto* timer = static_cast<UniqueHandle*>(events[i].tag);
      set->Remove(timer->get());
      pending.erase(timer);
    }
  }
}

}  // namespace
}  // namespace platform
}  // namespace grpc_shm
