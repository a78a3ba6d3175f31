// The engine in the simulator: listeners, racing connectors, failover, framing.
#include <gtest/gtest.h>

#include <set>
#include "../sim/world_fixture.hpp"

#include "duet/config/loader.hpp"
#include "duet/node/node.hpp"
#include "duet/sim/probe_session.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/framing.hpp"
#include "duet/transport/server.hpp"

using namespace duet;
using namespace duet::test;
using transport::EventKind;

namespace {

config::Config load(const std::string& text) {
  auto r = config::load_text(text, "engine-test.conf");
  EXPECT_TRUE(r.ok());
  for (const auto& d : r.diagnostics.all()) ADD_FAILURE() << d.to_string();
  return r.config;
}

/// One duet instance on a simulated host (the daemon's own wiring, with probe sessions),
/// recording its events.
struct Instance {
  Instance(sim::SimWorld& w, const std::string& host, const std::string& text, std::uint64_t id)
      : config(load(text)), sessions(id), node(w.stack(host), nullptr, config, options()) {}
  node::NodeOptions options() {
    node::NodeOptions o;
    o.events = [this](const transport::Event& e) { events.push_back(e); };
    o.sessions = &sessions;
    return o;
  }
  void start() {
    std::string why;
    EXPECT_TRUE(node.start(why)) << why;
    server = node.server();
    client = node.client();
  }
  std::vector<transport::Event> of(EventKind k) const {
    std::vector<transport::Event> out;
    for (const auto& e : events) {
      if (e.kind == k) out.push_back(e);
    }
    return out;
  }
  config::Config config;
  sim::ProbeSessionFactory sessions;
  std::vector<transport::Event> events;
  node::Node node;
  transport::Server* server = nullptr;
  transport::Client* client = nullptr;
};

void dual_stack_dns(sim::SimWorld& w) {
  w.set_dns("vpn.test",
            {sim::DnsAnswer::Kind::records, {*net::Address::parse("198.18.2.2"), *net::Address::parse("fd00:2::2")}});
}

TEST(Framing, PartialCoalescedZeroAndOversized) {
  transport::Deframer d(100);
  std::vector<std::string> got;
  auto collect = [&](std::span<const std::uint8_t> m) { got.emplace_back(m.begin(), m.end()); };
  auto a = transport::frame(std::vector<std::uint8_t>{'a', 'b'});
  auto b = transport::frame(std::vector<std::uint8_t>{'c'});
  std::vector<std::uint8_t> both(a);
  both.insert(both.end(), b.begin(), b.end());
  EXPECT_FALSE(d.feed(std::span(both).first(1), collect));  // half a length
  EXPECT_FALSE(d.feed(std::span(both).subspan(1, 2), collect));
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(d.feed(std::span(both).subspan(3), collect));  // rest of a, all of b
  EXPECT_EQ(got, (std::vector<std::string>{"ab", "c"}));
  EXPECT_EQ(d.pending(), 0u);
  const std::uint8_t zero[] = {0, 0};
  EXPECT_EQ(d.feed(zero, collect), transport::make_error_code(transport::FramingError::zero_length));
  transport::Deframer small(100);
  const std::uint8_t big[] = {0, 101};
  EXPECT_EQ(small.feed(big, collect), transport::make_error_code(transport::FramingError::oversized));
}

const char* kServer = "mode server\n<listen>\nproto udp\n</listen>\n<listen>\nproto tcp\n</listen>\n";

TEST(Engine, ServerListensOnBothFamiliesAndTransports) {
  sim::SimWorld w(1);
  build_three_hosts(w);
  Instance server(w, "server", kServer, 1000);
  server.start();
  w.run_for(10ms);
  std::vector<std::string> got;
  for (const auto& l : server.server->listening()) got.push_back(l.to_string() + (l.v6only ? " v6only" : ""));
  EXPECT_EQ(got, (std::vector<std::string>{"0.0.0.0:1194/udp", "[::]:1194/udp v6only", "0.0.0.0:1194/tcp",
                                           "[::]:1194/tcp v6only"}));
}

struct RaceCase {
  const char* proto;
  int delay_ms;
};

class Fallback : public ::testing::TestWithParam<RaceCase> {};

TEST_P(Fallback, Ipv6BlackholedClientConnectsOverIpv4) {
  const auto& c = GetParam();
  sim::SimWorld w(2);
  build_three_hosts(w);
  dual_stack_dns(w);
  w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);
  Instance server(w, "server", kServer, 1000);
  Instance client(w, "client",
                  std::string("mode client\nconnect-timeout 5\nremote vpn.test 1194 ") + c.proto +
                      "\nhappy-eyeballs-delay " + std::to_string(c.delay_ms) + "\n",
                  1);
  server.start();
  client.start();
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 30s));
  EXPECT_EQ(client.client->remote()->to_string(), "198.18.2.2:1194");
  const auto connected = client.of(EventKind::connected).at(0);
  if (c.delay_ms > 0) {
    // One attempt delay plus a round trip (4 ms) plus DNS (1 ms).
    EXPECT_LE(connected.elapsed, net::Duration(std::chrono::milliseconds(c.delay_ms + 20)));
  } else {
    // Without racing the IPv6 attempt must first run out its connect-timeout.
    EXPECT_GE(connected.elapsed, net::Duration(5s));
    EXPECT_LE(connected.elapsed, net::Duration(5s + 20ms));
  }
  EXPECT_EQ(server.server->peers(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Engine, Fallback,
                         ::testing::Values(RaceCase{"udp", 250}, RaceCase{"tcp", 250}, RaceCase{"udp", 0},
                                           RaceCase{"tcp", 0}),
                         [](const auto& info) {
                           return std::string(info.param.proto) + (info.param.delay_ms ? "_racing" : "_in_order");
                         });

TEST(Engine, IcmpErrorsMoveOnBeforeTheAttemptDelay) {
  sim::SimWorld w(3);
  build_three_hosts(w);
  dual_stack_dns(w);
  w.settings("router").icmp_ratelimit_v6 = 0ms;
  w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::prohibit);
  Instance server(w, "server", kServer, 1000);
  Instance client(w, "client", "mode client\nremote vpn.test 1194 udp\nhappy-eyeballs-delay 2000\n", 1);
  server.start();
  client.start();
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 30s));
  // Connected UDP hears "prohibited" (EACCES) at once: no need to wait 2 s.
  EXPECT_LT(client.of(EventKind::connected).at(0).elapsed, net::Duration(100ms));
  EXPECT_EQ(net::error_name(client.of(EventKind::attempt_failed).at(0).error), "EACCES");
}

TEST(Engine, FailoverMidSessionAndBack) {
  sim::SimWorld w(4);
  build_three_hosts(w);
  dual_stack_dns(w);
  Instance server(w, "server", kServer, 1000);
  Instance client(w, "client", "mode client\nremote vpn.test 1194 udp\nkeepalive 1 3\n", 1);
  server.start();
  client.start();
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s));
  EXPECT_TRUE(client.client->remote()->address.is_v6());
  const auto fault_at = w.now();
  w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);
  ASSERT_TRUE(w.run_until([&] { return client.client->connections_made() == 2 && client.client->connected(); }, 30s));
  EXPECT_TRUE(client.client->remote()->address.is_v4());
  EXPECT_LE(w.now() - fault_at, net::Duration(4s));  // keepalive timeout 3 s + one attempt delay
  ASSERT_FALSE(client.of(EventKind::disconnected).empty());
  // Data flows on the new path.
  for (int i = 0; i < 5; ++i) client.client->send(sim::ProbeSession::data(i));
  w.run_for(100ms);
  EXPECT_EQ(server.sessions.stats.data_received, 5u);
}

TEST(Engine, P2pPeersOnDualStackFindEachOther) {
  sim::SimWorld w(5);
  build_three_hosts(w);
  Instance a(w, "client", "proto udp\nremote fd00:2::2\nremote 198.18.2.2\n", 1);
  Instance b(w, "server", "proto udp\nremote fd00:1::2\nremote 198.18.1.2\n", 1000);
  a.start();
  b.start();
  ASSERT_TRUE(w.run_until([&] { return a.client->connected() && b.client->connected(); }, 5s));
  EXPECT_EQ(a.client->remote()->to_string(), "[fd00:2::2]:1194");
  EXPECT_EQ(b.client->remote()->to_string(), "[fd00:1::2]:1194");
}

TEST(Engine, AP2pPeerThatStartsFirstStillSettlesOnIpv6) {
  // a's IPv6 hello reaches b's host before b runs and is lost (an unconnected socket hears
  // no ICMP error). When b's own hello arrives on that path, a says hello again at once,
  // instead of waiting a second for its resend while Happy Eyeballs moves to IPv4.
  sim::SimWorld w(5);
  build_three_hosts(w);
  Instance a(w, "client", "proto udp\nremote fd00:2::2\nremote 198.18.2.2\n", 1);
  Instance b(w, "server", "proto udp\nremote fd00:1::2\nremote 198.18.1.2\n", 1000);
  a.start();
  w.run_for(20ms);
  b.start();
  ASSERT_TRUE(w.run_until([&] { return a.client->connected() && b.client->connected(); }, 5s));
  EXPECT_EQ(a.client->remote()->to_string(), "[fd00:2::2]:1194");
  EXPECT_LT(a.of(EventKind::connected).at(0).elapsed, 100ms);
}

TEST(Engine, RoundFailureBacksOffWithConnectRetry) {
  sim::SimWorld w(6);
  build_three_hosts(w);
  Instance client(w, "client", "mode client\nremote 198.18.2.2 1194 tcp\nconnect-retry 2 8\n", 1);
  client.start();  // nothing listens: RST each time
  w.run_for(20s);
  const auto rounds = client.of(EventKind::round_failed);
  ASSERT_GE(rounds.size(), 3u);
  EXPECT_EQ(rounds[0].detail, "retrying in 2000 ms");
  EXPECT_EQ(rounds[1].detail, "retrying in 4000 ms");
  EXPECT_EQ(rounds[2].detail, "retrying in 8000 ms");
}

TEST(Engine, ServerPollTimeoutBoundsAConnectionBlockNotEachAddress) {
  for (const bool poll : {true, false}) {
    sim::SimWorld w(19);
    build_three_hosts(w);
    w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);  // silently dropped
    Instance server(w, "server", "mode server\nproto udp\n", 1000);
    const std::string text = std::string("mode client\nconnect-timeout 60\n") +
                             (poll ? "server-poll-timeout 5\n" : "") +
                             "<connection>\nremote fd00:2::2 1194 udp\n</connection>\n"
                             "<connection>\nremote 198.18.2.2 1194 udp\n</connection>\n";
    Instance client(w, "client", text, 1);
    server.start();
    client.start();
    ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 120s));
    const auto connected = client.of(EventKind::connected).at(0);
    EXPECT_EQ(connected.endpoint->family(), net::Family::v4);
    if (poll) {
      EXPECT_GE(connected.elapsed, 5s);
      EXPECT_LT(connected.elapsed, 6s) << "the first <connection> gets 5 s, not connect-timeout's 60";
      const auto failed = client.of(EventKind::attempt_failed).at(0);
      EXPECT_NE(failed.describe().find("ETIMEDOUT (server-poll-timeout 5 s)"), std::string::npos) << failed.describe();
    } else {
      EXPECT_GE(connected.elapsed, 60s) << "without it, the address's own connect-timeout decides";
    }
  }
}

TEST(Engine, SpoofedDatagramsCostTheServerNoPeerSlots) {
  sim::SimWorld w(17);
  build_three_hosts(w);
  Instance server(w, "server", "mode server\nproto udp\n", 1000);
  server.start();
  w.run_for(10ms);
  // Garbage from 6000 source ports: more sources than the server's UDP peer table holds.
  std::vector<std::unique_ptr<net::DatagramSocket>> spoofed;
  const std::vector<std::uint8_t> junk{'j', 'u', 'n', 'k'};
  for (int port = 10000; port < 16000; ++port) {
    spoofed.push_back(std::move(*w.stack("client").open_datagram(net::Family::v4)));
    ASSERT_FALSE(spoofed.back()->bind(ep(("198.18.1.2:" + std::to_string(port)).c_str())));
    (void)spoofed.back()->send_to(ep("198.18.2.2:1194"), junk);
  }
  w.run_for(1s);
  EXPECT_EQ(server.sessions.stats.garbage, 6000u) << "every datagram was looked at";
  EXPECT_EQ(server.server->peers(), 0u) << "and none became a peer";
  Instance good(w, "client", "mode client\nremote 198.18.2.2 1194 udp\n", 1);
  good.start();
  ASSERT_TRUE(w.run_until([&] { return good.client->connected(); }, 5s)) << "a real client still gets in";
  EXPECT_EQ(server.server->peers(), 1u);
}

}  // namespace

namespace {

TEST(Engine, BadFramingClosesOnlyThatConnection) {
  sim::SimWorld w(7);
  build_three_hosts(w);
  Instance server(w, "server", "mode server\nproto tcp\n", 1000);
  Instance good(w, "client", "mode client\nremote 198.18.2.2 1194 tcp\n", 1);
  server.start();
  good.start();
  ASSERT_TRUE(w.run_until([&] { return good.client->connected(); }, 5s));
  // A hostile peer: a zero length, then (on a second connection) an oversized one.
  for (const std::vector<std::uint8_t>& bad :
       {std::vector<std::uint8_t>{0, 0, 'x'}, std::vector<std::uint8_t>{0x50, 0x00}}) {
    auto s = std::move(*w.stack("client").open_stream(net::Family::v4));
    bool connected = false;
    s->connect(ep("198.18.2.2:1194"), 1s, [&](std::error_code ec) { connected = !ec; });
    ASSERT_TRUE(w.run_until([&] { return connected; }, 2s));
    s->write(bad, [](std::error_code) {});
    bool closed = false;
    std::function<void()> drain = [&] {
      s->read_some([&](std::error_code ec, std::span<const std::uint8_t> d) {
        if (ec || d.empty())
          closed = true;
        else
          drain();
      });
    };
    drain();
    EXPECT_TRUE(w.run_until([&] { return closed; }, 2s)) << "the server closes a connection that breaks framing";
  }
  const auto errors = server.of(EventKind::framing_error);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].detail, "message with length 0");
  EXPECT_EQ(errors[1].detail, "message longer than allowed");
  w.run_for(5s);
  EXPECT_TRUE(good.client->connected()) << "other peers are untouched";
  good.client->send(sim::ProbeSession::data(1));
  w.run_for(100ms);
  EXPECT_EQ(server.sessions.stats.data_received, 1u);
}

}  // namespace

namespace {

TEST(Engine, RemoteRandomVariesTheOrderReproducibly) {
  auto first_tried = [](std::uint64_t seed) {
    sim::SimWorld w(seed);
    build_three_hosts(w);
    Instance server(w, "server", "mode server\nproto udp\n", 1000);
    Instance client(w, "client",
                    "mode client\nremote-random\nremote 198.18.2.2\nremote fd00:2::2\nhappy-eyeballs-delay 0\n", 1);
    server.start();
    client.start();
    w.run_for(1s);
    return client.of(EventKind::attempt_started).at(0).endpoint->to_string();
  };
  std::set<std::string> seen;
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    seen.insert(first_tried(seed));
    EXPECT_EQ(first_tried(seed), first_tried(seed)) << "the same seed, the same order";
  }
  EXPECT_EQ(seen.size(), 2u) << "both remotes come first for some seed";
}

}  // namespace

namespace {

TEST(Engine, ResolvRetryGivesUpOnNamesThatNeverResolve) {
  sim::SimWorld w(8);
  build_three_hosts(w);
  Instance finite(w, "client", "mode client\nremote gone.test\nresolv-retry 20\nconnect-retry 5 5\n", 1);
  Instance forever(w, "client", "mode client\nremote gone.test\nconnect-retry 5 5\n", 2);
  finite.start();
  forever.start();
  w.run_for(60s);
  EXPECT_TRUE(finite.client->gave_up());
  const auto gave = finite.of(EventKind::startup_failed);
  ASSERT_EQ(gave.size(), 1u);
  EXPECT_EQ(gave[0].detail, "no remote could be resolved for 20 s (resolv-retry); giving up");
  EXPECT_LE(gave[0].time.time_since_epoch(), net::Duration(26s));
  EXPECT_FALSE(forever.client->gave_up()) << "resolv-retry infinite is the default";
  EXPECT_GE(forever.of(EventKind::round_failed).size(), 10u);
}

}  // namespace
