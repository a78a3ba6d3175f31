// One duetd's WireGuard state: its identity, its peers with their allowed IPs, and the
// sessions that carry each peer's traffic. Packets from the TUN are routed to a peer by
// destination (cryptokey routing); packets from a peer are accepted only from source
// addresses in that peer's allowed IPs.
//
// Not built yet: cookie replies under load (mac2 is sent and ignored), rekeying and the
// handshake timers beyond what the engine's keepalive does, endpoint roaming.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "duet/net/address.hpp"
#include "duet/net/clock.hpp"
#include "duet/transport/session.hpp"
#include "duet/tunnel/noise.hpp"

namespace duet::tunnel {

struct PeerConfig {
  Key public_key{};
  Key preshared{};
  std::vector<net::Prefix> allowed_ips;
};

class WgSession;

class Device {
public:
  using PacketSink = std::function<void(std::span<const std::uint8_t>)>;
  /// Where ephemeral keys and session indices come from: the system generator by
  /// default; the simulator passes its seeded one, so a run can be replayed.
  using RandomSource = std::function<void(std::span<std::uint8_t>)>;

  Device(Identity me, std::vector<PeerConfig> peers, net::Clock& clock, PacketSink to_tun,
         RandomSource random = random_bytes);

  /// A packet from the TUN: sealed for the peer whose allowed IPs hold its destination.
  /// False when no peer matches or that peer has no session up.
  bool route(std::span<const std::uint8_t> ip_packet);

  struct PeerState {
    PeerConfig config;
    bool removed = false;         ///< dropped by a reload (kept so indices stay valid)
    WgSession* active = nullptr;  ///< the session carrying its traffic now
    Timestamp last_timestamp{};   ///< newest initiation seen (replayed ones are refused)
    std::uint64_t rx_bytes = 0, tx_bytes = 0;
    std::optional<net::TimePoint> last_handshake;
    std::optional<net::Endpoint> endpoint;  ///< where its current session talks to
    config::Transport transport = config::Transport::udp;
  };
  [[nodiscard]] const std::vector<PeerState>& peers() const { return peers_; }

  /// A reload: peers with the same key keep their state and session (their allowed IPs
  /// and preshared key are updated), new ones are added, missing ones are disabled.
  /// Returns how many were (kept, added, removed).
  struct PeerChanges {
    std::size_t kept = 0, added = 0, removed = 0;
  };
  PeerChanges update_peers(const std::vector<PeerConfig>& peers);
  /// Index of a live peer by key (for the initiator side of a client after a reload).
  [[nodiscard]] std::optional<std::size_t> peer_index(const Key& public_key) const { return find_peer(public_key); }

  /// Sessions for the engine: initiators talk to one configured peer; responders learn
  /// theirs from the initiation.
  std::unique_ptr<transport::Session> make_initiator(std::size_t peer, const net::Endpoint& remote,
                                                     config::Transport transport);
  std::unique_ptr<transport::Session> make_responder(const net::Endpoint& remote, config::Transport transport);
  [[nodiscard]] const Identity& identity() const { return me_; }

private:
  friend class WgSession;
  std::optional<std::size_t> find_peer(const Key& public_key) const;
  std::optional<std::size_t> peer_for_destination(const net::Address& dst) const;
  std::uint32_t new_index();
  void deliver(std::size_t peer, std::span<const std::uint8_t> packet);

  Identity me_;
  std::vector<PeerState> peers_;
  net::Clock& clock_;
  PacketSink to_tun_;
  RandomSource random_;
  std::uint32_t next_index_ = 0;
  Key new_ephemeral();
};

/// A SessionFactory over a Device: initiators for a client, responders for listeners.
class DeviceSessions final : public transport::SessionFactory {
public:
  DeviceSessions(Device& device, std::optional<std::size_t> initiator_peer)
      : device_(device), peer_(initiator_peer) {}
  std::unique_ptr<transport::Session> create(const net::Endpoint& remote, config::Transport transport) override {
    return peer_ ? device_.make_initiator(*peer_, remote, transport) : device_.make_responder(remote, transport);
  }

private:
  Device& device_;
  std::optional<std::size_t> peer_;
};

/// The source and destination of an IPv4 or IPv6 packet, and its real length.
struct InnerHeader {
  net::Address source, destination;
  std::size_t length = 0;
};
std::optional<InnerHeader> inner_header(std::span<const std::uint8_t> packet);

}  // namespace duet::tunnel
