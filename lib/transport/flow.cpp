#include "duet/transport/flow.hpp"

namespace duet::transport {

void FlowControl::begin_batch() {
  in_batch_ = true;
  batch_time_ = clock_.now();
}

void FlowControl::end_batch() {
  in_batch_ = false;
  if (congested_ != 0) update();  // a batch may have fed an outlet that is not full
}

void FlowControl::fed(const void* outlet) {
  if (!in_batch_) return;
  // Most of a batch goes to one outlet: one stamp for it.
  if (outlet == last_fed_ && last_fed_time_ == batch_time_) return;
  last_fed_ = outlet;
  last_fed_time_ = batch_time_;
  Outlet& o = outlets_[outlet];
  o.fed_at = batch_time_;
  o.fed = true;
}

bool FlowControl::all_recent_congested() {
  const auto now = clock_.now();
  bool all = true;
  for (auto it = outlets_.begin(); it != outlets_.end();) {
    Outlet& o = it->second;
    if (o.fed && now - o.fed_at > kFedRecently) {
      o.fed = false;
      if (it->first == last_fed_) last_fed_ = nullptr;
    }
    if (!o.fed && !o.congested) {
      it = outlets_.erase(it);
      continue;
    }
    if (o.fed && !o.congested) {
      all = false;
      break;  // someone else still takes traffic; the rest is looked at next time
    }
    ++it;
  }
  return all;
}

void FlowControl::update() {
  pausing_ = congested_ != 0 && all_recent_congested();
  if (listener_) listener_();
}

bool FlowControl::add(const void* outlet) {
  Outlet& o = outlets_[outlet];
  if (o.congested) return false;
  o.congested = true;
  ++congested_;
  ++episodes_;
  update();
  if (!pausing_) ++isolated_;
  return true;
}

void FlowControl::relieve(std::unordered_map<const void*, Outlet>::iterator it) {
  it->second.congested = false;
  --congested_;
  if (!it->second.fed) {
    if (it->first == last_fed_) last_fed_ = nullptr;
    outlets_.erase(it);
  }
  update();
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
  if (congested_ == 0) return;
  const auto it = outlets_.find(&stream);
  if (it == outlets_.end() || !it->second.congested) return;
  ++progress_;
  if (stream.queued() <= kStreamLowWater) relieve(it);
}

void FlowControl::blocked(const net::DatagramSocket& socket, bool blocked) {
  if (blocked) {
    if (!add(&socket)) ++progress_;  // refused again after a wait: the kernel took some meanwhile
    return;
  }
  const auto it = outlets_.find(&socket);
  if (it == outlets_.end() || !it->second.congested) return;
  ++progress_;
  relieve(it);
}

void FlowControl::forget_outlet(const void* outlet) {
  if (outlet == last_fed_) last_fed_ = nullptr;
  const auto it = outlets_.find(outlet);
  if (it == outlets_.end()) return;
  const bool was_congested = it->second.congested;
  outlets_.erase(it);
  if (was_congested) {
    --congested_;
    update();
  }
}

}  // namespace duet::transport
