// Shared by the tunnel tests: an IPv4/UDP packet to route, and one side of a tunnel (a
// node with a simulated TUN whose packets are recorded) on a simulated host.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>

#include "duet/config/loader.hpp"
#include "duet/node/node.hpp"
#include "duet/sim/tun.hpp"
#include "duet/sim/world.hpp"
#include "duet/tunnel/noise.hpp"

namespace duet::test {

/// A stranger beside the router of build_three_hosts(): host `name` on the router's eth2
/// (198.18.9.1/24) with addresses 198.18.9.2 onwards, `addresses` of them, routed through
/// the router: an attacker flooding the server, or a too-eager handshaker.
inline void add_stranger(sim::SimWorld& w, const std::string& name, int addresses) {
  w.add_host(name);
  w.connect(name, "eth0", "router", "eth2");
  w.add_address("router", "eth2", "198.18.9.1/24");
  for (int i = 2; i < 2 + addresses; ++i) w.add_address(name, "eth0", "198.18.9." + std::to_string(i) + "/24");
  w.add_route(name, "default", sim::RouteVerdict::forward, "eth0");
}

/// Handshake initiations from every address of add_stranger()'s host `host` (198.18.9.2
/// onwards, a socket on port 4000 each) to `to`: a valid mac1 for `server` (anyone who
/// knows a server's public key can make one), from a key the server does not know.
/// start() sends one from each address at once and then every `period`, `rounds` times
/// in all (0: until stop()).
class InitiationFlood {
public:
  InitiationFlood(sim::SimWorld& w, const std::string& host, int addresses, const tunnel::Key& server, net::Endpoint to)
      : to_(to), timer_(w.stack(host).clock().make_timer()) {
    using namespace tunnel;
    const Identity stranger = Identity::from_private(clamp_private_key(Key{10}));
    for (int i = 2; i < 2 + addresses; ++i) {
      sockets_.push_back(std::move(*w.stack(host).open_datagram(net::Family::v4)));
      EXPECT_FALSE(sockets_.back()->bind(*net::Endpoint::parse("198.18.9." + std::to_string(i) + ":4000")));
      InitiatorState st;
      initiations_.push_back(create_initiation(stranger, server, Key{}, static_cast<std::uint32_t>(i), tai64n(1000, 0),
                                               clamp_private_key(Key{static_cast<std::uint8_t>(i)}), st));
    }
  }
  void start(net::Duration period, int rounds = 0) {
    for (std::size_t i = 0; i < sockets_.size(); ++i) (void)sockets_[i]->send_to(to_, initiations_[i]);
    if (++rounds_ != rounds) timer_->start(period, [this, period, rounds] { start(period, rounds); });
  }
  void stop() { timer_->cancel(); }
  [[nodiscard]] int rounds() const { return rounds_; }
  /// One per address, for a test that listens to what comes back.
  [[nodiscard]] const std::vector<std::unique_ptr<net::DatagramSocket>>& sockets() const { return sockets_; }

private:
  net::Endpoint to_;
  std::unique_ptr<net::Timer> timer_;
  std::vector<std::unique_ptr<net::DatagramSocket>> sockets_;
  std::vector<tunnel::Bytes> initiations_;
  int rounds_ = 0;
};

inline tunnel::Bytes ipv4_udp(const char* src, const char* dst, std::uint8_t tag) {
  tunnel::Bytes p(28, 0);
  p[0] = 0x45;
  p[3] = 28;
  p[8] = 64;
  p[9] = 17;
  const auto s = *net::Address::parse(src), d = *net::Address::parse(dst);
  std::memcpy(&p[12], s.bytes().data(), 4);
  std::memcpy(&p[16], d.bytes().data(), 4);
  p[27] = tag;
  return p;
}

/// One side of a tunnel on a simulated host: the daemon's own wiring (node::Node) with a
/// simulated TUN whose written packets the test reads. `cfg_text` holds the socket part;
/// the key and peers are added from `me` and `peers`.
struct Side {
  Side(sim::SimWorld& w, const std::string& host, const std::string& cfg_text, tunnel::Identity me,
       std::vector<tunnel::PeerConfig> peers, tunnel::DeviceLimits limits = {})
      : loaded(config::load_text(cfg_text + keys(me, peers), host + ".conf")),
        sim_tun(w.stack(host).clock(), "duet0"),
        node(w.stack(host), &sim_tun, loaded.config, options(limits)),
        device(started(node)),
        tun(sim_tun.written()),
        server(node.server()),
        client(node.client()) {
    EXPECT_TRUE(loaded.ok());
  }
  static std::string keys(const tunnel::Identity& me, const std::vector<tunnel::PeerConfig>& peers) {
    std::string t = "private-key " + config::key_to_base64(me.private_key) + "\n";
    for (const auto& p : peers) {
      std::string ips;
      for (const auto& a : p.allowed_ips) ips += (ips.empty() ? "" : ",") + a.to_string();
      t += "peer " + config::key_to_base64(p.public_key) + " " + ips + "\n";
    }
    return t;
  }
  node::NodeOptions options(tunnel::DeviceLimits limits) {
    node::NodeOptions o;
    o.limits = limits;
    o.events = [this](const transport::Event& e) { events.push_back(e); };
    return o;
  }
  /// Every event, one line each (for failure messages).
  [[nodiscard]] std::string log() const {
    std::string s;
    for (const auto& e : events) s += e.describe() + "\n";
    return s;
  }
  static tunnel::Device& started(node::Node& n) {
    std::string why;
    EXPECT_TRUE(n.start(why)) << why;
    return *n.device();
  }
  std::vector<transport::Event> events;  ///< what the node said, in order
  config::LoadResult loaded;
  sim::SimTun sim_tun;
  node::Node node;
  tunnel::Device& device;
  const std::vector<tunnel::Bytes>& tun;  ///< every packet the tunnel delivered
  transport::Server* server;
  transport::Client* client;
};

}  // namespace duet::test
