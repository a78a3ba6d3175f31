#include "duet/transport/flow.hpp"

#include <algorithm>

namespace duet::transport {

bool FlowControl::add(const void* outlet) {
  if (std::find(congested_.begin(), congested_.end(), outlet) != congested_.end()) return false;
  congested_.push_back(outlet);
  ++episodes_;
  if (congested_.size() == 1 && listener_) listener_(true);
  return true;
}

void FlowControl::queued(const net::StreamSocket& stream) {
  if (stream.queued() >= kStreamHighWater) add(&stream);
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
  const auto it = std::find(congested_.begin(), congested_.end(), outlet);
  if (it != congested_.end()) remove(static_cast<std::size_t>(it - congested_.begin()));
}

void FlowControl::remove(std::size_t i) {
  congested_.erase(congested_.begin() + static_cast<std::ptrdiff_t>(i));
  if (congested_.empty() && listener_) listener_(false);
}

}  // namespace duet::transport
