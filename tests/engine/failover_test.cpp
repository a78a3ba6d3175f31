// Path health and failover with the WireGuard data channel, in the simulator: a session
// whose path goes silent under traffic moves to the other family within a second and keeps
// carrying packets; a quiet receiver, an idle session and a short loss do not move it.
#include <gtest/gtest.h>

#include "../sim/world_fixture.hpp"
#include "duet/transport/client.hpp"
#include "duet/tunnel/device.hpp"
#include "tunnel_side.hpp"

using namespace duet;
using namespace duet::test;
using namespace duet::tunnel;

namespace {

/// A client and a server on the dual-stack three-host world (5 ms per link: 20 ms round
/// trips), the client's remotes IPv6 first; the client's TUN sends one packet every 50 ms
/// while `streaming`.
struct FailoverWorld {
  explicit FailoverWorld(const std::string& proto, std::uint64_t seed = 21)
      : w(seed),
        s(Identity::from_private(generate_private_key())),
        c(Identity::from_private(generate_private_key())),
        server((build(w), w), "server", "mode server\nproto " + proto + "\n", s,
               {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}}),
        client(w, "client", "mode client\nremote fd00:2::2 1194 " + proto + "\nremote 198.18.2.2 1194 " + proto + "\n",
               c, {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}}) {}
  static void build(sim::SimWorld& w) {
    sim::LinkProperties link;
    link.one_way_delay = 5ms;
    build_three_hosts(w, link);
  }
  /// One packet from the client's TUN now and every 50 ms until `until`.
  void stream(net::Duration until) {
    const auto start = w.now().time_since_epoch();
    std::uint8_t n = 0;
    for (auto t = start; t < start + until; t += 50ms) {
      w.at(t, [this, n] { client.device.route(ipv4_udp("198.18.120.2", "198.18.120.1", n)); });
      ++n;
    }
  }
  [[nodiscard]] bool on_v4() const { return client.client->remote() && client.client->remote()->address.is_v4(); }

  sim::SimWorld w;
  Identity s, c;
  Side server, client;
};

class FailoverOver : public ::testing::TestWithParam<const char*> {
protected:
  void SetUp() override { ASSERT_TRUE(crypto_init()); }
};

TEST_P(FailoverOver, ASilentPathUnderTrafficIsLeftForIpv4WithinASecondAndTheTunnelCarriesOn) {
  FailoverWorld f(GetParam());
  ASSERT_TRUE(f.w.run_until([&] { return f.client.client->connected(); }, 2s));
  ASSERT_FALSE(f.on_v4());
  f.stream(20s);
  f.w.run_for(1s);
  // The handshake and the first keepalive measured the path (20 ms round trips) and showed
  // that the peer answers keepalives: probes are keepalives, not handshakes.
  EXPECT_GE(f.client.client->smoothed_rtt(), 15ms);
  EXPECT_LE(f.client.client->smoothed_rtt(), 60ms);
  EXPECT_TRUE(f.client.device.peers()[0].answers_keepalives);
  const auto handshakes_before = f.client.device.peers()[0].handshakes;

  f.w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);
  const auto cut = f.w.now();
  ASSERT_TRUE(f.w.run_until([&] { return f.on_v4(); }, 5s));
  EXPECT_LT(f.w.now() - cut, 1s);
  EXPECT_EQ(f.client.client->paths_declared_dead(), 1u);
  // The packets flow again. The client had checked the IPv4 address a second after
  // connecting (a duet path check: answered, the session not moved; over TCP on a
  // connection of its own, closed after) and goes straight there with the keys it has: no
  // handshake, no race. Over TCP the server follows the session to the new connection.
  const std::size_t delivered = f.server.tun.size();
  f.w.run_for(1s);
  EXPECT_GE(f.server.tun.size(), delivered + 15);
  EXPECT_EQ(f.client.device.peers()[0].handshakes, handshakes_before) << f.client.log();
  EXPECT_EQ(f.client.client->standby_moves(), 1u) << f.client.log();

  // Healed: the client checks the path it left and moves back within a few seconds.
  f.w.remove_route("router", "fd00:2::2/128");
  const auto healed = f.w.now();
  ASSERT_TRUE(f.w.run_until([&] { return !f.on_v4(); }, 15s));
  EXPECT_LT(f.w.now() - healed, 5s);
  EXPECT_EQ(f.client.client->moves_back(), 1u);
  const std::size_t after_move = f.server.tun.size();
  f.w.run_for(1s);
  EXPECT_GE(f.server.tun.size(), after_move + 15);
}

INSTANTIATE_TEST_SUITE_P(Transports, FailoverOver, ::testing::Values("udp", "tcp"));

TEST(Failover, AReceiverWithNothingToSayIsNotADeadPath) {
  ASSERT_TRUE(crypto_init());
  FailoverWorld f("udp");
  ASSERT_TRUE(f.w.run_until([&] { return f.client.client->connected(); }, 2s));
  // One-way traffic for 30 s: the server's TUN sends nothing back. Each silence is probed
  // and answered; the session stays where it is.
  f.stream(30s);
  f.w.run_for(31s);
  EXPECT_EQ(f.client.client->connections_made(), 1u);
  EXPECT_EQ(f.client.client->paths_declared_dead(), 0u);
  EXPECT_GE(f.server.tun.size(), 590u);
}

TEST(Failover, ALossBurstShorterThanTheProbesDoesNotMoveTheSession) {
  ASSERT_TRUE(crypto_init());
  FailoverWorld f("udp");
  ASSERT_TRUE(f.w.run_until([&] { return f.client.client->connected(); }, 2s));
  f.stream(10s);
  f.w.run_for(1s);
  f.w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);
  f.w.run_for(400ms);  // a silence starts at the first unanswered send, up to ~0.25 s before
  f.w.remove_route("router", "fd00:2::2/128");
  f.w.run_for(5s);
  EXPECT_EQ(f.client.client->connections_made(), 1u);
  EXPECT_FALSE(f.on_v4());
}

TEST(Failover, AnIdleSessionCostsWhatTheKeepaliveCostsAndStillFailsOver) {
  ASSERT_TRUE(crypto_init());
  FailoverWorld f("udp");
  ASSERT_TRUE(f.w.run_until([&] { return f.client.client->connected(); }, 2s));
  f.w.run_for(1s);
  // Idle for 60 s: one keepalive (32 bytes) every 5 s and its answer, nothing else.
  const auto sent_before = f.client.device.peers()[0].tx_bytes;
  f.w.run_for(60s);
  EXPECT_EQ(f.client.device.peers()[0].tx_bytes - sent_before, 12u * 32u);
  EXPECT_EQ(f.client.client->standby_checks(), 1u) << "one after connecting; none while idle";
  EXPECT_TRUE(f.client.client->standby()) << f.client.log();
  EXPECT_EQ(f.client.client->connections_made(), 1u);
  // Idle and blackholed: the next keepalive goes unanswered, is probed, and the session
  // moves within the keepalive interval (5 s) and a second, not the 15 s timeout.
  f.w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);
  const auto cut = f.w.now();
  ASSERT_TRUE(f.w.run_until([&] { return f.on_v4(); }, 20s));
  EXPECT_LT(f.w.now() - cut, 6s);
}

/// A session that carries traffic checks its standby (the other family's address) at
/// most once every 15 s, and never moves to it for a check: the server's session stays on
/// the path the client uses.
TEST(Failover, UnderTrafficTheStandbyIsCheckedEveryFifteenSecondsWithoutMovingTheSession) {
  ASSERT_TRUE(crypto_init());
  FailoverWorld f("udp");
  ASSERT_TRUE(f.w.run_until([&] { return f.client.client->connected(); }, 2s));
  f.stream(61s);
  f.w.run_for(61s);
  // At 1 s, then 16, 31, 46 and 61 s at the latest.
  EXPECT_GE(f.client.client->standby_checks(), 4u);
  EXPECT_LE(f.client.client->standby_checks(), 5u);
  ASSERT_TRUE(f.client.client->standby()) << f.client.log();
  EXPECT_TRUE(f.client.client->standby()->candidate.endpoint.address.is_v4());
  EXPECT_FALSE(f.on_v4());
  EXPECT_EQ(f.client.client->connections_made(), 1u);
  // The server still sends to the client's IPv6 address: the checks did not move it.
  ASSERT_TRUE(f.server.device.peers()[0].endpoint);
  EXPECT_FALSE(f.server.device.peers()[0].endpoint->address.is_v4());
  EXPECT_GE(f.server.tun.size(), 1200u);
}

/// A standby that broke after its check: the move to it gives up within a fraction of a
/// second and the race runs as without a standby, here until IPv4 heals.
TEST(Failover, AStandbyThatBrokeSinceItsCheckCostsAFractionOfASecondThenTheRaceRuns) {
  ASSERT_TRUE(crypto_init());
  FailoverWorld f("udp");
  ASSERT_TRUE(f.w.run_until([&] { return f.client.client->connected(); }, 2s));
  f.stream(20s);
  f.w.run_for(2s);
  ASSERT_TRUE(f.client.client->standby());
  f.w.add_route("router", "198.18.2.2/32", sim::RouteVerdict::blackhole);  // the standby breaks, unseen
  f.w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);  // then the active path
  f.w.run_for(3s);
  EXPECT_EQ(f.client.client->standby_moves(), 0u);
  EXPECT_FALSE(f.client.client->connected());
  EXPECT_NE(f.client.log().find("did not answer the move: racing the addresses"), std::string::npos) << f.client.log();
  f.w.remove_route("router", "198.18.2.2/32");
  const auto healed = f.w.now();
  ASSERT_TRUE(f.w.run_until([&] { return f.on_v4(); }, 5s)) << f.client.log();
  EXPECT_LT(f.w.now() - healed, 1s) << "the race's hellos repeat every 250 ms";
}

}  // namespace

namespace {

/// Two p2p peers on the dual-stack three-host world, each with the other's IPv6 address
/// first, connected.
struct P2pPeers {
  explicit P2pPeers(std::uint64_t seed)
      : w(seed),
        a(Identity::from_private(generate_private_key())),
        b(Identity::from_private(generate_private_key())),
        left((FailoverWorld::build(w), w), "client", "proto udp\nremote fd00:2::2\nremote 198.18.2.2\n", a,
             {{b.public_key, {}, {*net::Prefix::parse("198.18.120.1/32")}}}),
        right(w, "server", "proto udp\nremote fd00:1::2\nremote 198.18.1.2\n", b,
              {{a.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}}) {}
  bool connect() {
    return w.run_until([&] { return left.client->connected() && right.client->connected(); }, 2s);
  }

  sim::SimWorld w;
  Identity a, b;
  Side left, right;
};

/// p2p peers check each other's other family through their listening sockets (path checks:
/// keepalives prove nothing between p2p peers), and when IPv6 between them dies each moves
/// to the checked standby with the keys it has: no handshake, no race.
TEST(Failover, P2pPeersMoveToTheirCheckedStandbyKeepingTheKeys) {
  ASSERT_TRUE(crypto_init());
  P2pPeers p(29);
  ASSERT_TRUE(p.connect());
  sim::SimWorld& w = p.w;
  Side &left = p.left, &right = p.right;
  // Traffic both ways, one packet each every 50 ms.
  const auto start = w.now().time_since_epoch();
  for (int n = 0; n < 400; ++n) {
    w.at(start + n * 50ms, [&, n] {
      left.device.route(ipv4_udp("198.18.120.2", "198.18.120.1", static_cast<std::uint8_t>(n)));
      right.device.route(ipv4_udp("198.18.120.1", "198.18.120.2", static_cast<std::uint8_t>(n)));
    });
  }
  w.run_for(2s);
  for (Side* s : {&left, &right}) {
    ASSERT_TRUE(s->client->standby()) << s->log();
    EXPECT_TRUE(s->client->standby()->candidate.endpoint.address.is_v4());
    EXPECT_TRUE(s->device.peers()[0].answers_path_checks);
  }
  const auto handshakes = left.device.peers()[0].handshakes + right.device.peers()[0].handshakes;
  w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);
  w.add_route("router", "fd00:1::2/128", sim::RouteVerdict::blackhole);
  const auto cut = w.now();
  const auto on_v4 = [](Side& s) { return s.client->remote() && s.client->remote()->address.is_v4(); };
  ASSERT_TRUE(w.run_until([&] { return on_v4(left) && on_v4(right); }, 5s)) << left.log() << right.log();
  EXPECT_LT(w.now() - cut, 1s);
  EXPECT_EQ(left.client->standby_moves() + right.client->standby_moves(), 2u) << left.log() << right.log();
  const std::size_t delivered = left.tun.size() + right.tun.size();
  w.run_for(1s);
  EXPECT_GE(left.tun.size() + right.tun.size(), delivered + 30) << "both ways again";
  EXPECT_EQ(left.device.peers()[0].handshakes + right.device.peers()[0].handshakes, handshakes) << "keys kept";
}

TEST(Failover, IdleP2pPeersNeitherProbeWithHandshakesNorDropThePath) {
  ASSERT_TRUE(crypto_init());
  // Both peers send keepalives, and neither answers the other's (WireGuard's rule): a
  // keepalive of the peer's own must not be taken for an answer, or every silence would be
  // probed with keepalives nobody answers.
  P2pPeers p(23);
  ASSERT_TRUE(p.connect());
  sim::SimWorld& w = p.w;
  Side &left = p.left, &right = p.right;
  w.run_for(60s);
  EXPECT_FALSE(left.device.peers()[0].answers_keepalives);
  EXPECT_EQ(left.client->connections_made(), 1u);
  EXPECT_EQ(right.client->connections_made(), 1u);
  EXPECT_EQ(left.client->paths_declared_dead(), 0u);
  // The handshakes of the start (each side's own, crossing), no probing ones.
  EXPECT_LE(left.device.peers()[0].handshakes, 2u);
}

}  // namespace
