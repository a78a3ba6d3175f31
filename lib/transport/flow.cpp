#include "duet/transport/flow.hpp"

#include <algorithm>

namespace duet::transport {

void FlowControl::queued(const net::StreamSocket& stream) {
  if (stream.queued() < kStreamHighWater) return;
  if (std::find(congested_.begin(), congested_.end(), &stream) != congested_.end()) return;
  congested_.push_back(&stream);
  ++episodes_;
  if (congested_.size() == 1 && listener_) listener_(true);
}

void FlowControl::wrote(const net::StreamSocket& stream) {
  if (congested_.empty()) return;
  const auto it = std::find(congested_.begin(), congested_.end(), &stream);
  if (it == congested_.end()) return;
  ++progress_;
  if (stream.queued() <= kStreamLowWater) remove(static_cast<std::size_t>(it - congested_.begin()));
}

void FlowControl::forget(const net::StreamSocket& stream) {
  const auto it = std::find(congested_.begin(), congested_.end(), &stream);
  if (it != congested_.end()) remove(static_cast<std::size_t>(it - congested_.begin()));
}

void FlowControl::remove(std::size_t i) {
  congested_.erase(congested_.begin() + static_cast<std::ptrdiff_t>(i));
  if (congested_.empty() && listener_) listener_(false);
}

}  // namespace duet::transport
