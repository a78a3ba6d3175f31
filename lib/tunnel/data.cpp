// Data: packets from the TUN sealed for the peer their destination belongs to (held
// while a handshake is under way), and data from peers opened, checked against the
// sender's allowed IPs (cryptokey routing) and handed to the TUN.
#include <algorithm>

#include "duet/net/ip_header.hpp"
#include "duet/tunnel/crypto_pool.hpp"
#include "wg_session.hpp"

namespace duet::tunnel {

KeypairState* Device::take_counter(std::size_t peer, std::size_t message_size, std::uint64_t& counter) {
  auto& ps = peers_[peer];
  if (ps.removed || !usable(ps.current)) return nullptr;
  KeypairState& k = *ps.current;
  counter = k.send_counter++;
  ps.tx_bytes += message_size;
  ps.last_sent = clock_.now();
  return &k;
}

void Device::rekey_if_due(std::size_t peer, const KeypairState& k) {
  if (k.send_counter >= kRekeyAfterMessages || (k.keys.initiator && clock_.now() - k.created >= kRekeyAfterTime)) {
    begin_handshake(peer, false);
  }
}

std::optional<std::span<const std::uint8_t>> Device::seal(std::size_t peer, std::span<const std::uint8_t> packet) {
  std::uint64_t counter = 0;
  KeypairState* k = take_counter(peer, data_message_size(packet.size(), limits_.mtu), counter);
  if (k == nullptr) return std::nullopt;
  encrypt_data_into(k->keys, counter, packet, seal_buffer_, limits_.mtu);
  rekey_if_due(peer, *k);
  return std::span<const std::uint8_t>(seal_buffer_);
}

bool Device::send_sealed(std::size_t peer, std::span<const std::uint8_t> packet) {
  WgSession* path = peers_[peer].active;
  if (path == nullptr || !path->can_send()) return false;
  const std::size_t size = data_message_size(packet.size(), limits_.mtu);
  std::uint64_t counter = 0;
  KeypairState* k = take_counter(peer, size, counter);
  if (k == nullptr) return false;
  path->send_filled(size, [k, counter, packet, mtu = limits_.mtu](std::span<std::uint8_t> room) {
    return encrypt_data_to(k->keys, counter, packet, room, mtu);
  });
  rekey_if_due(peer, *k);  // after the message went: a rekey sends an initiation on the same path
  return true;
}

void Device::flush_staged(std::size_t peer) {
  auto& ps = peers_[peer];
  while (ps.staged && !ps.staged->empty() && ps.active && usable(ps.current)) {
    (void)send_sealed(peer, ps.staged->front());
    ps.staged->pop_front();
  }
  if (ps.staged && ps.staged->empty()) ps.staged.reset();  // a peer that waits no more holds nothing
}

std::shared_ptr<KeypairState> Device::keypair_for(std::span<const std::uint8_t> m) const {
  const auto idx = receiver_index(m);
  if (!idx) return nullptr;
  const auto it = by_index_.find(*idx);
  if (it == by_index_.end() || clock_.now() - it->second->created >= kRejectAfterTime) return nullptr;
  return it->second;
}

void Device::on_data(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r) {
  std::shared_ptr<KeypairState> k = keypair_for(m);
  if (!k) return;
  const auto now = clock_.now();
  if (!path_open_to(s, k->peer)) return;  // someone else's path
  std::optional<std::uint64_t> counter;
  std::span<const std::uint8_t> packet;
  if (const Opened* o = opened_for(m, *k)) {  // opened already, with the rest of its turn
    counter = o->counter;
    packet = std::span<const std::uint8_t>(opened_area_).subspan(o->offset, m.size() - kDataMinLength);
    ++threaded_.opened;
  } else {
    counter = decrypt_data_into(k->keys, m, open_buffer_);
    packet = open_buffer_;
  }
  if (!counter || !k->replay.accept(*counter)) return;
  const std::size_t peer = k->peer;
  auto& ps = peers_[peer];
  // The initiator used a keypair we answered with: it becomes the one we send with.
  const auto n = std::find(ps.next.begin(), ps.next.end(), k);
  const bool confirms = n != ps.next.end();
  if (confirms) {
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
  prove_path(s, peer);
  r.authenticated = true;
  if (ps.active != &s && s.can_send()) make_active(s);
  ps.rx_bytes += m.size();
  flush_staged(peer);
  if (k == ps.current && k->keys.initiator && now - k->created >= kReceiveRekeyAge) begin_handshake(peer, false);
  if (packet.empty()) {
    // A keepalive. A responder answers it: the engine's keepalive checks the path with it.
    // Not the one that confirms a handshake we just answered (what an initiator with nothing
    // to send does after each handshake, every 2 minutes per peer): its sender has just had
    // our response, and no probe waits for an answer to it.
    if (!s.initiator_ && !(confirms && now - k->created < kKeepaliveAnswerWindow)) {
      if (auto reply = seal(peer, {})) r.send.emplace_back(reply->begin(), reply->end());
    } else if (limits_.peers_may_answer_keepalives && now - ps.keepalive_sent < kKeepaliveAnswerWindow) {
      ps.answers_keepalives = true;  // path health may probe it with keepalives, not handshakes
    }
    return;
  }
  const auto h = net::parse_ip_header(packet);
  if (!h || !net::fits(*h, packet)) return;
  // Cryptokey routing: the source must be an address the table gives to this very peer.
  if (allowed_.lookup(h->source) != static_cast<AllowedIps::PeerId>(peer)) return;
  ps.last_data_received = now;
  // Passive keepalive: if we send nothing in the next 10 s, say we are alive.
  auto& t = timer(ps.keepalive_timer);
  if (!t.pending()) {
    t.start(kKeepaliveTimeout, [this, peer] {
      auto& p = peers_[peer];
      if (p.last_sent >= p.last_data_received || !p.active) return;
      (void)send_sealed(peer, {});
    });
  }
  if (to_tun_) to_tun_(packet.first(h->total_length));
}

Bytes Device::path_message(std::size_t peer, MessageType type) {
  auto& ps = peers_[peer];
  if (ps.removed || !usable(ps.current)) return {};
  KeypairState& k = *ps.current;
  Bytes m;
  encrypt_data_into(k.keys, k.send_counter++, {}, m, 0, type);
  ps.tx_bytes += m.size();
  return m;
}

void Device::on_path_message(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r) {
  (void)s;  // any path may be checked: it is neither bound to the peer nor made active
  const auto type = static_cast<MessageType>(m[0]);
  const std::shared_ptr<KeypairState> k = keypair_for(m);
  if (!k) return;
  const auto counter = decrypt_data_into(k->keys, m, open_buffer_, type);
  if (!counter || !k->replay.accept(*counter)) return;  // forged or replayed: no answer
  auto& ps = peers_[k->peer];
  ps.rx_bytes += m.size();
  if (type == kMessageDuetPathAnswer) {
    r.answers_check = true;
    ps.answers_path_checks = true;
    return;
  }
  // Answered from where it came, as big as it was: no amplification, and only for a
  // message under this peer's keys, each counter once.
  if (auto answer = path_message(k->peer, kMessageDuetPathAnswer); !answer.empty()) r.send.push_back(std::move(answer));
}

bool Device::route(std::span<const std::uint8_t> packet) {
  LastRoute none;
  return route_one(packet, none);
}

std::size_t Device::route_batch(std::span<const std::span<const std::uint8_t>> packets) {
  if (limits_.crypto != nullptr && packets.size() > 1) return route_batch_on_threads(packets);
  LastRoute last;
  std::size_t routed = 0;
  for (const auto packet : packets) routed += route_one(packet, last) ? 1 : 0;
  return routed;
}

std::size_t Device::route_batch_on_threads(std::span<const std::span<const std::uint8_t>> packets) {
  // In order on the loop: which peer, which keys, which counter, where in the area.
  seal_jobs_.clear();
  std::size_t routed = 0, total = 0;
  LastRoute last;
  for (const auto packet : packets) {
    const auto a = addressed(packet, last);
    if (!a) continue;
    const std::size_t peer = a->peer;
    const auto& ps = peers_[peer];
    if (ps.active == nullptr || !ps.active->can_send() || ps.removed || !usable(ps.current)) {
      routed += route_one(packet, last) ? 1 : 0;  // staged for a handshake, or a path asked for
      continue;
    }
    const auto inner = a->inner;
    const std::size_t size = data_message_size(inner.size(), limits_.mtu);
    std::uint64_t counter = 0;
    KeypairState* k = take_counter(peer, size, counter);
    seal_jobs_.push_back({peer, k, counter, inner, total, size});
    total += size;
    ++routed;
  }
  if (sealed_area_.size() < total) sealed_area_.resize(total);
  // The cipher on the threads, each message into its own place.
  limits_.crypto->run(seal_jobs_.size(), [this](std::size_t i) {
    const SealJob& j = seal_jobs_[i];
    (void)encrypt_data_to(j.keys->keys, j.counter, j.packet, std::span(sealed_area_).subspan(j.offset, j.size),
                          limits_.mtu);
  });
  threaded_.sealed += seal_jobs_.size();
  // Sent in counter order, on the loop.
  for (const SealJob& j : seal_jobs_) {
    if (WgSession* path = peers_[j.peer].active) path->send(std::span(sealed_area_).subspan(j.offset, j.size));
    rekey_if_due(j.peer, *j.keys);
  }
  return routed;
}

void Device::open_batch(std::span<const net::ReceivedDatagram> batch) {
  opened_.clear();
  opened_next_ = 0;
  if (limits_.crypto == nullptr || batch.size() < 2) return;
  std::size_t total = 0;
  for (const auto& d : batch) {
    const auto m = d.data;
    if (m.size() < kDataMinLength || m[0] != kMessageData) continue;
    const std::shared_ptr<KeypairState> k = keypair_for(m);
    if (!k) continue;
    Opened o{m.data(), m.size(), k.get(), {}, total, std::nullopt};
    std::memcpy(o.tag.data(), m.data() + m.size() - 16, 16);
    opened_.push_back(o);
    total += m.size() - kDataMinLength;
  }
  if (opened_area_.size() < total) opened_area_.resize(total);
  limits_.crypto->run(opened_.size(), [this](std::size_t i) {
    Opened& o = opened_[i];
    o.counter = decrypt_data_to(o.keys->keys, std::span(o.data, o.size),
                                std::span(opened_area_).subspan(o.offset, o.size - kDataMinLength));
  });
}

const Device::Opened* Device::opened_for(std::span<const std::uint8_t> m, const KeypairState& k) {
  // Handed over in the order they were opened: the next one, or one a little further on
  // (datagrams for other sessions or of other kinds in between).
  for (std::size_t i = opened_next_; i < opened_.size(); ++i) {
    const Opened& o = opened_[i];
    if (o.data == m.data() && o.size == m.size() && o.keys == &k &&
        std::memcmp(o.tag.data(), m.data() + m.size() - 16, 16) == 0) {
      opened_next_ = i + 1;
      return &o;
    }
  }
  return nullptr;
}

std::optional<Device::Addressed> Device::addressed(std::span<const std::uint8_t> packet, LastRoute& last) const {
  const auto h = net::parse_ip_header(packet);
  if (!h || !net::fits(*h, packet)) return std::nullopt;
  if (last.destination != h->destination) {
    last.destination = h->destination;
    last.peer = allowed_.lookup(h->destination);
  }
  if (!last.peer) return std::nullopt;
  return Addressed{*last.peer, packet.first(h->total_length)};
}

bool Device::route_one(std::span<const std::uint8_t> packet, LastRoute& last) {
  const auto a = addressed(packet, last);
  if (!a) return false;
  const std::size_t peer = a->peer;
  auto& ps = peers_[peer];
  // No path yet: the owner may open one (to the peer's endpoint) while the packet waits.
  if (ps.active == nullptr && (!path_needed_ || !has_identity_)) return false;
  const auto inner = a->inner;
  if (ps.active != nullptr && send_sealed(peer, inner)) return true;
  if (!ps.staged) ps.staged = std::make_unique<std::deque<Bytes>>();
  if (ps.staged->size() >= limits_.staged_packets) ps.staged->pop_front();
  ps.staged->emplace_back(inner.begin(), inner.end());
  if (ps.active == nullptr) {
    path_needed_(peer);  // a path made active flushes the packets or starts the handshake
    return true;
  }
  handshake_for_staged(peer);
  return true;
}

void Device::handshake_for_staged(std::size_t peer) {
  auto& ps = peers_[peer];
  if (!ps.staged || ps.staged->empty() || usable(ps.current)) return;
  // A handshake we just answered is confirmed by the initiator's next packet: wait for it
  // rather than start another.
  const bool confirmation_due = !ps.next.empty() && clock_.now() - ps.next.back()->created < kRekeyTimeout;
  if (!confirmation_due) begin_handshake(peer, false);
}

}  // namespace duet::tunnel
