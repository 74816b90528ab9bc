// SpinPolicy: spins while spinning pays, backs off exponentially (to at most
// 63 skipped opportunities) while it does not, and recovers at the first hit.
#include "plugin/transport/spin_policy.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace transport
}  // namespace grpc_shm
