#include "duet/sim/event_queue.hpp"

namespace duet::sim {

EventId EventQueue::schedule(net::TimePoint at, std::function<void()> fn) {
  if (at < now_) at = now_;
  const EventId id = next_seq_++;
  heap_.push(Event{at, id, std::move(fn)});
  return id;
}

void EventQueue::cancel(EventId id) {
  if (id != 0 && id < next_seq_) cancelled_.insert(id);
}

void EventQueue::drop_cancelled_top() {
  while (!heap_.empty() && !cancelled_.empty()) {
    auto it = cancelled_.find(heap_.top().seq);
    if (it == cancelled_.end()) return;
    cancelled_.erase(it);
    heap_.pop();
  }
}

bool EventQueue::empty() {
  drop_cancelled_top();
  return heap_.empty();
}

bool EventQueue::next_time(net::TimePoint& out) {
  drop_cancelled_top();
  if (heap_.empty()) return false;
  out = heap_.top().at;
  return true;
}

bool EventQueue::run_one() {
  drop_cancelled_top();
  if (heap_.empty()) return false;
  // priority_queue::top() is const; the event is moved out before pop, then run.
  Event ev = std::move(const_cast<Event&>(heap_.top()));
  heap_.pop();
  now_ = ev.at;
  ++processed_;
  ev.fn();
  return true;
}

void EventQueue::advance_to(net::TimePoint t) {
  if (t > now_) now_ = t;
}

}  // namespace duet::sim
