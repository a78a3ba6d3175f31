// One queue of timed events, ordered by (virtual time, insertion sequence): two events
// at the same instant always run in the order they were scheduled.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <unordered_set>
#include <vector>

#include "duet/net/clock.hpp"

namespace duet::sim {

using EventId = std::uint64_t;

class EventQueue {
public:
  /// Schedules `fn` at absolute time `at` (clamped to now); returns an id for cancel().
  EventId schedule(net::TimePoint at, std::function<void()> fn);
  /// Drops an event that has not run yet (callers must not cancel one that ran).
  void cancel(EventId id);
  /// Runs the next event, advancing now(); false when nothing is left.
  bool run_one();
  /// Time of the next live event, if any.
  [[nodiscard]] bool next_time(net::TimePoint& out);
  [[nodiscard]] net::TimePoint now() const { return now_; }
  /// Moves time forward with no event (never backwards).
  void advance_to(net::TimePoint t);
  [[nodiscard]] std::uint64_t processed() const { return processed_; }
  [[nodiscard]] bool empty();

private:
  // The heap holds small entries; the callbacks stay put in slots, so sifting moves
  // 24 bytes instead of a std::function.
  struct Entry {
    net::TimePoint at;
    EventId seq;
    std::uint32_t slot;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
  };
  void drop_cancelled_top();
  void pop_top();

  std::vector<Entry> heap_;
  std::vector<std::function<void()>> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::unordered_set<EventId> cancelled_;
  net::TimePoint now_{};
  EventId next_seq_ = 1;
  std::uint64_t processed_ = 0;
};

}  // namespace duet::sim
