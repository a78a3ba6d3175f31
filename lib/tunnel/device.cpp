// The device and its peers: construction, sessions for the engine, peers found by key,
// the path each peer talks on, and reloads that keep what did not change.
#include "wg_session.hpp"

namespace duet::tunnel {

Device::Device(Identity me, std::vector<PeerConfig> peers, net::Clock& clock, PacketSink to_tun, RandomSource random,
               Limits limits)
    : me_(me), clock_(clock), to_tun_(std::move(to_tun)), random_(std::move(random)), limits_(limits) {
  for (auto& p : peers) peers_.push_back({std::move(p)});
  random_(std::span(reinterpret_cast<std::uint8_t*>(&next_index_), sizeof next_index_));
}

Device::~Device() = default;

Key Device::new_ephemeral() {
  Key k;
  random_(k);
  return clamp_private_key(k);
}

std::uint32_t Device::new_index() {
  // Indices are a counter from a random start, skipping any still in use after a wrap.
  do {
    ++next_index_;
  } while (by_index_.contains(next_index_));
  return next_index_;
}

net::Timer& Device::timer(std::unique_ptr<net::Timer>& t) {
  if (!t) t = clock_.make_timer();
  return *t;
}

std::unique_ptr<transport::Session> Device::make_initiator(std::size_t peer, const net::Endpoint& remote,
                                                           config::Transport transport) {
  return std::make_unique<WgSession>(*this, peer, remote, transport);
}
std::unique_ptr<transport::Session> Device::make_responder(const net::Endpoint& remote, config::Transport transport) {
  return std::make_unique<WgSession>(*this, std::nullopt, remote, transport);
}

std::optional<std::size_t> Device::find_peer(const Key& public_key) const {
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (!peers_[i].removed && peers_[i].config.public_key == public_key) return i;
  }
  return std::nullopt;
}

void Device::make_active(WgSession& s) {
  if (!s.peer_) return;
  auto& ps = peers_[*s.peer_];
  if (ps.removed) return;
  ps.active = &s;
  ps.endpoint = s.remote_;
  ps.transport = s.transport_;
  flush_staged(*s.peer_);
}

void Device::forget(WgSession& s) {
  for (auto& ps : peers_) {
    if (ps.active == &s) ps.active = nullptr;
  }
}

Device::PeerChanges Device::update_peers(const std::vector<PeerConfig>& peers) {
  PeerChanges c;
  std::vector<bool> seen(peers_.size(), false);
  for (const auto& p : peers) {
    if (auto i = find_peer(p.public_key)) {
      peers_[*i].config = p;
      seen[*i] = true;
      ++c.kept;
    } else {
      peers_.push_back({p});
      seen.push_back(true);
      ++c.added;
    }
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i] && !peers_[i].removed) {
      peers_[i].removed = true;
      peers_[i].config.allowed_ips.clear();  // routes nothing, accepts nothing
      peers_[i].active = nullptr;
      retire_all(peers_[i]);
      ++c.removed;
    }
  }
  return c;
}

}  // namespace duet::tunnel
