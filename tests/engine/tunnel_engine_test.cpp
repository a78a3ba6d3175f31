// The WireGuard data channel on the engine, in the simulator: IP packets from one
// device's TUN side come out of the other's, over UDP or TCP, with cryptokey routing.
#include <gtest/gtest.h>

#include <algorithm>

#include "../sim/world_fixture.hpp"
#include "duet/config/loader.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/server.hpp"
#include "duet/tunnel/device.hpp"
#include "tunnel_side.hpp"

using namespace duet;
using namespace duet::test;
using namespace duet::tunnel;

namespace {

class TunnelOver : public ::testing::TestWithParam<const char*> {
protected:
  void SetUp() override { ASSERT_TRUE(crypto_init()); }
};

TEST_P(TunnelOver, PacketsCrossBothWaysAndSpoofedSourcesAreDropped) {
  sim::SimWorld w(11);
  build_three_hosts(w);
  const Identity s = Identity::from_private(generate_private_key());
  const Identity c = Identity::from_private(generate_private_key());
  const std::string proto = GetParam();
  Side server(w, "server", "mode server\nproto " + proto + "\n", s,
              {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}});
  Side client(w, "client", "mode client\nremote 198.18.2.2 1194 " + proto + "\nkeepalive 1 3\n", c,
              {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}});
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s));
  EXPECT_TRUE(client.device.route(ipv4_udp("198.18.120.2", "198.18.120.1", 1)));
  w.run_for(100ms);
  ASSERT_EQ(server.tun.size(), 1u);
  EXPECT_EQ(server.tun[0], ipv4_udp("198.18.120.2", "198.18.120.1", 1));
  // And back: the server routes by the client's allowed IPs.
  EXPECT_TRUE(server.device.route(ipv4_udp("198.18.120.1", "198.18.120.2", 2)));
  w.run_for(100ms);
  ASSERT_EQ(client.tun.size(), 1u);
  EXPECT_EQ(client.tun[0][27], 2);
  // A source outside the client's allowed IPs never reaches the server's TUN.
  EXPECT_TRUE(client.device.route(ipv4_udp("198.18.120.9", "198.18.120.1", 3)));
  w.run_for(100ms);
  EXPECT_EQ(server.tun.size(), 1u);
  // No peer for a destination: nothing is sent.
  EXPECT_FALSE(client.device.route(ipv4_udp("198.18.120.2", "203.0.113.1", 4)));
  // Idle for a while: keepalives keep the session (no reconnect).
  w.run_for(10s);
  EXPECT_EQ(client.client->connections_made(), 1u);
  EXPECT_GT(server.device.peers()[0].rx_bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(Transports, TunnelOver, ::testing::Values("udp", "tcp"));

TEST(Tunnel, AnUnknownKeyGetsNoAnswer) {
  ASSERT_TRUE(crypto_init());
  sim::SimWorld w(12);
  build_three_hosts(w);
  const Identity s = Identity::from_private(generate_private_key());
  const Identity c = Identity::from_private(generate_private_key());
  const Identity stranger = Identity::from_private(generate_private_key());
  Side server(w, "server", "mode server\nproto udp\n", s,
              {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}});
  Side intruder(w, "client", "mode client\nremote 198.18.2.2 1194 udp\nconnect-timeout 2\n", stranger,
                {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}});
  w.run_for(5s);
  EXPECT_FALSE(intruder.client->connected());
  EXPECT_EQ(server.device.peers()[0].last_handshake, std::nullopt);
}

}  // namespace

namespace {

TEST(Tunnel, HostileTrafficIsRefusedAndTheTunnelKeepsWorking) {
  ASSERT_TRUE(crypto_init());
  sim::SimWorld w(13);
  build_three_hosts(w);
  // An attacker beside the client, with 64 addresses to flood from.
  add_stranger(w, "attacker", 64);
  const Identity s = Identity::from_private(generate_private_key());
  const Identity c = Identity::from_private(generate_private_key());
  Side server(w, "server", "mode server\nproto udp\n", s,
              {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}});
  Side client(w, "client", "mode client\nremote 198.18.2.2 1194 udp\nkeepalive 1 5\n", c,
              {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}});
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s));

  auto& stack = w.stack("attacker");
  std::vector<std::unique_ptr<net::DatagramSocket>> sockets;
  for (int i = 2; i < 66; ++i) {
    auto sock = std::move(*stack.open_datagram(net::Family::v4));
    ASSERT_FALSE(sock->bind(*net::Endpoint::parse(("198.18.9." + std::to_string(i) + ":0").c_str())));
    sockets.push_back(std::move(sock));
  }
  const auto target = *net::Endpoint::parse("198.18.2.2:1194");
  sim::Random rng(99);
  // Garbage of every size and type byte, and truncated real-looking messages.
  for (std::size_t n = 0; n < 300; ++n) {
    Bytes junk(n % 200);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng.next());
    if (!junk.empty()) junk[0] = static_cast<std::uint8_t>(1 + n % 4);
    (void)sockets[n % sockets.size()]->send_to(target, junk);
  }
  // A stranger's perfectly valid handshake, from 64 sources, 20 times each.
  const Identity stranger = Identity::from_private(generate_private_key());
  for (int round = 0; round < 20; ++round) {
    for (auto& sock : sockets) {
      InitiatorState st;
      (void)sock->send_to(target, create_initiation(stranger, s.public_key, Key{}, 1, tai64n(1000 + round, 0),
                                                    generate_private_key(), st));
    }
  }
  // A replay of the client's own kind of initiation with an old timestamp.
  InitiatorState st;
  (void)sockets[0]->send_to(target,
                            create_initiation(c, s.public_key, Key{}, 1, tai64n(1, 0), generate_private_key(), st));
  w.run_for(2s);

  EXPECT_TRUE(server.tun.empty()) << "nothing reached the server's TUN";
  EXPECT_TRUE(client.client->connected());
  EXPECT_EQ(client.client->connections_made(), 1u) << "the tunnel was never disturbed";
  EXPECT_TRUE(client.device.route(ipv4_udp("198.18.120.2", "198.18.120.1", 42)));
  EXPECT_TRUE(server.device.route(ipv4_udp("198.18.120.1", "198.18.120.2", 43)));
  w.run_for(100ms);
  ASSERT_EQ(server.tun.size(), 1u);
  EXPECT_EQ(server.tun[0][27], 42);
  ASSERT_FALSE(client.tun.empty());
  EXPECT_EQ(client.tun.back()[27], 43);
}

}  // namespace

namespace {

TEST(Tunnel, ASeededRandomSourceMakesHandshakesReproducible) {
  ASSERT_TRUE(crypto_init());
  const Identity me = Identity::from_private(clamp_private_key(Key{7}));
  const Identity peer = Identity::from_private(clamp_private_key(Key{9}));
  auto hello_with_seed = [&](std::uint64_t seed) {
    sim::SimWorld w(1);
    w.add_host("h");
    auto rng = std::make_shared<sim::Random>(seed);
    Device d(me, {{peer.public_key, {}, {}}}, w.stack("h").clock(), nullptr, [rng](std::span<std::uint8_t> out) {
      for (auto& b : out) b = static_cast<std::uint8_t>(rng->next());
    });
    return d.make_initiator(0, ep("198.18.0.1:1"), config::Transport::udp)->hello();
  };
  EXPECT_EQ(hello_with_seed(5), hello_with_seed(5)) << "same seed, same ephemeral key and index, same bytes";
  EXPECT_NE(hello_with_seed(5), hello_with_seed(6));
}

}  // namespace

namespace {

/// A TCP tunnel across build_three_hosts() with 10 Mbit/s links, for the flow-control
/// tests: slower than the TUN side can offer.
struct SlowTcpTunnel {
  explicit SlowTcpTunnel(std::uint64_t seed)
      : w(seed),
        built(build(w)),
        s(Identity::from_private(generate_private_key())),
        c(Identity::from_private(generate_private_key())),
        server(w, "server", "mode server\nproto tcp\n", s,
               {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}}),
        client(w, "client", "mode client\nremote 198.18.2.2 1194 tcp\n", c,
               {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}}) {}
  static bool build(sim::SimWorld& world) {
    sim::LinkProperties slow;
    slow.bandwidth_bits_per_second = 10'000'000;
    build_three_hosts(world, slow);
    return true;
  }
  /// Connected, and settled.
  bool connect() {
    if (!w.run_until([&] { return client.client->connected(); }, 5s)) return false;
    w.run_for(100ms);
    return true;
  }
  sim::SimWorld w;
  bool built;  ///< the hosts exist before the sides are made on them
  Identity s, c;
  Side server, client;
};

/// A 1400-byte inner packet (by default from the client to the server), tagged in its
/// last two bytes.
Bytes full_size(std::uint16_t tag, const char* from = "198.18.120.2", const char* to = "198.18.120.1") {
  Bytes p = ipv4_udp(from, to, 0);
  p.resize(1400);
  p[2] = 1400 >> 8;
  p[3] = 1400 & 0xff;
  p[26] = static_cast<std::uint8_t>(tag >> 8);
  p[27] = static_cast<std::uint8_t>(tag);
  return p;
}

/// Packets routed straight into the device, past the TUN (so nothing can hold their
/// sender back): the stream queues up to its cap and drops the rest, and the tunnel is
/// fine afterwards.
TEST(Tunnel, OverTcpABurstThatIgnoresBackpressureIsCutAtTheStreamCap) {
  ASSERT_TRUE(crypto_init());
  SlowTcpTunnel t(14);
  ASSERT_TRUE(t.connect());
  // 4000 packets of 1400 bytes at once: 5.6 MB, four and a half seconds of this link.
  const Bytes big = full_size(1);
  for (int i = 0; i < 4000; ++i) t.client.device.route(big);
  t.w.run_for(10s);
  const std::size_t delivered = t.server.tun.size();
  EXPECT_GT(delivered, 1000u) << "the stream holds up to its 2 MiB cap";
  EXPECT_LT(delivered, 1600u) << "the rest was dropped at the cap, not held for seconds more";
  // And the tunnel is still fine afterwards.
  EXPECT_TRUE(t.client.device.route(ipv4_udp("198.18.120.2", "198.18.120.1", 9)));
  t.w.run_for(1s);
  EXPECT_EQ(t.server.tun.size(), delivered + 1);
  EXPECT_EQ(t.client.client->connections_made(), 1u);
}

/// Packets the host routes into the TUN while the outer TCP stream is slower: the node
/// stops reading the TUN while the stream is full, so a burst as long as the TUN's queue
/// arrives whole and in order (the tunnel drops none), where a tunnel that dropped at the
/// stream's high water would have lost most of it.
TEST(Tunnel, OverTcpAFullStreamPausesTheTunInsteadOfDropping) {
  ASSERT_TRUE(crypto_init());
  SlowTcpTunnel t(15);
  ASSERT_TRUE(t.connect());
  // 700 packets of 1400 bytes: nearly 1 MB, the stream's high water four times over.
  constexpr int kBurst = 700;
  for (int i = 0; i < kBurst; ++i) {
    const Bytes p = full_size(static_cast<std::uint16_t>(i));
    if (i < 500) {
      ASSERT_TRUE(t.client.sim_tun.inject(p)) << i;
    } else {
      t.w.run_for(50ms);  // the rest as the queue makes room, as a local sender's would
      ASSERT_TRUE(t.client.sim_tun.inject(p)) << i;
    }
  }
  ASSERT_TRUE(t.w.run_until([&] { return t.server.tun.size() >= static_cast<std::size_t>(kBurst); }, 20s))
      << t.server.tun.size() << " of " << kBurst;
  for (int i = 0; i < kBurst; ++i) {
    ASSERT_EQ(t.server.tun[static_cast<std::size_t>(i)][27], static_cast<std::uint8_t>(i)) << "in order";
    ASSERT_EQ(t.server.tun[static_cast<std::size_t>(i)][26], static_cast<std::uint8_t>(i >> 8)) << "in order";
  }
  const auto st = t.client.node.status(node::PeerSelection{false, std::nullopt});
  EXPECT_GE(st.tun_counters.pauses, 1u);
  EXPECT_GE(st.streams_congested, 1u);
  EXPECT_EQ(st.stuck_overrides, 0u) << "the stream drained: nothing was judged stuck";
  EXPECT_EQ(t.client.sim_tun.counters().dropped, 0u);
}

/// A stream that stops draining (its peer's path went silent) must not stall the TUN for
/// every other peer: after a short wait the node reads again, and only that stream's
/// messages are dropped, at its cap.
TEST(Tunnel, OverTcpAStreamThatStopsDrainingDoesNotHoldTheTunForever) {
  ASSERT_TRUE(crypto_init());
  SlowTcpTunnel t(16);
  ASSERT_TRUE(t.connect());
  t.w.partition("router", "server");  // the path goes silent
  const Bytes p = full_size(1);
  for (int i = 0; i < 400; ++i) t.client.sim_tun.inject(p);
  t.w.run_for(1s);
  const auto st = t.client.node.status(node::PeerSelection{false, std::nullopt});
  EXPECT_GE(st.tun_counters.pauses, 1u);
  EXPECT_GE(st.stuck_overrides, 1u) << "reading resumed past the stuck stream";
  EXPECT_EQ(t.client.sim_tun.counters().packets_read, 400u) << "every packet was taken from the TUN";
}

}  // namespace

namespace {

/// One TCP server and two clients behind one router (build_three_hosts() and a host
/// beside it): "slow" (the host "client") on a 2 Mbit/s link, a peer whose path or reader
/// is throttled, "fast" (198.18.9.2) on an unlimited one; the server's own link is
/// 100 Mbit/s. The server's TUN is where a test offers traffic to both.
struct ThrottledAndFast {
  explicit ThrottledAndFast(std::uint64_t seed)
      : w(seed),
        built(build(w)),
        s(Identity::from_private(generate_private_key())),
        a(Identity::from_private(generate_private_key())),
        b(Identity::from_private(generate_private_key())),
        server(w, "server", "mode server\nproto tcp\n", s,
               {{a.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}},
                {b.public_key, {}, {*net::Prefix::parse("198.18.120.3/32")}}}),
        slow(w, "client", "mode client\nremote 198.18.2.2 1194 tcp\n", a,
             {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}}),
        fast(w, "fast", "mode client\nremote 198.18.2.2 1194 tcp\n", b,
             {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}}) {}
  static bool build(sim::SimWorld& world) {
    sim::LinkProperties slow_link, server_link;
    slow_link.bandwidth_bits_per_second = 2'000'000;
    server_link.bandwidth_bits_per_second = 100'000'000;
    build_three_hosts(world, slow_link, server_link);
    add_stranger(world, "fast", 1);
    return true;
  }
  bool connect() {
    if (!w.run_until([&] { return slow.client->connected() && fast.client->connected(); }, 5s)) return false;
    w.run_for(100ms);
    return true;
  }
  /// A 1400-byte packet from the server's side to `to`, tagged.
  static Bytes to_client(const char* to, std::uint16_t tag) { return full_size(tag, "198.18.120.1", to); }
  sim::SimWorld w;
  bool built;
  Identity s, a, b;
  Side server, slow, fast;
};

/// Two clients of one server, one behind a 2 Mbit/s path: the server offers each 11 Mbit/s
/// (a 1400-byte packet every millisecond each). The throttled client's stream fills and
/// stays full; the other must get everything, as if the throttled one were not there, and
/// the server must not hold more than a bounded queue for the throttled one.
TEST(Tunnel, OverTcpAThrottledClientDoesNotSlowTheOtherClients) {
  ASSERT_TRUE(crypto_init());
  ThrottledAndFast t(17);
  ASSERT_TRUE(t.connect());
  constexpr int kPackets = 3000;  // three seconds
  for (int i = 0; i < kPackets; ++i) {
    (void)t.server.sim_tun.inject(ThrottledAndFast::to_client("198.18.120.2", static_cast<std::uint16_t>(i)));
    (void)t.server.sim_tun.inject(ThrottledAndFast::to_client("198.18.120.3", static_cast<std::uint16_t>(i)));
    t.w.run_for(1ms);
  }
  t.w.run_for(2s);
  const std::size_t fast_got = t.fast.tun.size(), slow_got = t.slow.tun.size();
  EXPECT_GE(fast_got, kPackets * 99 / 100) << "the fast client got " << fast_got << " of " << kPackets;
  // Its path is busy for ~4 s (the queue it holds drains after the offer stops): at
  // 2 Mbit/s, ~670 of these packets. It gets its path's worth.
  EXPECT_GT(slow_got, 600u);
  const auto st = t.server.node.status(node::PeerSelection{false, std::nullopt});
  EXPECT_EQ(t.server.sim_tun.counters().dropped, 0u) << "the server kept reading its TUN";
  EXPECT_GE(st.congested_unpaused, 1u);
  EXPECT_GT(st.stream_drops, 0u) << "the throttled client's surplus was dropped at its own queue";
  EXPECT_GE(st.stream_drops + slow_got, static_cast<std::size_t>(kPackets) * 95 / 100)
      << "what the slow one did not get was dropped for it, not held (its queue is bounded)";
  for (std::size_t i = 1; i < fast_got; ++i) {
    ASSERT_LT((t.fast.tun[i - 1][26] << 8) | t.fast.tun[i - 1][27], (t.fast.tun[i][26] << 8) | t.fast.tun[i][27])
        << "in order";
  }
}

/// While only the throttled client is busy, its full stream pauses the server's TUN (the
/// backpressure that spares its inner TCP the drops). A packet for the other client that
/// arrives meanwhile must not wait for the throttled stream to drain (at 2 Mbit/s, 192 KiB
/// of it take most of a second): the server looks at its TUN again within a short while.
TEST(Tunnel, OverTcpAPacketForAnotherClientDoesNotWaitForAThrottledStream) {
  ASSERT_TRUE(crypto_init());
  ThrottledAndFast t(18);
  ASSERT_TRUE(t.connect());
  // The throttled client's inner TCP: as much as the TUN queue takes (the kernel's queue
  // holds it back beyond), refilled as it is read.
  int next = 0;
  auto keep_slow_busy = [&] {
    // (room for one more packet left in the queue: the other client's)
    for (std::size_t i = 0; i < sim::SimTun::kQueueLength && t.server.sim_tun.waiting() + 1 < sim::SimTun::kQueueLength;
         ++i) {
      (void)t.server.sim_tun.inject(ThrottledAndFast::to_client("198.18.120.2", static_cast<std::uint16_t>(next++)));
    }
  };
  std::vector<net::Duration> waits;
  for (int round = 0; round < 8; ++round) {
    // Long enough for the server to forget that the other client had traffic.
    for (int i = 0; i < 10; ++i) {
      keep_slow_busy();
      t.w.run_for(300ms);
    }
    keep_slow_busy();
    // Now one packet for the other client, as an interactive session would send.
    const std::size_t before = t.fast.tun.size();
    const auto sent = t.w.now();
    ASSERT_TRUE(
        t.server.sim_tun.inject(ThrottledAndFast::to_client("198.18.120.3", static_cast<std::uint16_t>(round))));
    ASSERT_TRUE(t.w.run_until([&] { return t.fast.tun.size() > before; }, 5s));
    waits.push_back(t.w.now() - sent);
  }
  const auto st = t.server.node.status(node::PeerSelection{false, std::nullopt});
  EXPECT_GE(st.tun_counters.pauses, 1u) << "the throttled stream did pause the TUN";
  EXPECT_GE(st.tun_looks, 1u) << "and it was read for a moment while paused";
  std::sort(waits.begin(), waits.end());
  EXPECT_LT(waits.back(), 100ms) << "the slowest of eight took " << net::to_ms(waits.back()) << " ms";
}

}  // namespace
