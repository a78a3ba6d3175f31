#include "duet/transport/flow.hpp"

#include <algorithm>

namespace duet::transport {

void FlowControl::begin_batch() {
  in_batch_ = true;
  batch_time_ = clock_.now();
}

void FlowControl::end_batch() {
  in_batch_ = false;
  if (!congested_.empty()) update();  // a batch may have fed an outlet that is not full
}

void FlowControl::fed(const void* outlet) {
  if (!in_batch_) return;
  // Most of a batch goes to one outlet: one stamp for it.
  if (outlet == last_fed_ && last_fed_time_ == batch_time_) return;
  last_fed_ = outlet;
  last_fed_time_ = batch_time_;
  fed_at_[outlet] = batch_time_;
}

bool FlowControl::is_congested(const void* outlet) const {
  return std::find(congested_.begin(), congested_.end(), outlet) != congested_.end();
}

bool FlowControl::all_recent_congested() {
  const auto now = clock_.now();
  for (auto it = fed_at_.begin(); it != fed_at_.end();) {
    if (now - it->second > kFedRecently) {
      if (it->first == last_fed_) last_fed_ = nullptr;
      it = fed_at_.erase(it);
      continue;
    }
    if (!is_congested(it->first)) return false;
    ++it;
  }
  return true;
}

void FlowControl::update() {
  const bool pause = !congested_.empty() && all_recent_congested();
  pausing_ = pause;
  if (listener_) listener_();
}

bool FlowControl::add(const void* outlet) {
  if (is_congested(outlet)) return false;
  congested_.push_back(outlet);
  ++episodes_;
  update();
  if (!pausing_) ++isolated_;
  return true;
}

void FlowControl::queued(const net::StreamSocket& stream) {
  fed(&stream);
  if (stream.queued() >= kStreamHighWater) add(&stream);
}

bool FlowControl::admits(const net::StreamSocket& stream) {
  const std::size_t queued = stream.queued();
  if (queued < kStreamHighWater || (pausing_ && queued < kMaxStreamQueue)) return true;
  ++drops_;
  return false;
}

void FlowControl::wrote(const net::StreamSocket& stream) {
  if (congested_.empty()) return;
  const auto it = std::find(congested_.begin(), congested_.end(), &stream);
  if (it == congested_.end()) return;
  ++progress_;
  if (stream.queued() <= kStreamLowWater) remove(static_cast<std::size_t>(it - congested_.begin()));
}

void FlowControl::blocked(const net::DatagramSocket& socket, bool blocked) {
  if (blocked) {
    if (!add(&socket)) ++progress_;  // refused again after a wait: the kernel took some meanwhile
    return;
  }
  const auto it = std::find(congested_.begin(), congested_.end(), &socket);
  if (it == congested_.end()) return;
  ++progress_;
  remove(static_cast<std::size_t>(it - congested_.begin()));
}

void FlowControl::forget_outlet(const void* outlet) {
  fed_at_.erase(outlet);
  if (outlet == last_fed_) last_fed_ = nullptr;
  const auto it = std::find(congested_.begin(), congested_.end(), outlet);
  if (it != congested_.end()) remove(static_cast<std::size_t>(it - congested_.begin()));
}

void FlowControl::remove(std::size_t i) {
  congested_.erase(congested_.begin() + static_cast<std::ptrdiff_t>(i));
  update();
}

}  // namespace duet::transport
