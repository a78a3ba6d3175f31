// Handshakes: initiations made and answered (Noise_IKpsk2 via noise.hpp), responses and
// cookie replies taken, and rekeys started and retried on WireGuard's timers.
#include "wg_session.hpp"

namespace duet::tunnel {

Bytes Device::initiation(WgSession& s, std::size_t peer) {
  auto& ps = peers_[peer];
  if (ps.removed || !has_identity_) return {};
  const auto wall = clock_.wall_now().time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(wall);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wall - secs);
  std::optional<Mac> cookie;
  if (ps.cookie && clock_.now() - ps.cookie_received < kCookieRefreshTime) cookie = ps.cookie;
  InitiatorState state;
  auto m = create_initiation(me_, ps.config.public_key, ps.config.preshared, new_index(),
                             tai64n(static_cast<std::uint64_t>(secs.count()), static_cast<std::uint32_t>(ns.count())),
                             new_ephemeral(), state, cookie);
  s.pending_.push_back({state, *mac1_of(m)});
  if (s.pending_.size() > 2) s.pending_.pop_front();
  return m;
}

void Device::on_initiation(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r) {
  if (!has_identity_ || !mac1_valid(me_.public_key, m)) return;  // not for us: costs one hash
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
  auto in = consume_initiation(me_, m, [this](const Key& peer_static) -> std::optional<Key> {
    const auto p = find_peer(peer_static);
    if (!p) return std::nullopt;  // an unknown key costs no second Diffie-Hellman
    auto& ss = peers_[*p].static_static;
    if (!ss) ss = dh(me_.private_key, peer_static);
    return ss;
  });
  if (!in) return;
  auto peer = find_peer(in->peer_static);
  if (!peer || !path_open_to(s, *peer)) return;  // unknown key, or not who this path talks to
  auto& ps = peers_[*peer];
  if (in->timestamp <= ps.last_timestamp) return;  // a replayed initiation
  if (ps.last_initiation_consumed && now - *ps.last_initiation_consumed < kHandshakeFloodInterval) return;
  if (limits_.max_clients != 0 && !ps.live && live_ >= limits_.max_clients) {
    ++refused_max_clients_;  // full: peers that hold keys keep them; this one waits
    return;
  }
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
  prove_path(s, *peer);
  r.authenticated = true;
  if (s.can_send()) make_active(s);
}

void Device::on_response(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r) {
  const auto sent = s.pending_for(m);
  const auto path_peer = peer_of(s);
  if (sent == s.pending_.end() || !path_peer || !has_identity_) return;
  auto k = consume_response(me_, sent->state, m);
  if (!k) return;
  s.pending_.clear();
  const std::size_t peer = *path_peer;
  auto& ps = peers_[peer];
  retire(ps.previous);
  ps.previous = std::move(ps.current);
  ps.current = add_keypair(peer, *k);
  handshake_done(peer);
  ps.rekey_since.reset();
  if (ps.retransmit_timer) ps.retransmit_timer->cancel();
  prove_path(s, peer);
  r.authenticated = true;
  r.answers_hello = s.initiator_;
  if (s.can_send()) make_active(s);
  // The responder may send only once we have used the keys: confirm them now.
  if (auto keepalive = seal(peer, {})) r.send.emplace_back(keepalive->begin(), keepalive->end());
  flush_staged(peer);
}

void Device::on_cookie(WgSession& s, std::span<const std::uint8_t> m) {
  const auto sent = s.pending_for(m);
  const auto path_peer = peer_of(s);
  if (sent == s.pending_.end() || !path_peer) return;
  auto& ps = peers_[*path_peer];
  if (auto cookie = consume_cookie_reply(ps.config.public_key, m, sent->mac1)) {
    ps.cookie = *cookie;
    ps.cookie_received = clock_.now();
  }
}

void Device::begin_handshake(std::size_t peer, bool retry) {
  auto& ps = peers_[peer];
  const auto now = clock_.now();
  if (ps.removed || !has_identity_) return;
  if (!ps.active && path_needed_) path_needed_(peer);  // to the peer's endpoint, if it has one
  if (!ps.active || !ps.active->can_send()) return;    // else the engine's reconnect is the way back
  if (!retry && ps.rekey_since && now - ps.last_initiation_sent < kRekeyTimeout) return;  // one is in flight
  if (!ps.rekey_since) ps.rekey_since = now;
  if (now - *ps.rekey_since >= kRekeyAttemptTime) {
    ps.rekey_since.reset();  // give up until something new needs sending
    ps.staged.reset();
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

}  // namespace duet::tunnel
