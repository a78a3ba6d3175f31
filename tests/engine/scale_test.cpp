// Many peers on one server, in the simulator, with the daemon's own wiring on every side:
// hundreds of clients connect while a flood of valid-looking initiations from 64 other
// addresses puts the server under load. Every real client still connects (with cookies),
// each one's ping comes back through the tunnel, no authenticated peer is evicted, the
// server keeps state only for authenticated paths, and the run replays exactly.
#include <gtest/gtest.h>

#include "../sim/world_fixture.hpp"
#include "duet/config/loader.hpp"
#include "duet/net/ping.hpp"
#include "duet/node/node.hpp"
#include "duet/sim/tun.hpp"
#include "duet/tunnel/noise.hpp"
#include "tunnel_side.hpp"

using namespace duet;
using namespace duet::test;
using namespace duet::tunnel;
using namespace std::chrono_literals;

namespace {

constexpr int kHosts = 10;  // client hosts, each with kPerHost clients
constexpr int kPerHost = 40;
constexpr int kClients = kHosts * kPerHost;

Identity identity(int i) {
  Key k{};  // (clamping clears bits of the first and last bytes: the index goes in between)
  k[4] = static_cast<std::uint8_t>(i);
  k[5] = static_cast<std::uint8_t>(i >> 8);
  k[6] = 0x5c;
  return Identity::from_private(clamp_private_key(k));
}

net::Address inner(int i) { return net::Address::v4(0xC6130000u + static_cast<std::uint32_t>(i) + 1); }  // 198.19/16

struct Client {
  std::unique_ptr<sim::SimTun> tun;
  std::unique_ptr<node::Node> node;
};

struct Outcome {
  int connected = 0, echoed = 0;
  std::size_t live = 0, paths = 0;
  std::uint64_t cookie_replies = 0, handshakes = 0, events = 0;
};

Outcome run(std::uint64_t seed) {
  sim::SimWorld w(seed);
  build_three_hosts(w);
  for (int h = 0; h < kHosts; ++h) {
    const std::string name = "c" + std::to_string(h), net = "198.18." + std::to_string(20 + h) + ".";
    w.add_host(name);
    w.connect(name, "eth0", "router", "e" + std::to_string(h));
    w.add_address("router", "e" + std::to_string(h), net + "1/24");
    w.add_address(name, "eth0", net + "2/24");
    w.add_route(name, "default", sim::RouteVerdict::forward, "eth0");
  }
  add_stranger(w, "attacker", 64);

  const Identity server_id = Identity::from_private(clamp_private_key(Key{9}));
  std::string server_text = "mode server\nproto udp\nifconfig 198.19.255.254/16\nprivate-key " +
                            config::key_to_base64(server_id.private_key) + "\n";
  for (int i = 0; i < kClients; ++i) {
    server_text += "peer " + config::key_to_base64(identity(i).public_key) + " " + inner(i).to_string() + "/32\n";
  }
  const auto server_cfg = config::load_text(server_text, "server.conf");
  EXPECT_TRUE(server_cfg.ok());
  sim::SimTun server_tun(w.stack("server").clock(), "duet0", {*net::Address::parse("198.19.255.254")});
  node::Node server(w.stack("server"), &server_tun, server_cfg.config);
  std::string why;
  EXPECT_TRUE(server.start(why)) << why;

  // The flood: valid mac1 from 64 addresses, 2560 initiations a second, throughout.
  InitiationFlood flood(w, "attacker", 64, server_id.public_key, ep("198.18.2.2:1194"));
  flood.start(25ms);

  std::vector<Client> clients(kClients);
  for (int i = 0; i < kClients; ++i) {
    const std::string host = "c" + std::to_string(i / kPerHost);
    const auto cfg = config::load_text("mode client\nremote 198.18.2.2 1194 udp\nprivate-key " +
                                           config::key_to_base64(identity(i).private_key) + "\npeer " +
                                           config::key_to_base64(server_id.public_key) + " 198.19.0.0/16\nifconfig " +
                                           inner(i).to_string() + "/32\n",
                                       host + ".conf");
    EXPECT_TRUE(cfg.ok());
    clients[static_cast<std::size_t>(i)].tun =
        std::make_unique<sim::SimTun>(w.stack(host).clock(), "duet0", std::vector<net::Address>{inner(i)});
    clients[static_cast<std::size_t>(i)].node =
        std::make_unique<node::Node>(w.stack(host), clients[static_cast<std::size_t>(i)].tun.get(), cfg.config);
    EXPECT_TRUE(clients[static_cast<std::size_t>(i)].node->start(why)) << why;
  }
  Outcome o;
  auto count_connected = [&] {
    int n = 0;
    for (const auto& c : clients) n += c.node->client()->connected() ? 1 : 0;
    return n;
  };
  w.run_until([&] { return count_connected() == kClients; }, 60s);
  o.connected = count_connected();
  // Each client pings the server's tunnel address through its tunnel.
  for (int i = 0; i < kClients; ++i) {
    (void)clients[static_cast<std::size_t>(i)].tun->inject(
        net::ipv4_icmp_echo(8, inner(i), *net::Address::parse("198.19.255.254"), 7, static_cast<std::uint16_t>(i)));
  }
  w.run_for(2s);
  for (const auto& c : clients) o.echoed += c.tun->echo_replies().empty() ? 0 : 1;
  const auto st = server.status({.all = false});
  o.live = st.peers_live;
  o.paths = server.server()->paths();
  o.cookie_replies = st.cookie_replies_sent;
  o.handshakes = st.handshakes;
  o.events = w.events_processed();
  flood.stop();
  return o;
}

TEST(Scale, HundredsOfPeersConnectThroughAFloodAndNoneIsEvicted) {
  ASSERT_TRUE(crypto_init());
  const Outcome a = run(51);
  EXPECT_EQ(a.connected, kClients) << "every real client connected during the flood";
  EXPECT_EQ(a.echoed, kClients) << "every client's ping came back through its own tunnel";
  EXPECT_EQ(a.live, static_cast<std::size_t>(kClients)) << "all of them hold keys at the end: none was evicted";
  EXPECT_GT(a.cookie_replies, 1000u) << "the flood was answered with cookies, not handshakes";
  EXPECT_LE(a.paths, static_cast<std::size_t>(kClients)) << "state only for authenticated paths, none for the flood";
  const Outcome b = run(51);
  EXPECT_EQ(a.events, b.events) << "the same seed replays the same run";
  EXPECT_EQ(a.cookie_replies, b.cookie_replies);
  EXPECT_EQ(a.handshakes, b.handshakes);
}

}  // namespace
