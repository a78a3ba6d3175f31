#include "duet/policy/happy_eyeballs.hpp"

namespace duet::policy {

HappyEyeballs::HappyEyeballs(std::size_t candidates, net::Duration attempt_delay,
                             net::Duration attempt_timeout)
    : candidates_(candidates),
      delay_(attempt_delay),
      timeout_(attempt_timeout),
      states_(candidates, State::idle),
      deadlines_(candidates) {}

void HappyEyeballs::start_next(net::TimePoint now, std::vector<Action>& out) {
  if (next_ >= candidates_) return;
  const std::size_t i = next_++;
  states_[i] = State::running;
  deadlines_[i] = now + timeout_;
  last_start_ = now;
  out.push_back({Action::start, i});
}

void HappyEyeballs::finish_if_exhausted(std::vector<Action>& out) {
  if (finished_ || next_ < candidates_) return;
  for (auto s : states_) {
    if (s == State::running) return;
  }
  finished_ = true;
  out.push_back({Action::failed, 0});
}

std::vector<HappyEyeballs::Action> HappyEyeballs::start(net::TimePoint now) {
  std::vector<Action> out;
  if (candidates_ == 0) {
    finished_ = true;
    out.push_back({Action::failed, 0});
    return out;
  }
  start_next(now, out);
  return out;
}

std::vector<HappyEyeballs::Action> HappyEyeballs::on_failure(std::size_t i, net::TimePoint now) {
  std::vector<Action> out;
  if (finished_ || i >= candidates_ || states_[i] != State::running) return out;
  states_[i] = State::failed;
  // A failure starts the next attempt at once, racing or not (RFC 8305 section 5).
  start_next(now, out);
  finish_if_exhausted(out);
  return out;
}

std::vector<HappyEyeballs::Action> HappyEyeballs::on_success(std::size_t i, net::TimePoint) {
  std::vector<Action> out;
  if (finished_ || i >= candidates_ || states_[i] != State::running) return out;
  for (std::size_t j = 0; j < candidates_; ++j) {
    if (j != i && states_[j] == State::running) {
      states_[j] = State::failed;
      out.push_back({Action::cancel, j});
    }
  }
  states_[i] = State::succeeded;
  finished_ = true;
  out.push_back({Action::succeeded, i});
  return out;
}

std::vector<HappyEyeballs::Action> HappyEyeballs::on_timer(net::TimePoint now) {
  std::vector<Action> out;
  if (finished_) return out;
  for (std::size_t j = 0; j < next_; ++j) {
    if (states_[j] == State::running && deadlines_[j] <= now) {
      states_[j] = State::failed;
      out.push_back({Action::cancel, j});
      if (delay_.count() == 0) start_next(now, out);
    }
  }
  if (delay_.count() != 0 && next_ < candidates_ && last_start_ + delay_ <= now) start_next(now, out);
  // Racing: when nothing is in flight, the next one goes now rather than after the delay.
  bool any_running = false;
  for (auto s : states_) any_running = any_running || s == State::running;
  if (!any_running) start_next(now, out);
  finish_if_exhausted(out);
  return out;
}

std::optional<net::TimePoint> HappyEyeballs::next_deadline() const {
  if (finished_) return std::nullopt;
  std::optional<net::TimePoint> t;
  for (std::size_t j = 0; j < next_; ++j) {
    if (states_[j] == State::running && (!t || deadlines_[j] < *t)) t = deadlines_[j];
  }
  if (delay_.count() != 0 && next_ < candidates_) {
    const auto at = last_start_ + delay_;
    if (!t || at < *t) t = at;
  }
  return t;
}

}  // namespace duet::policy
