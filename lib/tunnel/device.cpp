#include "duet/tunnel/device.hpp"

#include <algorithm>
#include <array>
#include <chrono>

namespace duet::tunnel {

std::optional<InnerHeader> inner_header(std::span<const std::uint8_t> p) {
  if (p.empty()) return std::nullopt;
  InnerHeader h;
  if ((p[0] >> 4) == 4 && p.size() >= 20) {
    h.source = net::Address::v4(p[12], p[13], p[14], p[15]);
    h.destination = net::Address::v4(p[16], p[17], p[18], p[19]);
    h.length = (std::size_t{p[2]} << 8) | p[3];
  } else if ((p[0] >> 4) == 6 && p.size() >= 40) {
    net::Address::Bytes s{}, d{};
    std::copy(p.begin() + 8, p.begin() + 24, s.begin());
    std::copy(p.begin() + 24, p.begin() + 40, d.begin());
    h.source = net::Address::v6(s);
    h.destination = net::Address::v6(d);
    h.length = 40 + ((std::size_t{p[4]} << 8) | p[5]);
  } else {
    return std::nullopt;
  }
  if (h.length > p.size() || h.length < 20) return std::nullopt;
  return h;
}

namespace {
constexpr auto kHandshakeFloodInterval = std::chrono::milliseconds(20);  // 50 initiations/s per peer
constexpr auto kMaxJitter = std::chrono::milliseconds(333);
constexpr auto kReceiveRekeyAge = kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout;  // 165 s
}  // namespace

/// One path to a peer (a UDP source address or a TCP connection), as the engine's session.
/// The keys are the device's; the session keeps only a handshake it started.
class WgSession final : public transport::Session {
public:
  WgSession(Device& d, std::optional<std::size_t> peer, net::Endpoint remote, config::Transport transport)
      : d_(d), peer_(peer), initiator_(peer.has_value()), remote_(remote), transport_(transport) {}
  ~WgSession() override { d_.forget(*this); }

  std::vector<std::uint8_t> hello() override {
    if (!initiator_) return {};
    return d_.initiation(*this, *peer_);
  }

  Reply receive(std::span<const std::uint8_t> m) override {
    Reply r;
    if (m.empty()) return r;
    switch (m[0]) {
      case kMessageHandshakeInitiation: d_.on_initiation(*this, m, r); break;
      case kMessageHandshakeResponse: d_.on_response(*this, m, r); break;
      case kMessageHandshakeCookie: d_.on_cookie(*this, m); break;
      case kMessageData: d_.on_data(*this, m, r); break;
      default: break;
    }
    return r;
  }

  std::vector<std::uint8_t> keepalive() override {
    if (peer_) {
      if (auto m = d_.seal(*peer_, {})) return {m->begin(), m->end()};
    }
    return hello();
  }

  void attach(Sender send) override {
    sender_ = std::move(send);
    if (!sender_) d_.forget(*this);
    else if (proven_) d_.make_active(*this);
  }

  [[nodiscard]] bool can_send() const { return static_cast<bool>(sender_); }
  void send(std::span<const std::uint8_t> m) {
    if (sender_) sender_(m);
  }

private:
  friend class Device;
  Device& d_;
  std::optional<std::size_t> peer_;  ///< configured (initiator) or learned (responder)
  bool initiator_;
  bool proven_ = false;  ///< the peer has authenticated itself on this path
  std::optional<InitiatorState> pending_;
  Mac sent_mac1_{};
  net::Endpoint remote_;
  config::Transport transport_;
  Sender sender_;
};

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

// --- keypairs ---------------------------------------------------------------------------

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
  ps.staged.clear();
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
  // Keys nobody renews are erased after three times their lifetime.
  timer(ps.erase_timer).start(3 * kRejectAfterTime, [this, peer] { retire_all(peers_[peer]); });
}

// --- handshakes ---------------------------------------------------------------------------

Bytes Device::initiation(WgSession& s, std::size_t peer) {
  auto& ps = peers_[peer];
  if (ps.removed) return {};
  const auto wall = clock_.wall_now().time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(wall);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wall - secs);
  std::optional<Mac> cookie;
  if (ps.cookie && clock_.now() - ps.cookie_received < kCookieRefreshTime) cookie = ps.cookie;
  InitiatorState state;
  auto m = create_initiation(me_, ps.config.public_key, ps.config.preshared, new_index(),
                             tai64n(static_cast<std::uint64_t>(secs.count()), static_cast<std::uint32_t>(ns.count())),
                             new_ephemeral(), state, cookie);
  s.pending_ = state;
  s.sent_mac1_ = *mac1_of(m);
  return m;
}

Mac Device::cookie_for(const net::Endpoint& source) {
  const auto now = clock_.now();
  if (!cookie_secret_at_ || now - *cookie_secret_at_ >= kCookieRefreshTime) {
    random_(cookie_secret_);
    cookie_secret_at_ = now;
  }
  const auto& a = source.address.bytes();
  Bytes who(a.begin(), a.begin() + (source.family() == net::Family::v4 ? 4 : 16));
  who.push_back(static_cast<std::uint8_t>(source.port >> 8));
  who.push_back(static_cast<std::uint8_t>(source.port));
  return mac(cookie_secret_, who);
}

bool Device::handshake_allowed(const net::Endpoint& source) {
  constexpr std::size_t kMaxSources = 8192;
  const auto now = clock_.now();
  const net::Duration cost = std::chrono::duration_cast<net::Duration>(std::chrono::seconds(1)) /
                             static_cast<long>(std::max<std::size_t>(limits_.handshakes_per_source, 1));
  const net::Duration capacity = cost * static_cast<long>(std::max<std::size_t>(limits_.handshake_burst, 1));
  std::uint64_t key = 0;
  const auto& b = source.address.bytes();
  for (std::size_t i = 0; i < (source.family() == net::Family::v4 ? 4u : 8u); ++i) key = key << 8 | b[i];
  const std::pair<bool, std::uint64_t> who{source.family() == net::Family::v6, key};
  auto it = buckets_.find(who);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxSources) {
      // Sources quiet for a second have full buckets: forgetting them changes nothing.
      std::erase_if(buckets_, [&](const auto& e) { return now - e.second.last >= std::chrono::seconds(1); });
      if (buckets_.size() >= kMaxSources) return false;  // that many busy sources: refuse newcomers
    }
    it = buckets_.emplace(who, Bucket{capacity, now}).first;
  }
  Bucket& k = it->second;
  k.tokens = std::min(capacity, k.tokens + (now - k.last));
  k.last = now;
  if (k.tokens < cost) return false;
  k.tokens -= cost;
  return true;
}

bool Device::under_load() const { return under_load_until_ && clock_.now() < *under_load_until_; }

void Device::on_initiation(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r) {
  if (!mac1_valid(me_.public_key, m)) return;  // not for us: costs one hash
  const auto now = clock_.now();
  if (now - load_window_ >= std::chrono::seconds(1)) {
    load_window_ = now;
    load_count_ = 0;
  }
  if (++load_count_ > limits_.handshakes_per_second) under_load_until_ = now + std::chrono::seconds(1);
  if (under_load()) {
    const Mac cookie = cookie_for(s.remote_);
    if (!mac2_valid(cookie, m)) {
      std::array<std::uint8_t, kCookieNonceLength> nonce;
      random_(nonce);
      if (auto reply = create_cookie_reply(me_.public_key, m, cookie, nonce)) {
        r.send.push_back(std::move(*reply));
        ++cookie_replies_;
      }
      return;
    }
    if (!handshake_allowed(s.remote_)) {  // a real host, but asking too often
      ++rate_limited_;
      return;
    }
  }
  auto in = consume_initiation(me_, m);
  if (!in) return;
  auto peer = find_peer(in->peer_static);
  if (!peer || (s.peer_ && *peer != *s.peer_)) return;  // unknown key, or not who this path talks to
  auto& ps = peers_[*peer];
  if (in->timestamp <= ps.last_timestamp) return;  // a replayed initiation
  if (ps.last_initiation_consumed && now - *ps.last_initiation_consumed < kHandshakeFloodInterval) return;
  ps.last_timestamp = in->timestamp;
  ps.last_initiation_consumed = now;
  Keypair k;
  r.send.push_back(create_response(me_, *in, ps.config.preshared, new_index(), new_ephemeral(), k));
  // Unconfirmed until the initiator uses it; two may wait (a resend or a raced path).
  ps.next.push_back(add_keypair(*peer, k));
  if (ps.next.size() > 2) {
    retire(ps.next.front());
    ps.next.erase(ps.next.begin());
  }
  handshake_done(*peer);
  s.peer_ = *peer;
  s.proven_ = true;
  r.authenticated = true;
  if (s.can_send()) make_active(s);
}

void Device::on_response(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r) {
  if (!s.pending_ || !s.peer_) return;
  auto k = consume_response(me_, *s.pending_, m);
  if (!k) return;
  s.pending_.reset();
  const std::size_t peer = *s.peer_;
  auto& ps = peers_[peer];
  retire(ps.previous);
  ps.previous = std::move(ps.current);
  ps.current = add_keypair(peer, *k);
  handshake_done(peer);
  ps.rekey_since.reset();
  if (ps.retransmit_timer) ps.retransmit_timer->cancel();
  s.proven_ = true;
  r.authenticated = true;
  r.answers_hello = s.initiator_;
  if (s.can_send()) make_active(s);
  // The responder may send only once we have used the keys: confirm them now.
  if (auto keepalive = seal(peer, {})) r.send.emplace_back(keepalive->begin(), keepalive->end());
  flush_staged(peer);
}

void Device::on_cookie(WgSession& s, std::span<const std::uint8_t> m) {
  if (!s.pending_ || !s.peer_) return;
  auto idx = receiver_index(m);
  if (!idx || *idx != s.pending_->local_index) return;
  auto& ps = peers_[*s.peer_];
  if (auto cookie = consume_cookie_reply(ps.config.public_key, m, s.sent_mac1_)) {
    ps.cookie = *cookie;
    ps.cookie_received = clock_.now();
  }
}

void Device::begin_handshake(std::size_t peer, bool retry) {
  auto& ps = peers_[peer];
  const auto now = clock_.now();
  if (ps.removed || !ps.active || !ps.active->can_send()) return;  // the engine's reconnect is the way back
  if (!retry && ps.rekey_since && now - ps.last_initiation_sent < kRekeyTimeout) return;  // one is in flight
  if (!ps.rekey_since) ps.rekey_since = now;
  if (now - *ps.rekey_since >= kRekeyAttemptTime) {
    ps.rekey_since.reset();  // give up until something new needs sending
    ps.staged.clear();
    return;
  }
  ps.last_initiation_sent = now;
  ps.last_sent = now;
  WgSession& path = *ps.active;
  path.send(initiation(path, peer));
  std::uint16_t jitter = 0;
  random_(std::span(reinterpret_cast<std::uint8_t*>(&jitter), sizeof jitter));
  const auto wait = kRekeyTimeout + std::chrono::milliseconds(jitter % (kMaxJitter.count() + 1));
  timer(ps.retransmit_timer).start(wait, [this, peer] {
    if (peers_[peer].rekey_since) begin_handshake(peer, true);
  });
}

// --- data -----------------------------------------------------------------------------------

std::optional<std::span<const std::uint8_t>> Device::seal(std::size_t peer, std::span<const std::uint8_t> packet) {
  auto& ps = peers_[peer];
  if (ps.removed || !usable(ps.current)) return std::nullopt;
  KeypairState& k = *ps.current;
  encrypt_data_into(k.keys, k.send_counter++, packet, seal_buffer_, limits_.mtu);
  const std::span<const std::uint8_t> m(seal_buffer_);
  const auto now = clock_.now();
  ps.tx_bytes += m.size();
  ps.last_sent = now;
  if (k.send_counter >= kRekeyAfterMessages || (k.keys.initiator && now - k.created >= kRekeyAfterTime)) {
    begin_handshake(peer, false);
  }
  return m;
}

void Device::flush_staged(std::size_t peer) {
  auto& ps = peers_[peer];
  while (!ps.staged.empty() && ps.active && usable(ps.current)) {
    if (auto m = seal(peer, ps.staged.front())) ps.active->send(*m);
    ps.staged.pop_front();
  }
}

void Device::on_data(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r) {
  auto idx = receiver_index(m);
  if (!idx) return;
  auto it = by_index_.find(*idx);
  if (it == by_index_.end()) return;
  std::shared_ptr<KeypairState> k = it->second;
  const auto now = clock_.now();
  if (now - k->created >= kRejectAfterTime) return;
  if (s.peer_ && *s.peer_ != k->peer) return;  // this path belongs to someone else
  const auto counter = decrypt_data_into(k->keys, m, open_buffer_);
  if (!counter || !k->replay.accept(*counter)) return;
  const std::span<const std::uint8_t> packet(open_buffer_);
  const std::size_t peer = k->peer;
  auto& ps = peers_[peer];
  // The initiator used a keypair we answered with: it becomes the one we send with.
  if (auto n = std::find(ps.next.begin(), ps.next.end(), k); n != ps.next.end()) {
    ps.next.erase(n);
    for (auto& other : ps.next) retire(other);
    ps.next.clear();
    retire(ps.previous);
    ps.previous = std::move(ps.current);
    ps.current = k;
    ps.rekey_since.reset();
    if (ps.retransmit_timer) ps.retransmit_timer->cancel();
  }
  // Authenticated: this path is where the peer is now (roaming).
  s.peer_ = peer;
  s.proven_ = true;
  r.authenticated = true;
  if (ps.active != &s && s.can_send()) make_active(s);
  ps.rx_bytes += m.size();
  flush_staged(peer);
  if (k == ps.current && k->keys.initiator && now - k->created >= kReceiveRekeyAge) begin_handshake(peer, false);
  if (packet.empty()) {
    // A keepalive. A responder answers it: the engine's keepalive checks the path with it.
    if (!s.initiator_) {
      if (auto reply = seal(peer, {})) r.send.emplace_back(reply->begin(), reply->end());
    }
    return;
  }
  auto h = inner_header(packet);
  if (!h) return;
  bool allowed = false;
  for (const auto& p : ps.config.allowed_ips) allowed = allowed || p.contains(h->source);
  if (!allowed) return;  // cryptokey routing: not this peer's address
  ps.last_data_received = now;
  // Passive keepalive: if we send nothing in the next 10 s, say we are alive.
  auto& t = timer(ps.keepalive_timer);
  if (!t.pending()) {
    t.start(kKeepaliveTimeout, [this, peer] {
      auto& p = peers_[peer];
      if (p.last_sent >= p.last_data_received || !p.active) return;
      if (auto ka = seal(peer, {})) p.active->send(*ka);
    });
  }
  if (to_tun_) to_tun_(packet.first(h->length));
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

std::optional<std::size_t> Device::peer_for_destination(const net::Address& dst) const {
  std::optional<std::size_t> best;
  int best_len = -1;
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i].removed) continue;
    for (const auto& p : peers_[i].config.allowed_ips) {
      if (p.contains(dst) && p.length > best_len) {
        best = i;
        best_len = p.length;
      }
    }
  }
  return best;
}

bool Device::route(std::span<const std::uint8_t> packet) {
  auto h = inner_header(packet);
  if (!h) return false;
  auto peer = peer_for_destination(h->destination);
  if (!peer) return false;
  auto& ps = peers_[*peer];
  if (ps.active == nullptr) return false;
  const auto inner = packet.first(h->length);
  if (auto m = seal(*peer, inner)) {
    ps.active->send(*m);
    return true;
  }
  if (ps.staged.size() >= limits_.staged_packets) ps.staged.pop_front();
  ps.staged.emplace_back(inner.begin(), inner.end());
  // A handshake we just answered is confirmed by the initiator's next packet: wait for it
  // rather than start another.
  const bool confirmation_due = !ps.next.empty() && clock_.now() - ps.next.back()->created < kRekeyTimeout;
  if (!confirmation_due) begin_handshake(*peer, false);
  return true;
}

}  // namespace duet::tunnel
