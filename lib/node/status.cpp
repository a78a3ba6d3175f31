#include "duet/node/node.hpp"
#include "duet/tunnel/crypto_pool.hpp"

namespace duet::node {

Status Node::status(const PeerSelection& which) const {
  Status s;
  const config::Config& cfg = *current_;
  s.interface = tun_ ? tun_->name() : cfg.dev;
  s.mode = cfg.mode;
  if (server_) {
    for (const auto& l : server_->listening()) s.listening.push_back(l.to_string());
  }
  if (client_) {
    s.connected = client_->connected();
    if (auto r = client_->remote()) {
      s.path = Status::Path{*r, client_->transport().value_or(config::Transport::udp), client_->smoothed_rtt(),
                            client_->paths_declared_dead(), client_->moves_back()};
      if (const auto& standby = client_->standby()) {
        s.path->standby = standby->candidate.endpoint;
        s.path->standby_age = stack_.clock().now() - standby->checked;
      }
      s.path->standby_moves = client_->standby_moves();
    }
  }
  if (device_) {
    if (device_->has_identity()) s.public_key = device_->identity().public_key;
    const auto now = stack_.clock().now();
    const auto& peers = device_->peers();
    for (std::size_t i = 0; i < peers.size(); ++i) {
      const auto& p = peers[i];
      if (p.removed) continue;
      ++s.peers_configured;
      if (!which.all && (!which.key || *which.key != p.config.public_key)) continue;
      PeerStatus ps;
      ps.public_key = p.config.public_key;
      ps.allowed_ips = device_->allowed_ips(i);
      ps.endpoint = p.endpoint ? p.endpoint : p.config.endpoint;
      if (p.config.preshared != config::Key{}) ps.preshared = p.config.preshared;
      ps.persistent_keepalive = p.config.persistent_keepalive;
      ps.transport = p.transport;
      if (p.last_handshake) ps.since_handshake = now - *p.last_handshake;
      ps.rx_bytes = p.rx_bytes;
      ps.tx_bytes = p.tx_bytes;
      s.peers.push_back(std::move(ps));
    }
    s.peers_live = device_->live_peers();
    s.handshakes = device_->handshakes();
    s.handshakes_per_second = device_->handshake_rate();
    s.refused_max_clients = device_->refused_max_clients();
    s.cookie_replies_sent = device_->cookie_replies_sent();
    s.handshakes_rate_limited = device_->handshakes_rate_limited();
    s.sealed_on_threads = device_->threaded_crypto().sealed;
    s.opened_on_threads = device_->threaded_crypto().opened;
  }
  s.last_error = last_error_;
  if (tun_) {
    s.tun_offloads = tun_->offloads();
    s.tun_counters = tun_->counters();
  }
  s.streams_congested = flow_.episodes();
  s.stuck_overrides = stuck_overrides_;
  s.stream_drops = flow_.drops();
  s.congested_unpaused = flow_.isolated();
  s.tun_looks = looks_;
  s.crypto_threads = options_.limits.crypto != nullptr ? options_.limits.crypto->helpers() : 0;
  return s;
}

}  // namespace duet::node
