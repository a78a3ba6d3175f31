#include <gtest/gtest.h>

#include <algorithm>

#include "world_fixture.hpp"

using namespace duet;
using namespace duet::test;

namespace {

struct Flow {
  std::unique_ptr<UdpSink> sink;
  std::unique_ptr<net::DatagramSocket> sender;
};

/// Client sends `n` numbered datagrams of `size` bytes to the server, spaced by `gap`.
Flow send_numbered(sim::SimWorld& w, int n, std::size_t size, Duration gap, const char* to = "198.18.2.2:5000") {
  Flow f;
  const auto target = ep(to);
  auto rx = std::move(*w.stack("server").open_datagram(target.family()));
  EXPECT_FALSE(rx->bind({net::Address::any(target.family()), target.port}));
  f.sink = std::make_unique<UdpSink>(w, std::move(rx));
  f.sender = std::move(*w.stack("client").open_datagram(target.family()));
  for (int i = 0; i < n; ++i) {
    w.at(w.now().time_since_epoch() + gap * i, [&w, s = f.sender.get(), i, size, target] {
      std::vector<std::uint8_t> d(size, 0);
      d[0] = static_cast<std::uint8_t>(i);
      d[1] = static_cast<std::uint8_t>(i >> 8);
      (void)s->send_to(target, d);
      (void)w;
    });
  }
  return f;
}

int number(const std::vector<std::uint8_t>& d) { return d[0] | (d[1] << 8); }

TEST(SimLink, OneWayDelayAddsUpPerHop) {
  sim::LinkProperties link;
  link.one_way_delay = 7ms;
  sim::SimWorld w(1);
  build_three_hosts(w, link);
  auto f = send_numbered(w, 1, 100, 0ms);
  w.run_for(1s);
  ASSERT_EQ(f.sink->times.size(), 1u);
  EXPECT_EQ(f.sink->times[0].time_since_epoch(), Duration(14ms));
}

TEST(SimLink, JitterStaysInBoundsAndKeepsOrderWithoutReordering) {
  sim::LinkProperties link;
  link.one_way_delay = 10ms;
  link.jitter = 8ms;
  sim::SimWorld w(2);
  build_three_hosts(w, link);
  auto f = send_numbered(w, 200, 100, 1ms);
  w.run_for(2s);
  ASSERT_EQ(f.sink->datagrams.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(number(f.sink->datagrams[i]), i);
  for (int i = 0; i < 200; ++i) {
    const auto latency = f.sink->times[i].time_since_epoch() - Duration(1ms) * i;
    EXPECT_GE(latency, Duration(20ms));
    EXPECT_LE(latency, Duration(36ms) + Duration(1ms) * 200);  // FIFO may hold a packet back
  }
}

TEST(SimLink, LossDuplicationAndReorderingHappenAtTheirRates) {
  sim::LinkProperties lossy;
  lossy.loss_probability = 0.1;
  sim::SimWorld w(3);
  build_three_hosts(w);
  w.set_link_properties("client", "router", lossy);
  auto f = send_numbered(w, 2000, 100, 1ms);
  w.run_for(5s);
  EXPECT_NEAR(static_cast<double>(f.sink->datagrams.size()), 1800, 60);

  sim::LinkProperties dup;
  dup.duplicate_probability = 0.1;
  dup.reorder_probability = 0.2;
  dup.one_way_delay = 5ms;
  sim::SimWorld w2(4);
  build_three_hosts(w2);
  w2.set_link_properties("client", "router", dup);
  auto g = send_numbered(w2, 2000, 100, 100us);
  w2.run_for(5s);
  EXPECT_NEAR(static_cast<double>(g.sink->datagrams.size()), 2200, 70);
  int out_of_order = 0;
  for (std::size_t i = 1; i < g.sink->datagrams.size(); ++i) {
    if (number(g.sink->datagrams[i]) < number(g.sink->datagrams[i - 1])) ++out_of_order;
  }
  EXPECT_GT(out_of_order, 100);
}

TEST(SimLink, BandwidthSerialisesPackets) {
  sim::LinkProperties slow;
  slow.bandwidth_bits_per_second = 1'000'000;
  slow.one_way_delay = 0ms;
  sim::SimWorld w(5);
  build_three_hosts(w);
  w.set_link_properties("client", "router", slow);
  auto f = send_numbered(w, 100, 1222, 0ms);  // 1250-byte IPv4 packets = 10 ms each at 1 Mbit/s
  w.run_for(5s);
  ASSERT_EQ(f.sink->times.size(), 100u);
  EXPECT_EQ(f.sink->times.back().time_since_epoch(), Duration(1000ms) + Duration(1ms));
}

TEST(SimLink, PartitionLosesPacketsUntilHealed) {
  sim::SimWorld w(6);
  build_three_hosts(w);
  w.at(100ms, [&] { w.partition("router", "server"); });
  w.at(300ms, [&] { w.heal("router", "server"); });
  auto f = send_numbered(w, 40, 100, 10ms);
  w.run_for(2s);
  // 10..29 (sent between 100 and 300 ms, minus one hop of flight time) are lost.
  EXPECT_EQ(f.sink->datagrams.size(), 20u);
  for (const auto& d : f.sink->datagrams) EXPECT_TRUE(number(d) < 10 || number(d) >= 30) << number(d);
}

TEST(SimLink, LargeDatagramsAreFragmentedAndMtuLimitsAreLearnedForIpv6) {
  sim::SimWorld w(7);
  build_three_hosts(w);
  sim::LinkProperties narrow;
  narrow.mtu = 1280;
  w.set_link_properties("router", "server", narrow);
  // IPv4: fragmented on the way (DF not set for UDP here), delivered whole.
  auto f = send_numbered(w, 1, 4000, 0ms);
  w.run_for(1s);
  ASSERT_EQ(f.sink->datagrams.size(), 1u);
  EXPECT_EQ(f.sink->datagrams[0].size(), 4000u);
  // IPv6: routers never fragment. The first 1400-byte datagram dies with "packet too
  // big"; the source learns the path MTU and fragments the next one itself.
  auto g = send_numbered(w, 2, 1400, 100ms, "[fd00:2::2]:5001");
  w.run_for(1s);
  ASSERT_EQ(g.sink->datagrams.size(), 1u);
  EXPECT_EQ(number(g.sink->datagrams[0]), 1);
  // Past the IP maximum: EMSGSIZE at once.
  auto s = std::move(*w.stack("client").open_datagram(net::Family::v4));
  std::vector<std::uint8_t> huge(65508);
  EXPECT_EQ(s->send_to(ep("198.18.2.2:5000"), huge), net::errc(std::errc::message_size));
}

TEST(SimLink, InterfaceDownMeansNoRouteAndAddressRemovalStopsDelivery) {
  sim::SimWorld w(8);
  build_three_hosts(w);
  auto s = std::move(*w.stack("client").open_datagram(net::Family::v4));
  const std::uint8_t x[] = {1};
  w.set_interface_up("client", "eth0", false);
  EXPECT_EQ(s->send_to(ep("198.18.2.2:5000"), x), net::errc(std::errc::network_unreachable));
  w.set_interface_up("client", "eth0", true);
  // As on Linux, the default route went with the link; it has to be added again.
  EXPECT_EQ(s->send_to(ep("198.18.2.2:5000"), x), net::errc(std::errc::network_unreachable));
  w.add_route("client", "default", sim::RouteVerdict::forward, "eth0");
  EXPECT_FALSE(s->send_to(ep("198.18.2.2:5000"), x));

  auto f = send_numbered(w, 1, 10, 0ms);
  w.remove_address("server", "eth0", "198.18.2.2/24");
  w.run_for(1s);
  EXPECT_TRUE(f.sink->datagrams.empty());
}

TEST(SimHosts, MixesOfFamiliesBehaveLikeLinux) {
  sim::SimWorld w(9);
  w.add_host("v4only");
  w.add_host("v6only");
  w.add_host("none");
  w.add_host("router", {.forwarding = true});
  w.connect("v4only", "eth0", "router", "a");
  w.connect("v6only", "eth0", "router", "b");
  w.add_address("v4only", "eth0", "198.18.5.2/24");
  w.add_address("router", "a", "198.18.5.1/24");
  w.add_address("v6only", "eth0", "fd00:6::2/64");
  w.add_address("router", "b", "fd00:6::1/64");
  w.add_route("v4only", "default", sim::RouteVerdict::forward, "eth0");
  w.add_route("v6only", "default6", sim::RouteVerdict::forward, "eth0");

  // The IPv6 family exists on an IPv4-only host: [::] binds, but there is no route.
  auto s = std::move(*w.stack("v4only").open_datagram(net::Family::v6));
  EXPECT_FALSE(s->bind(ep("[::]:0")));
  const std::uint8_t x[] = {1};
  EXPECT_EQ(s->send_to(ep("[fd00:6::2]:9"), x), net::errc(std::errc::network_unreachable));
  auto t = std::move(*w.stack("v6only").open_datagram(net::Family::v4));
  EXPECT_EQ(t->send_to(ep("198.18.5.2:9"), x), net::errc(std::errc::network_unreachable));
  // A host with only loopback reaches itself and nothing else.
  auto u = std::move(*w.stack("none").open_datagram(net::Family::v4));
  EXPECT_FALSE(u->send_to(ep("127.0.0.1:9"), x));
  EXPECT_EQ(u->send_to(ep("198.18.5.2:9"), x), net::errc(std::errc::network_unreachable));
}

TEST(SimHosts, Bindv6onlySysctlChangesTheDefault) {
  sim::SimWorld w(10);
  w.add_host("h", {.bindv6only = true});
  auto v6 = std::move(*w.stack("h").open_datagram(net::Family::v6));
  auto v4 = std::move(*w.stack("h").open_datagram(net::Family::v4));
  ASSERT_FALSE(v6->bind(ep("[::]:4000")));
  EXPECT_FALSE(v4->bind(ep("0.0.0.0:4000"))) << "net.ipv6.bindv6only=1: [::] is IPv6 only";
  auto l6 = w.stack("h").listen(ep("[::]:4001"), {});
  auto l4 = w.stack("h").listen(ep("0.0.0.0:4001"), {});
  EXPECT_TRUE(l6);
  EXPECT_TRUE(l4);
}

TEST(SimWorldDescription, NamesWhatIsWrong) {
  sim::SimWorld w(11);
  w.add_host("a");
  try {
    w.add_address("b", "eth0", "198.18.0.1/24");
    FAIL() << "expected an error";
  } catch (const sim::SimError& e) {
    EXPECT_STREQ(e.what(), "unknown host 'b'");
  }
  EXPECT_THROW(w.add_host("a"), sim::SimError);
  EXPECT_THROW(w.add_address("a", "eth0", "198.18.0.1/33"), sim::SimError);
  EXPECT_THROW(w.add_address("a", "eth0", "0.0.0.0/0"), sim::SimError);
  EXPECT_THROW(w.add_route("a", "198.18.0.0/24", sim::RouteVerdict::forward, "eth9"), sim::SimError);
  EXPECT_THROW(w.connect("a", "x", "a", "y"), sim::SimError);
  EXPECT_THROW(w.partition("a", "nobody"), sim::SimError);
  EXPECT_THROW(w.stack("ghost"), sim::SimError);
  EXPECT_THROW(w.remove_route("a", "198.18.7.0/24"), sim::SimError);
  EXPECT_THROW(w.set_interface_up("a", "eth7", true), sim::SimError);
  w.add_host("b");
  EXPECT_THROW(w.partition("a", "b"), sim::SimError) << "no link between them";
  // Like `ip route add`: a prefix that has a route (an on-link one too) is not replaced.
  w.add_address("a", "eth0", "198.18.0.1/24");
  EXPECT_THROW(w.add_route("a", "198.18.0.0/24", sim::RouteVerdict::blackhole), sim::SimError);
  EXPECT_NO_THROW(w.add_route("a", "198.18.0.9/32", sim::RouteVerdict::blackhole));
  EXPECT_THROW(w.add_route("a", "198.18.0.9/32", sim::RouteVerdict::prohibit), sim::SimError);
}

}  // namespace
