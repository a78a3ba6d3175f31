// Keypairs: made by handshakes, found by receiver index, retired when replaced or too
// old, all erased when nobody renews them.
#include "wg_session.hpp"

namespace duet::tunnel {

std::shared_ptr<KeypairState> Device::add_keypair(std::size_t peer, const Keypair& k) {
  auto state = std::make_shared<KeypairState>();
  state->keys = k;
  state->peer = peer;
  state->created = clock_.now();
  by_index_[k.local_index] = state;
  return state;
}

void Device::retire(std::shared_ptr<KeypairState>& k) {
  if (!k) return;
  auto it = by_index_.find(k->keys.local_index);
  if (it != by_index_.end() && it->second == k) by_index_.erase(it);
  k.reset();
}

void Device::retire_all(PeerState& ps) {
  retire(ps.previous);
  retire(ps.current);
  for (auto& n : ps.next) retire(n);
  ps.next.clear();
  ps.staged.reset();
  if (ps.live) {
    ps.live = false;
    --live_;
  }
  ps.rekey_since.reset();
  for (auto* t : {&ps.retransmit_timer, &ps.keepalive_timer, &ps.erase_timer}) {
    if (*t) (*t)->cancel();
  }
}

bool Device::usable(const std::shared_ptr<KeypairState>& k) const {
  return k && clock_.now() - k->created < kRejectAfterTime && k->send_counter < kRejectAfterMessages;
}

void Device::handshake_done(std::size_t peer) {
  auto& ps = peers_[peer];
  ps.last_handshake = clock_.now();
  ++ps.handshakes;
  ++handshakes_;
  const std::int64_t second = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  auto& slot = handshakes_by_second_[static_cast<std::size_t>(second) % handshakes_by_second_.size()];
  if (slot.first != second) slot = {second, 0};
  ++slot.second;
  if (!ps.live) {
    ps.live = true;
    ++live_;
  }
  // Keys nobody renews are erased after three times their lifetime.
  timer(ps.erase_timer).start(3 * kRejectAfterTime, [this, peer] { retire_all(peers_[peer]); });
}

double Device::handshake_rate() const {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  std::uint64_t n = 0;
  for (const auto& [second, count] : handshakes_by_second_) {
    if (second < now && now - second <= 10) n += count;  // the 10 whole seconds before this one
  }
  return static_cast<double>(n) / 10.0;
}

}  // namespace duet::tunnel
