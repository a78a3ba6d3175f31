#include "event_queue.hpp"

namespace duet::sim {

EventId EventQueue::schedule(net::TimePoint at, std::function<void()> fn) {
  if (at < now_) at = now_;
  const EventId id = next_seq_++;
  std::uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.push_back(std::move(fn));
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = std::move(fn);
  }
  heap_.push_back(Entry{at, id, slot});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  return id;
}

void EventQueue::cancel(EventId id) {
  if (id != 0 && id < next_seq_) cancelled_.insert(id);
}

void EventQueue::pop_top() {
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  const std::uint32_t slot = heap_.back().slot;
  heap_.pop_back();
  slots_[slot] = nullptr;
  free_slots_.push_back(slot);
}

void EventQueue::drop_cancelled_top() {
  while (!heap_.empty() && !cancelled_.empty()) {
    auto it = cancelled_.find(heap_.front().seq);
    if (it == cancelled_.end()) return;
    cancelled_.erase(it);
    pop_top();
  }
}

bool EventQueue::empty() {
  drop_cancelled_top();
  return heap_.empty();
}

bool EventQueue::next_time(net::TimePoint& out) {
  drop_cancelled_top();
  if (heap_.empty()) return false;
  out = heap_.front().at;
  return true;
}

bool EventQueue::run_one() {
  drop_cancelled_top();
  if (heap_.empty()) return false;
  const Entry top = heap_.front();
  std::function<void()> fn = std::move(slots_[top.slot]);
  pop_top();
  now_ = top.at;
  ++processed_;
  fn();
  return true;
}

void EventQueue::advance_to(net::TimePoint t) {
  if (t > now_) now_ = t;
}

}  // namespace duet::sim
