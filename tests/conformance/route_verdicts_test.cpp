// Every row of ../shared/KERNEL-FACTS.md, on the kernel (network namespaces this test
// creates and deletes) and in the simulator, from one topology description:
//
//   client (198.18.8.2, fd00:8::2) ── router (198.18.8.1, fd00:8::1)
//   router: blackhole    198.18.9.0/24  fd00:9::/64
//           unreachable  198.18.10.0/24 fd00:10::/64
//           prohibit     198.18.11.0/24 fd00:11::/64
//           own address  198.18.12.1    fd00:12::1   (port 9 closed)
//   client: blackhole / unreachable / prohibit routes for .13 / .14 / .15 (and fd00:13.. :15)
#include <gtest/gtest.h>

#include "../support/driver.hpp"
#include "../support/topology.hpp"

using namespace duet;
using namespace duet::test;
using sim::RouteVerdict;

namespace {

Topology two_hosts(int router_ratelimit_v4_ms, int router_ratelimit_v6_ms) {
  Topology t;
  t.hosts = {{"client", false, 1000, 100}, {"router", true, router_ratelimit_v4_ms, router_ratelimit_v6_ms}};
  t.links = {{"client", "eth0", "router", "eth0"}};
  t.addresses = {{"client", "eth0", "198.18.8.2/24"}, {"client", "eth0", "fd00:8::2/64"},
                 {"router", "eth0", "198.18.8.1/24"}, {"router", "eth0", "fd00:8::1/64"},
                 {"router", "lo", "198.18.12.1/24"},  {"router", "lo", "fd00:12::1/64"}};
  t.routes = {
      {"client", "default", RouteVerdict::forward, "eth0", "198.18.8.1"},
      {"client", "default6", RouteVerdict::forward, "eth0", "fd00:8::1"},
      {"router", "198.18.9.0/24", RouteVerdict::blackhole, "", ""},
      {"router", "fd00:9::/64", RouteVerdict::blackhole, "", ""},
      {"router", "198.18.10.0/24", RouteVerdict::unreachable, "", ""},
      {"router", "fd00:10::/64", RouteVerdict::unreachable, "", ""},
      {"router", "198.18.11.0/24", RouteVerdict::prohibit, "", ""},
      {"router", "fd00:11::/64", RouteVerdict::prohibit, "", ""},
      {"client", "198.18.13.0/24", RouteVerdict::blackhole, "", ""},
      {"client", "fd00:13::/64", RouteVerdict::blackhole, "", ""},
      {"client", "198.18.14.0/24", RouteVerdict::unreachable, "", ""},
      {"client", "fd00:14::/64", RouteVerdict::unreachable, "", ""},
      {"client", "198.18.15.0/24", RouteVerdict::prohibit, "", ""},
      {"client", "fd00:15::/64", RouteVerdict::prohibit, "", ""},
  };
  return t;
}

/// The client's stack on one side of the comparison, built from the topology.
class World {
public:
  World(const std::string& kind, const Topology& t) {
    if (kind == "sim") {
      sim_ = std::make_unique<sim::SimWorld>(7);
      t.build(*sim_);
      driver_ = std::make_unique<SimDriver>(*sim_, "client");
    } else {
      netns_ = std::make_unique<Netns>(t);
      netns_->enter("client");
      driver_ = std::make_unique<PosixDriver>();
      driver_->run_for(200ms);  // let the veth carrier come up
    }
  }
  ~World() {
    driver_.reset();
    if (netns_) netns_->leave();
  }
  Driver& driver() { return *driver_; }

  // Faults, said once for both worlds.
  void set_interface_up(const std::string& host, const std::string& interface, bool up) {
    if (sim_) {
      sim_->set_interface_up(host, interface, up);
    } else {
      netns_->exec(host, "ip link set dev " + interface + (up ? " up" : " down"));
    }
  }
  void remove_address(const std::string& host, const std::string& interface, const std::string& prefix) {
    if (sim_) {
      sim_->remove_address(host, interface, prefix);
    } else {
      netns_->exec(host, "ip addr del " + prefix + " dev " + interface);
    }
  }

private:
  std::unique_ptr<sim::SimWorld> sim_;
  std::unique_ptr<Netns> netns_;
  std::unique_ptr<Driver> driver_;
};

/// "silence", "ECONNREFUSED at once", "ENETUNREACH after ~1 s"...
std::string describe(const Outcome& o, Duration patience) {
  if (!o.completed || (o.error == std::errc::timed_out && o.elapsed >= patience - 100ms)) {
    return "silence";
  }
  const std::string name = o.errno_name();
  if (o.elapsed < 300ms) return name + " at once";
  if (o.elapsed >= 800ms && o.elapsed < 1600ms) return name + " after ~1 s";
  return name + " after " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(o.elapsed).count()) +
         " ms";
}

struct Row {
  const char* address;
  const char* tcp;
  const char* udp;
};

// KERNEL-FACTS.md, "A verdict on a router" and "A verdict on the client's own routing table".
const Row kRows[] = {
    {"198.18.9.1", "silence", "silence"},
    {"198.18.10.1", "EHOSTUNREACH at once", "silence"},
    {"198.18.11.1", "EHOSTUNREACH at once", "EHOSTUNREACH at once"},
    {"198.18.12.1", "ECONNREFUSED at once", "ECONNREFUSED at once"},
    {"fd00:9::1", "silence", "silence"},
    {"fd00:10::1", "ENETUNREACH after ~1 s", "silence"},
    {"fd00:11::1", "EACCES after ~1 s", "EACCES at once"},
    {"fd00:12::1", "ECONNREFUSED at once", "ECONNREFUSED at once"},
    {"198.18.13.1", "EINVAL at once", "EINVAL at once"},
    {"fd00:13::1", "EINVAL at once", "EINVAL at once"},
    {"198.18.14.1", "EHOSTUNREACH at once", "EHOSTUNREACH at once"},
    {"fd00:14::1", "EHOSTUNREACH at once", "EHOSTUNREACH at once"},
    {"198.18.15.1", "EACCES at once", "EACCES at once"},
    {"fd00:15::1", "EACCES at once", "EACCES at once"},
};

class RouteVerdicts : public ::testing::TestWithParam<std::tuple<std::string, int>> {
protected:
  void SetUp() override {
    std::string why;
    if (std::get<0>(GetParam()) == "posix" && !Netns::available(why)) FAIL() << why;
  }
};

TEST_P(RouteVerdicts, MatchKernelFacts) {
  const auto& [kind, index] = GetParam();
  const Row& row = kRows[index];
  const net::Endpoint target{*net::Address::parse(row.address), 9};
  // Rate limits off on the router: this case is about the verdicts themselves.
  World world(kind, two_hosts(0, 0));
  const Duration tcp_patience = 2500ms;
  EXPECT_EQ(describe(tcp_connect(world.driver(), target, tcp_patience), tcp_patience), row.tcp)
      << "tcp " << row.address;
  const Duration udp_patience = 1500ms;
  auto p = udp_probe(world.driver(), target, udp_patience);
  // A local verdict fails connect() itself; a remote one shows on recv, and the
  // error is reported once: the next send works.
  Outcome udp = p.connect_error ? Outcome{p.connect_error, {}, true} : p.receive;
  EXPECT_EQ(describe(udp, udp_patience), row.udp) << "udp " << row.address;
  if (!p.connect_error) {
    EXPECT_FALSE(p.send_error) << "the first send succeeds: errors come back later";
    EXPECT_FALSE(p.second_send_error) << "a reported error is cleared";
  }
}

INSTANTIATE_TEST_SUITE_P(Rows, RouteVerdicts,
                         ::testing::Combine(::testing::Values("sim", "posix"),
                                            ::testing::Range(0, static_cast<int>(std::size(kRows)))),
                         [](const auto& info) {
                           std::string name = kRows[std::get<1>(info.param)].address;
                           for (char& c : name) {
                             if (c == '.' || c == ':') c = '_';
                           }
                           return std::get<0>(info.param) + "_" + name;
                         });

class IcmpRateLimit : public ::testing::TestWithParam<std::string> {};

// KERNEL-FACTS.md: "With several failures in a row, later errors are dropped and the
// client sees a timeout instead." Both stacks must show it with default limits.
TEST_P(IcmpRateLimit, TurnsLaterErrorsIntoSilence) {
  std::string why;
  if (GetParam() == "posix" && !Netns::available(why)) FAIL() << why;
  World world(GetParam(), two_hosts(1000, 100));
  const net::Endpoint prohibited{*net::Address::parse("198.18.11.1"), 9};
  std::vector<std::string> seen;
  for (int i = 0; i < 8; ++i) {
    auto p = udp_probe(world.driver(), prohibited, 300ms);
    seen.push_back(describe(p.receive, 300ms));
  }
  EXPECT_EQ(seen.front(), "EHOSTUNREACH at once");
  EXPECT_EQ(seen.back(), "silence");
  const auto reported = std::count(seen.begin(), seen.end(), "EHOSTUNREACH at once");
  EXPECT_GE(reported, 1);
  EXPECT_LT(reported, 8);
  std::string all;
  for (const auto& s : seen) all += s + "; ";
  RecordProperty("outcomes", all);
  std::printf("%s: %s\n", GetParam().c_str(), all.c_str());
}

class HostBehaviour : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == "posix" && !Netns::available(why)) FAIL() << why;
  }
};

TEST_P(HostBehaviour, SynRetriesSysctlSetsTheGiveUp) {
  Topology t = two_hosts(0, 0);
  t.hosts[0].tcp_syn_retries = 1;
  World world(GetParam(), t);
  auto o = tcp_connect(world.driver(), *net::Endpoint::parse("198.18.9.1:9"), 10s);
  EXPECT_EQ(o.errno_name(), "ETIMEDOUT");
  EXPECT_GE(o.elapsed, Duration(2900ms));  // SYN at 0 s and 1 s, give up at 3 s
  EXPECT_LT(o.elapsed, Duration(3500ms));
}

TEST_P(HostBehaviour, InterfaceDownTakesItsRoutesAway) {
  World world(GetParam(), two_hosts(0, 0));
  world.set_interface_up("client", "eth0", false);
  for (const char* to : {"198.18.12.1:9", "[fd00:12::1]:9"}) {
    auto target = *net::Endpoint::parse(to);
    auto s = std::move(*world.driver().stack().open_datagram(target.family()));
    const std::uint8_t x[] = {1};
    EXPECT_EQ(s->send_to(target, x), net::errc(std::errc::network_unreachable)) << to;
    EXPECT_EQ(tcp_connect(world.driver(), target, 1s).errno_name(), "ENETUNREACH") << to;
  }
  // Up again: the on-link IPv4 route is back, the default routes and the global IPv6
  // address are not (keep_addr_on_down=0).
  world.set_interface_up("client", "eth0", true);
  world.driver().run_for(300ms);
  EXPECT_EQ(tcp_connect(world.driver(), *net::Endpoint::parse("198.18.12.1:9"), 1s).errno_name(), "ENETUNREACH");
  EXPECT_EQ(describe(tcp_connect(world.driver(), *net::Endpoint::parse("198.18.8.1:9"), 2s), 2s),
            "ECONNREFUSED at once");
  auto v6 = std::move(*world.driver().stack().open_datagram(net::Family::v6));
  EXPECT_EQ(v6->bind(*net::Endpoint::parse("[fd00:8::2]:0")), net::errc(std::errc::address_not_available));
}

TEST_P(HostBehaviour, RemovedAddressCannotBeBound) {
  World world(GetParam(), two_hosts(0, 0));
  auto& stack = world.driver().stack();
  auto before = std::move(*stack.open_datagram(net::Family::v4));
  EXPECT_FALSE(before->bind(*net::Endpoint::parse("198.18.8.2:0")));
  world.remove_address("client", "eth0", "198.18.8.2/24");
  auto after = std::move(*stack.open_datagram(net::Family::v4));
  EXPECT_EQ(after->bind(*net::Endpoint::parse("198.18.8.2:0")), net::errc(std::errc::address_not_available));
}

TEST_P(HostBehaviour, DatagramsPastTheIpMaximumAreEmsgsize) {
  World world(GetParam(), two_hosts(0, 0));
  auto& stack = world.driver().stack();
  auto v4 = std::move(*stack.open_datagram(net::Family::v4));
  std::vector<std::uint8_t> fits(65507), too_big(65508);
  EXPECT_FALSE(v4->send_to(*net::Endpoint::parse("198.18.12.1:9"), fits));
  EXPECT_EQ(v4->send_to(*net::Endpoint::parse("198.18.12.1:9"), too_big), net::errc(std::errc::message_size));
  auto v6 = std::move(*stack.open_datagram(net::Family::v6));
  std::vector<std::uint8_t> fits6(65527), too_big6(65528);
  EXPECT_FALSE(v6->send_to(*net::Endpoint::parse("[fd00:12::1]:9"), fits6));
  EXPECT_EQ(v6->send_to(*net::Endpoint::parse("[fd00:12::1]:9"), too_big6), net::errc(std::errc::message_size));
}

TEST_P(HostBehaviour, DisabledIpv6StillBindsTheWildcard) {
  Topology t;
  t.hosts = {{"client", false, 1000, 100, 6, true}, {"router", true, 0, 0}};
  t.links = {{"client", "eth0", "router", "eth0"}};
  t.addresses = {{"client", "eth0", "198.18.8.2/24"}, {"router", "eth0", "198.18.8.1/24"}};
  World world(GetParam(), t);
  auto& stack = world.driver().stack();
  auto addrs = stack.interface_addresses();
  ASSERT_TRUE(addrs);
  for (const auto& a : *addrs) EXPECT_TRUE(a.prefix.address.is_v4()) << a.prefix.to_string();
  // KERNEL-FACTS.md: the family exists, only the addresses are gone.
  auto v6 = std::move(*stack.open_datagram(net::Family::v6));
  EXPECT_FALSE(v6->bind(*net::Endpoint::parse("[::]:0")));
  auto l = stack.listen(*net::Endpoint::parse("[::]:0"), {true, 4});
  EXPECT_TRUE(l) << l.error().message();
  EXPECT_EQ(v6->bind(*net::Endpoint::parse("[::1]:0")), net::errc(std::errc::invalid_argument)) << "already bound";
  auto v6b = std::move(*stack.open_datagram(net::Family::v6));
  EXPECT_EQ(v6b->bind(*net::Endpoint::parse("[::1]:0")), net::errc(std::errc::address_not_available));
}

INSTANTIATE_TEST_SUITE_P(Stacks, HostBehaviour, ::testing::Values("sim", "posix"),
                         [](const auto& info) { return info.param; });

INSTANTIATE_TEST_SUITE_P(Stacks, IcmpRateLimit, ::testing::Values("sim", "posix"),
                         [](const auto& info) { return info.param; });

}  // namespace
