#include <gtest/gtest.h>

#include "duet/policy/happy_eyeballs.hpp"

using namespace duet;
using namespace std::chrono_literals;
using HE = policy::HappyEyeballs;
using A = HE::Action;

namespace {

net::TimePoint at(net::Duration d) { return net::TimePoint(d); }

TEST(HappyEyeballs, RacingStartsTheNextAttemptEveryDelay) {
  HE he(3, 250ms, 10s);
  EXPECT_EQ(he.start(at(0ms)), (std::vector<A>{{A::start, 0}}));
  EXPECT_EQ(he.next_deadline(), at(250ms));
  EXPECT_TRUE(he.on_timer(at(249ms)).empty());
  EXPECT_EQ(he.on_timer(at(250ms)), (std::vector<A>{{A::start, 1}}));
  EXPECT_EQ(he.next_deadline(), at(500ms));
  // Attempt 1 wins while 0 is still silent: 0 is cancelled.
  EXPECT_EQ(he.on_success(1, at(300ms)), (std::vector<A>{{A::cancel, 0}, {A::succeeded, 1}}));
  EXPECT_TRUE(he.finished());
  EXPECT_EQ(he.next_deadline(), std::nullopt);
  EXPECT_EQ(he.started(), 2u);
}

TEST(HappyEyeballs, AFailureStartsTheNextAttemptAtOnce) {
  HE he(3, 250ms, 10s);
  he.start(at(0ms));
  EXPECT_EQ(he.on_failure(0, at(20ms)), (std::vector<A>{{A::start, 1}}));
  EXPECT_EQ(he.next_deadline(), at(270ms));  // the delay restarts from the new attempt
  EXPECT_EQ(he.on_failure(1, at(30ms)), (std::vector<A>{{A::start, 2}}));
  EXPECT_EQ(he.on_failure(2, at(40ms)), (std::vector<A>{{A::failed, 0}}));
  EXPECT_TRUE(he.finished());
}

TEST(HappyEyeballs, InOrderWaitsForEachAttemptsTimeout) {
  HE he(2, 0ms, 10s);
  he.start(at(0ms));
  EXPECT_EQ(he.next_deadline(), at(10s));
  EXPECT_TRUE(he.on_timer(at(5s)).empty());
  EXPECT_EQ(he.on_timer(at(10s)), (std::vector<A>{{A::cancel, 0}, {A::start, 1}}));
  EXPECT_EQ(he.on_timer(at(20s)), (std::vector<A>{{A::cancel, 1}, {A::failed, 0}}));
}

TEST(HappyEyeballs, RacingAttemptsTimeOutOnTheirOwn) {
  HE he(2, 250ms, 1s);
  he.start(at(0ms));
  he.on_timer(at(250ms));  // starts 1
  EXPECT_EQ(he.on_timer(at(1s)), (std::vector<A>{{A::cancel, 0}}));
  EXPECT_EQ(he.on_timer(at(1250ms)), (std::vector<A>{{A::cancel, 1}, {A::failed, 0}}));
}

TEST(HappyEyeballs, LateEventsAreIgnored) {
  HE he(2, 250ms, 10s);
  he.start(at(0ms));
  he.on_success(0, at(10ms));
  EXPECT_TRUE(he.on_failure(0, at(20ms)).empty());
  EXPECT_TRUE(he.on_success(1, at(20ms)).empty());
  EXPECT_TRUE(he.on_timer(at(10s)).empty());
  EXPECT_TRUE(he.on_failure(7, at(20ms)).empty());
}

TEST(HappyEyeballs, NoCandidatesFailsAtOnce) {
  HE he(0, 250ms, 10s);
  EXPECT_EQ(he.start(at(0ms)), (std::vector<A>{{A::failed, 0}}));
}

}  // namespace
