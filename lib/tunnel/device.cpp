#include "duet/tunnel/device.hpp"

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

/// One peer connection's WireGuard state, as the engine's session.
class WgSession final : public transport::Session {
public:
  WgSession(Device& d, std::optional<std::size_t> peer, net::Endpoint remote, config::Transport transport)
      : d_(d), peer_(peer), initiator_(peer.has_value()), remote_(remote), transport_(transport) {}
  ~WgSession() override {
    if (peer_ && d_.peers_[*peer_].active == this) d_.peers_[*peer_].active = nullptr;
  }

  std::vector<std::uint8_t> hello() override {
    if (!initiator_) return {};
    const auto& pc = d_.peers_[*peer_].config;
    const auto wall = d_.clock_.wall_now().time_since_epoch();
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(wall);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wall - s);
    local_index_ = d_.new_index();
    return create_initiation(d_.me_, pc.public_key, pc.preshared, local_index_,
                             tai64n(static_cast<std::uint64_t>(s.count()), static_cast<std::uint32_t>(ns.count())),
                             d_.new_ephemeral(), state_);
  }

  Reply receive(std::span<const std::uint8_t> m) override {
    Reply r;
    if (m.empty()) return r;
    switch (m[0]) {
      case kMessageHandshakeInitiation: {
        auto in = consume_initiation(d_.me_, m);
        if (!in) return r;
        auto peer = d_.find_peer(in->peer_static);
        if (!peer || (peer_ && *peer != *peer_)) return r;  // unknown key, or not who we talk to
        auto& ps = d_.peers_[*peer];
        if (in->timestamp <= ps.last_timestamp) return r;  // a replayed initiation
        ps.last_timestamp = in->timestamp;
        Keypair k;
        r.send.push_back(create_response(d_.me_, *in, ps.config.preshared, d_.new_index(), d_.new_ephemeral(), k));
        install(*peer, k);
        return r;
      }
      case kMessageHandshakeResponse: {
        if (!initiator_) return r;
        auto k = consume_response(d_.me_, state_, m);
        if (!k) return r;
        install(*peer_, *k);
        r.answers_hello = true;
        return r;
      }
      case kMessageData: {
        if (!keys_) return r;
        auto data = decrypt_data(*keys_, m);
        if (!data || !replay_.accept(data->counter)) return r;
        auto& ps = d_.peers_[*peer_];
        ps.rx_bytes += m.size();
        if (data->packet.empty()) {
          // A keepalive: the responder answers so the initiator's path stays alive.
          if (!initiator_) r.send.push_back(encrypt_data(*keys_, send_counter_++, {}));
          return r;
        }
        auto h = inner_header(data->packet);
        if (!h) return r;
        bool allowed = false;
        for (const auto& p : ps.config.allowed_ips) allowed = allowed || p.contains(h->source);
        if (!allowed) return r;  // cryptokey routing: not this peer's address
        d_.deliver(*peer_, std::span<const std::uint8_t>(data->packet).first(h->length));
        return r;
      }
      default: return r;  // cookie replies and anything else: not handled yet
    }
  }

  std::vector<std::uint8_t> keepalive() override {
    if (!keys_) return hello();
    return encrypt_data(*keys_, send_counter_++, {});
  }

  void attach(Sender send) override {
    sender_ = std::move(send);
    if (peer_ && keys_) {
      d_.peers_[*peer_].active = sender_ ? this : nullptr;
      if (sender_) {
        d_.peers_[*peer_].endpoint = remote_;
        d_.peers_[*peer_].transport = transport_;
      }
    }
  }

  bool send_packet(std::span<const std::uint8_t> packet) {
    if (!keys_ || !sender_) return false;
    const auto m = encrypt_data(*keys_, send_counter_++, packet);
    d_.peers_[*peer_].tx_bytes += m.size();
    sender_(m);
    return true;
  }

private:
  void install(std::size_t peer, const Keypair& k) {
    peer_ = peer;
    keys_ = k;
    send_counter_ = 0;
    replay_ = ReplayWindow{};
    auto& ps = d_.peers_[peer];
    ps.last_handshake = d_.clock_.now();
    if (sender_ || !initiator_) {
      ps.active = this;
      ps.endpoint = remote_;
      ps.transport = transport_;
    }
  }

  Device& d_;
  std::optional<std::size_t> peer_;
  bool initiator_;
  std::uint32_t local_index_ = 0;
  InitiatorState state_;
  std::optional<Keypair> keys_;
  std::uint64_t send_counter_ = 0;
  ReplayWindow replay_;
  Sender sender_;
  net::Endpoint remote_;
  config::Transport transport_;
};

Device::Device(Identity me, std::vector<PeerConfig> peers, net::Clock& clock, PacketSink to_tun, RandomSource random)
    : me_(me), clock_(clock), to_tun_(std::move(to_tun)), random_(std::move(random)) {
  for (auto& p : peers) peers_.push_back({std::move(p)});
  random_(std::span(reinterpret_cast<std::uint8_t*>(&next_index_), sizeof next_index_));
}

Key Device::new_ephemeral() {
  Key k;
  random_(k);
  return clamp_private_key(k);
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

std::uint32_t Device::new_index() { return ++next_index_; }

bool Device::route(std::span<const std::uint8_t> packet) {
  auto h = inner_header(packet);
  if (!h) return false;
  auto peer = peer_for_destination(h->destination);
  if (!peer || peers_[*peer].active == nullptr) return false;
  return peers_[*peer].active->send_packet(packet.first(h->length));
}

void Device::deliver(std::size_t, std::span<const std::uint8_t> packet) {
  if (to_tun_) to_tun_(packet);
}

}  // namespace duet::tunnel
