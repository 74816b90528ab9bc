// SpinPolicy: spins while spinning pays, backs off exponentially (to at most
// 63 skipped opportunities) while it does not, and recovers at the first hit.
// SpinSlots: no more spinners in a process than it has slots.
#include "plugin/transport/spin_policy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace grpc_shm {
namespace transport {
namespace {

using std::chrono::microseconds;

// Opportunities skipped before the next spin is allowed.
int SkippedBeforeNextSpin(SpinPolicy* policy) {
  int skipped = 0;
  while (!policy->ShouldSpin()) ++skipped;
  return skipped;
}

TEST(SpinPolicyTest, ZeroBudgetNeverSpins) {
  SpinPolicy policy;
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(policy.ShouldSpin());
}

TEST(SpinPolicyTest, SpinsEveryTimeWhileFramesArrive) {
  SpinPolicy policy(microseconds(50));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(policy.ShouldSpin()) << i;
    policy.Record(/*frame_arrived=*/true);
  }
}

TEST(SpinPolicyTest, MissesBackOffExponentiallyUpToACap) {
  SpinPolicy policy(microseconds(50));
  ASSERT_TRUE(policy.ShouldSpin());
  std::vector<int> skips;
  for (int i = 0; i < 9; ++i) {
    policy.Record(/*frame_arrived=*/false);
    skips.push_back(SkippedBeforeNextSpin(&policy));
  }
  EXPECT_EQ(skips, (std::vector<int>{1, 3, 7, 15, 31, 63, 63, 63, 63}));
}

TEST(SpinPolicyTest, OneHitRestoresSpinningAtOnce) {
  SpinPolicy policy(microseconds(50));
  for (int i = 0; i < 8; ++i) {
    while (!policy.ShouldSpin()) {
    }
    policy.Record(/*frame_arrived=*/false);
  }
  while (!policy.ShouldSpin()) {
  }
  policy.Record(/*frame_arrived=*/true);
  EXPECT_TRUE(policy.ShouldSpin());
  policy.Record(/*frame_arrived=*/false);
  EXPECT_EQ(SkippedBeforeNextSpin(&policy), 1);  // the back-off starts over
}

TEST(SpinSlotsTest, NoMoreSpinnersThanSlotsAndAReleasedSlotIsFreeAgain) {
  SpinSlots slots(2);
  EXPECT_TRUE(slots.TryAcquire());
  EXPECT_TRUE(slots.TryAcquire());
  EXPECT_FALSE(slots.TryAcquire());
  slots.Release();
  EXPECT_TRUE(slots.TryAcquire());
  EXPECT_FALSE(slots.TryAcquire());
}

TEST(SpinSlotsTest, HalfTheCpusAndAlwaysAtLeastOne) {
  EXPECT_EQ(SpinSlots::ForThisMachine(0), 1);
  EXPECT_EQ(SpinSlots::ForThisMachine(1), 1);
  EXPECT_EQ(SpinSlots::ForThisMachine(2), 1);
  EXPECT_EQ(SpinSlots::ForThisMachine(16), 8);
  SpinSlots none(0);
  EXPECT_TRUE(none.TryAcquire()) << "a process must always be allowed one spinner";
}

TEST(SpinSlotsTest, ConcurrentSpinnersNeverExceedTheSlots) {
  SpinSlots slots(3);
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!slots.TryAcquire()) continue;
        const int now = inside.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        inside.fetch_sub(1);
        slots.Release();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_TRUE(slots.TryAcquire());
}

}  // namespace
}  // namespace transport
}  // namespace grpc_shm
