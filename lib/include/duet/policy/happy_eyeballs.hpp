// Happy Eyeballs as a pure machine (RFC 8305 section 5, sans I/O): the caller feeds it
// the attempts' outcomes and the time, and carries out what it asks (start attempt i,
// cancel attempt j). With an attempt delay of 0 it tries strictly in order instead.
// Every attempt gives up at its own deadline (connect-timeout).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "duet/net/clock.hpp"

namespace duet::policy {

class HappyEyeballs {
public:
  struct Action {
    enum Kind { start, cancel, succeeded, failed } kind;
    std::size_t index = 0;  ///< the attempt (for start, cancel, succeeded)
    friend bool operator==(const Action&, const Action&) = default;
  };

  /// `candidates` addresses in the order to try; `attempt_delay` 0 = no racing.
  HappyEyeballs(std::size_t candidates, net::Duration attempt_delay, net::Duration attempt_timeout);

  /// Begins: starts the first attempt (or fails at once with no candidates).
  std::vector<Action> start(net::TimePoint now);
  /// Attempt `i` failed (an error, or the caller's own timeout).
  std::vector<Action> on_failure(std::size_t i, net::TimePoint now);
  /// Attempt `i` succeeded: the others are cancelled.
  std::vector<Action> on_success(std::size_t i, net::TimePoint now);
  /// Time has reached a deadline: start the next attempt, time out old ones.
  std::vector<Action> on_timer(net::TimePoint now);
  /// When on_timer must next be called, if anything is pending.
  [[nodiscard]] std::optional<net::TimePoint> next_deadline() const;
  [[nodiscard]] bool finished() const { return finished_; }
  /// Attempts started so far.
  [[nodiscard]] std::size_t started() const { return next_; }

private:
  enum class State { idle, running, failed, succeeded };
  void start_next(net::TimePoint now, std::vector<Action>& out);
  void finish_if_exhausted(std::vector<Action>& out);

  std::size_t candidates_;
  net::Duration delay_;
  net::Duration timeout_;
  std::vector<State> states_;
  std::vector<net::TimePoint> deadlines_;
  std::size_t next_ = 0;  ///< next attempt to start
  net::TimePoint last_start_{};
  bool finished_ = false;
};

}  // namespace duet::policy
