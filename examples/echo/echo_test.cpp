// The echo service in a simulated world, under the failures real dual-stack networks
// have. Virtual time: each test runs in microseconds and gives the same result every run.
//
//   client eth0 ── eth0 router eth1 ── eth0 server        echo.test: AAAA fd00:2::2
//   198.18.1.2 / fd00:1::2      198.18.2.2 / fd00:2::2               A    198.18.2.2
#include <gtest/gtest.h>

#include "duet/net/error.hpp"
#include "duet/sim/world.hpp"
#include "echo.hpp"

using namespace std::chrono_literals;
using duet::net::Endpoint;
using duet::sim::RouteVerdict;
using duet::sim::SimWorld;

namespace {

void build(SimWorld& w) {
  duet::sim::HostSettings router;
  router.forwarding = true;
  w.add_host("client");
  w.add_host("router", router);
  w.add_host("server");
  w.connect("client", "eth0", "router", "eth0");  // 1 ms each way
  w.connect("router", "eth1", "server", "eth0");
  for (auto [host, ifname, prefix] : {std::tuple{"client", "eth0", "198.18.1.2/24"},
                                      {"client", "eth0", "fd00:1::2/64"},
                                      {"router", "eth0", "198.18.1.1/24"},
                                      {"router", "eth0", "fd00:1::1/64"},
                                      {"router", "eth1", "198.18.2.1/24"},
                                      {"router", "eth1", "fd00:2::1/64"},
                                      {"server", "eth0", "198.18.2.2/24"},
                                      {"server", "eth0", "fd00:2::2/64"}}) {
    w.add_address(host, ifname, prefix);
  }
  for (const char* host : {"client", "server"}) {
    w.add_route(host, "default", RouteVerdict::forward, "eth0");
    w.add_route(host, "default6", RouteVerdict::forward, "eth0");
  }
  duet::sim::DnsAnswer answer;
  answer.records = {*duet::net::Address::parse("fd00:2::2"), *duet::net::Address::parse("198.18.2.2")};
  w.set_dns("echo.test", answer);
}

/// Serves on the server, asks once from the client, and returns what the client saw.
echo::Outcome ask(SimWorld& w, std::vector<Endpoint>* bound = nullptr) {
  echo::Server server(w.stack("server"));
  server.start(7007, [&](auto b) {
    ASSERT_TRUE(b) << b.error().message();
    if (bound != nullptr) {
      *bound = *b;
    }
  });
  w.run_for(10ms);
  echo::Client client(w.stack("client"));
  std::optional<echo::Outcome> outcome;
  client.ask("echo.test", 7007, "hello", [&](echo::Outcome o) { outcome = std::move(o); });
  EXPECT_TRUE(w.run_until([&] { return outcome.has_value(); }, 10s)) << "the client never finished";
  return outcome.value_or(echo::Outcome{});
}

std::string steps(const echo::Outcome& o) {
  std::string s;
  for (const auto& step : o.steps) {
    s += step + "\n";
  }
  return s;
}

}  // namespace

TEST(Echo, ServerBindsBothFamiliesAndTheClientUsesIpv6First) {
  SimWorld w(1);
  build(w);
  std::vector<Endpoint> bound;
  const echo::Outcome o = ask(w, &bound);
  ASSERT_EQ(bound.size(), 2u);
  EXPECT_NE(bound[0].family(), bound[1].family());
  ASSERT_FALSE(o.error) << steps(o);
  EXPECT_EQ(o.reply, "hello");
  EXPECT_EQ(o.answered_by, Endpoint::parse("[fd00:2::2]:7007").value());
  EXPECT_LT(o.elapsed, 10ms);  // a DNS answer and one round trip over two links
}

TEST(Echo, BlackholedIpv6CostsOneAttemptTimeout) {
  SimWorld w(1);
  build(w);
  w.add_route("router", "fd00:2::2/128", RouteVerdict::blackhole);  // dropped without a word
  const echo::Outcome o = ask(w);
  ASSERT_FALSE(o.error) << steps(o);
  EXPECT_EQ(o.answered_by, Endpoint::parse("198.18.2.2:7007").value());
  EXPECT_GE(o.elapsed, 250ms);
  EXPECT_LT(o.elapsed, 270ms);
  EXPECT_EQ(o.steps.front(), "[fd00:2::2]:7007: ETIMEDOUT");
}

TEST(Echo, AnIcmpProhibitedRouteIsLeftAtOnce) {
  SimWorld w(1);
  build(w);
  w.add_route("router", "fd00:2::2/128", RouteVerdict::prohibit);  // ICMPv6 administratively prohibited
  const echo::Outcome o = ask(w);
  ASSERT_FALSE(o.error) << steps(o);
  EXPECT_EQ(o.answered_by, Endpoint::parse("198.18.2.2:7007").value());
  EXPECT_LT(o.elapsed, 20ms);  // the ICMP error comes back in one round trip: no timeout
  EXPECT_EQ(o.steps.front(), "[fd00:2::2]:7007: EACCES");
}

TEST(Echo, APartitionEndsInATimeoutPerAddressNotAHang) {
  SimWorld w(1);
  build(w);
  w.partition("client", "router");
  const echo::Outcome o = ask(w);
  EXPECT_EQ(o.error, duet::net::errc(std::errc::timed_out));
  EXPECT_EQ(o.steps.size(), 2u) << steps(o);
  EXPECT_GE(o.elapsed, 500ms);
  EXPECT_LT(o.elapsed, 520ms);
}

TEST(Echo, HealingThePartitionBringsRepliesBack) {
  SimWorld w(1);
  build(w);
  w.partition("client", "router");
  w.at(1s, [&] { w.heal("client", "router"); });
  echo::Outcome first = ask(w);
  EXPECT_TRUE(first.error);
  w.run_for(1s);
  echo::Outcome second = ask(w);
  EXPECT_FALSE(second.error) << steps(second);
}

TEST(Echo, OneSeedOneTrace) {
  const auto report = duet::sim::check_determinism(42, [](SimWorld& w) {
    build(w);
    w.add_route("router", "fd00:2::2/128", RouteVerdict::blackhole);
    (void)ask(w);
  });
  EXPECT_TRUE(report.identical) << "line " << report.first_difference << ":\n"
                                << report.first_line << "\n"
                                << report.second_line;
  EXPECT_GT(report.lines, 10u);
}
