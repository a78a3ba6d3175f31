// The device and its peers: construction, sessions for the engine, peers found by key,
// the path each peer talks on, and reloads that keep what did not change.
#include "wg_session.hpp"

namespace duet::tunnel {

Device::Device(Identity me, std::vector<PeerConfig> peers, net::Clock& clock, PacketSink to_tun, RandomSource random,
               Limits limits)
    : me_(me), clock_(clock), to_tun_(std::move(to_tun)), random_(std::move(random)), limits_(limits) {
  // A big server's peers come at once: room for exactly them, rather than doubling.
  by_key_.reserve(peers.size());
  peers_.reserve(peers.size());
  std::size_t prefixes = 0;
  for (const auto& p : peers) prefixes += p.allowed_ips.size();
  allowed_.reserve(prefixes);
  for (const auto& p : peers) {
    if (by_key_.contains(p.public_key)) continue;  // the first of two equal keys counts
    const std::size_t i = add_peer(p);
    add_allowed_ips(i);
    arm_persistent(i);
  }
  random_(std::span(reinterpret_cast<std::uint8_t*>(&next_index_), sizeof next_index_));
  precompute_static_static();
}

void Device::precompute_static_static() {
  constexpr std::size_t kPerTurn = 32;  // about a millisecond of work
  if (!has_identity_) return;
  for (std::size_t k = 0; k < kPerTurn && precomputed_ < peers_.size(); ++precomputed_) {
    auto& ps = peers_[precomputed_];
    if (ps.removed || ps.static_static) continue;
    ps.static_static = dh(me_.private_key, ps.config.public_key);
    ++k;
  }
  if (precomputed_ < peers_.size())
    timer(precompute_timer_).start(net::Duration{0}, [this] { precompute_static_static(); });
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
  auto s = std::make_unique<WgSession>(*this, peer, remote, transport);
  bind_peer(*s, peer);
  return s;
}
std::unique_ptr<transport::Session> Device::make_path(std::size_t peer, const net::Endpoint& remote) {
  auto s = std::make_unique<WgSession>(*this, peer, remote, config::Transport::udp);
  bind_peer(*s, peer);
  s->configured_ = true;
  return s;
}

void Device::set_identity(const std::optional<Identity>& id) {
  if (id.has_value() == has_identity_ && (!id || id->private_key == me_.private_key)) return;
  has_identity_ = id.has_value();
  me_ = id ? *id : Identity{};
  // Keys, handshakes in flight and cookies were all made with the old identity.
  for (auto& ps : peers_) {
    if (ps.removed) continue;
    retire_all(ps);
    ps.static_static.reset();
    ps.cookie.reset();
  }
  precomputed_ = 0;
  precompute_static_static();
}

void Device::arm_persistent(std::size_t peer) {
  auto& ps = peers_[peer];
  const net::Duration every = std::chrono::seconds(ps.config.persistent_keepalive);
  if (every == net::Duration::zero()) {
    if (ps.persistent_timer) ps.persistent_timer->cancel();
    return;
  }
  // Due `every` after the last packet sent to the peer (anything sent resets it).
  const auto now = clock_.now();
  const net::Duration wait = ps.last_sent + every > now ? ps.last_sent + every - now : net::Duration::zero();
  timer(ps.persistent_timer).start(wait, [this, peer, every] {
    auto& p = peers_[peer];
    if (p.removed || p.config.persistent_keepalive == 0) return;
    if (clock_.now() - p.last_sent >= every) send_keepalive(peer);
    arm_persistent(peer);
  });
}

void Device::send_keepalive(std::size_t peer) {
  auto& ps = peers_[peer];
  if (ps.removed || !has_identity_) return;
  if (!ps.active && path_needed_) path_needed_(peer);
  if (!ps.active) return;
  if (send_sealed(peer, {})) return;
  begin_handshake(peer, false);
  ps.last_sent = clock_.now();  // a handshake sent counts as sending
}

std::unique_ptr<transport::Session> Device::make_responder(const net::Endpoint& remote, config::Transport transport) {
  return std::make_unique<WgSession>(*this, std::nullopt, remote, transport);
}

std::optional<std::size_t> Device::find_peer(const Key& public_key) const {
  const auto it = by_key_.find(public_key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::size_t> Device::peer_of(const WgSession& s) const {
  if (!s.peer_ || *s.peer_ >= peers_.size()) return std::nullopt;
  const auto& ps = peers_[*s.peer_];
  if (ps.removed || ps.generation != s.generation_) return std::nullopt;
  return s.peer_;
}

bool Device::path_is_stale(const WgSession& s) const {
  const auto peer = peer_of(s);
  return !peer || peers_[*peer].active != &s;
}

void Device::bind_peer(WgSession& s, std::size_t peer) {
  s.peer_ = peer;
  s.generation_ = peers_[peer].generation;
}

bool Device::path_open_to(const WgSession& s, std::size_t peer) const {
  const auto holder = peer_of(s);
  // An initiator's path was made for its configured peer. A responder's source address
  // follows whoever authenticates from it, as a WireGuard endpoint does, once its holder
  // has been quiet long enough that a configured peer spoofing its address cannot take a
  // live peer's path away.
  return !holder || *holder == peer || (!s.initiator_ && clock_.now() - s.proven_at_ >= kPathHandOverIdle);
}

void Device::prove_path(WgSession& s, std::size_t peer) {
  if (const auto holder = peer_of(s); holder && *holder != peer) {
    // The peer that held it is not there any more: no packet for it goes to that address
    // (a path opened there would take the address back from the peer that has it now).
    forget(s);
    if (peers_[*holder].endpoint == s.remote_) peers_[*holder].endpoint.reset();
  }
  bind_peer(s, peer);
  s.proven_ = true;
  s.proven_at_ = clock_.now();
}

std::size_t Device::add_peer(const PeerConfig& config) {
  std::size_t i = peers_.size();
  if (!free_slots_.empty()) {
    i = free_slots_.back();
    free_slots_.pop_back();
    const std::uint32_t generation = peers_[i].generation;
    peers_[i] = PeerState{config};
    peers_[i].generation = generation;
  } else {
    peers_.push_back({config});
  }
  by_key_[config.public_key] = i;
  return i;
}

void Device::add_allowed_ips(std::size_t peer) {
  for (const auto& p : peers_[peer].config.allowed_ips) allowed_.insert(p, static_cast<AllowedIps::PeerId>(peer));
}

void Device::make_active(WgSession& s) {
  const auto peer = peer_of(s);
  if (!peer) return;
  auto& ps = peers_[*peer];
  ps.active = &s;
  ps.endpoint = s.remote_;
  ps.transport = s.transport_;
  flush_staged(*peer);
  handshake_for_staged(*peer);
}

void Device::forget(WgSession& s) {
  // Only its own peer can have made a path active (make_active).
  if (const auto peer = peer_of(s); peer && peers_[*peer].active == &s) peers_[*peer].active = nullptr;
}

Device::PeerChanges Device::update_peers(const std::vector<PeerConfig>& peers) {
  PeerChanges c;
  std::vector<bool> kept(peers_.size(), false);
  std::unordered_map<Key, bool, KeyHash> listed;  // a key given twice: the first counts
  std::vector<const PeerConfig*> added;
  for (const auto& p : peers) {
    if (!listed.emplace(p.public_key, true).second) continue;
    if (auto i = find_peer(p.public_key)) {
      const bool keepalive_on = peers_[*i].config.persistent_keepalive == 0 && p.persistent_keepalive != 0;
      peers_[*i].config = p;
      kept[*i] = true;
      arm_persistent(*i);
      if (keepalive_on) send_keepalive(*i);  // as WireGuard: at once when turned on
      ++c.kept;
    } else {
      added.push_back(&p);
    }
  }
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (kept[i] || peers_[i].removed) continue;
    retire_all(peers_[i]);
    by_key_.erase(peers_[i].config.public_key);
    // Its state goes; the slot stays (a new generation) for the next new peer.
    const std::uint32_t generation = peers_[i].generation + 1;
    peers_[i] = PeerState{};
    peers_[i].removed = true;
    peers_[i].generation = generation;
    free_slots_.push_back(i);
    ++c.removed;
  }
  std::vector<std::size_t> keepalive_now;
  for (const PeerConfig* p : added) {
    const std::size_t i = add_peer(*p);
    arm_persistent(i);
    if (p->persistent_keepalive != 0) keepalive_now.push_back(i);
  }
  c.added = added.size();
  precomputed_ = 0;  // new peers (perhaps in freed slots): the others are skipped quickly
  precompute_static_static();
  // The table again, in the new list's order (a prefix on two peers goes to the later).
  for (std::size_t i = 0; i < peers_.size(); ++i) allowed_.remove_peer(static_cast<AllowedIps::PeerId>(i));
  listed.clear();
  for (const auto& p : peers) {
    if (listed.emplace(p.public_key, true).second) add_allowed_ips(*find_peer(p.public_key));
  }
  for (const std::size_t i : keepalive_now) send_keepalive(i);
  return c;
}

}  // namespace duet::tunnel
