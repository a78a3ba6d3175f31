#include <gtest/gtest.h>

#include "duet/config/loader.hpp"
#include "duet/policy/address_order.hpp"
#include "duet/policy/bind_plan.hpp"
#include "duet/policy/compatibility.hpp"
#include "duet/policy/review.hpp"

using namespace duet;
using namespace std::chrono_literals;
using config::Severity;

namespace {

net::Address a(const char* t) { return *net::Address::parse(t); }
net::Endpoint ep(const char* t) { return *net::Endpoint::parse(t); }
std::vector<net::Endpoint> eps(std::initializer_list<const char*> ts) {
  std::vector<net::Endpoint> out;
  for (auto t : ts) out.push_back(ep(t));
  return out;
}
std::string text(const std::vector<net::Endpoint>& es) {
  std::string s;
  for (const auto& e : es) s += (s.empty() ? "" : " ") + e.to_string();
  return s;
}

const net::Family V4 = net::Family::v4, V6 = net::Family::v6;

TEST(Compatibility, Rule6Table) {
  struct Case {
    std::vector<net::Family> bound;
    std::vector<net::Address> remotes;
    policy::Compatibility::Verdict verdict;
    std::vector<net::Address> unusable;
  } cases[] = {
      {{V4}, {a("198.18.0.1"), a("fd00::1")}, policy::Compatibility::warning, {a("fd00::1")}},
      {{V4}, {a("fd00::1")}, policy::Compatibility::error, {a("fd00::1")}},
      {{V4}, {a("198.18.0.1")}, policy::Compatibility::fine, {}},
      {{V6}, {a("198.18.0.1"), a("fd00::1")}, policy::Compatibility::warning, {a("198.18.0.1")}},
      {{V6}, {a("198.18.0.1")}, policy::Compatibility::error, {a("198.18.0.1")}},
      {{V4, V6}, {a("fd00::1")}, policy::Compatibility::fine, {}},
      {{}, {a("fd00::1")}, policy::Compatibility::fine, {}},
      {{V4}, {}, policy::Compatibility::fine, {}},
  };
  for (const auto& c : cases) {
    auto r = policy::check_bind_remote(c.bound, c.remotes);
    EXPECT_EQ(r.verdict, c.verdict);
    EXPECT_EQ(r.unusable, c.unusable);
    EXPECT_EQ(r.message.empty(), c.verdict == policy::Compatibility::fine);
  }
}

TEST(RemoteOrder, InterleavesFamiliesStartingWithTheFirst) {
  struct Case {
    std::vector<net::Endpoint> in;
    const char* out;
  } cases[] = {
      {eps({"[fd00::1]:1", "[fd00::2]:1", "198.18.0.1:1", "198.18.0.2:1"}),
       "[fd00::1]:1 198.18.0.1:1 [fd00::2]:1 198.18.0.2:1"},
      {eps({"198.18.0.1:1", "[fd00::1]:1", "[fd00::2]:1", "[fd00::3]:1"}),
       "198.18.0.1:1 [fd00::1]:1 [fd00::2]:1 [fd00::3]:1"},
      {eps({"[fd00::1]:1"}), "[fd00::1]:1"},
      {{}, ""},
  };
  for (const auto& c : cases) EXPECT_EQ(text(policy::interleave_families(c.in)), c.out);
}

TEST(AttemptDelay, RacingOffAtZeroAndClampedToRfc8305Bounds) {
  config::Connection c;
  EXPECT_EQ(policy::attempt_delay(c), net::Duration(250ms));
  for (auto [asked, used] : {std::pair{10ms, 100ms}, {5000ms, 2000ms}, {0ms, 0ms}, {700ms, 700ms}}) {
    c.happy_eyeballs_delay = asked;
    EXPECT_EQ(policy::attempt_delay(c), net::Duration(used)) << asked.count();
  }
}

TEST(Review, PeersWhoseAllowedIpsOverlapAreWarnedAboutOnTheLineThatWins) {
  const std::string k1 = "mJ2S5mFYAkE4Rxsb+a9vKO6ObJ6BoQiKJQDPxmIW8mU=",
                    k2 = "G7RXw4dyV+2bGRMm9XBA0zbSVeBkvQwBbKkNHlxGYWQ=",
                    k3 = "kJIJbk4Hh7VSAxSleYJD6p7ze7gCj6juU98DvRlhDHs=";
  const auto r =
      policy::reviewed(config::load_text("mode server\npeer " + k1 + " 198.19.0.0/24,fd00:5::/64\npeer " + k2 +
                                             " 198.19.0.7/32,fd00:5::/64\npeer " + k3 + " 198.19.1.0/24,fd00:6::/64\n",
                                         "t.conf"));
  ASSERT_TRUE(r.ok());
  std::vector<std::string> warnings;
  for (const auto& d : r.diagnostics.all()) warnings.push_back(d.where.to_string() + " " + d.message);
  EXPECT_EQ(warnings,
            (std::vector<std::string>{
                "t.conf:3:1 allowed IP 198.19.0.7/32 lies inside 198.19.0.0/24 of the peer at t.conf:2:1: the "
                "most specific wins, so its traffic goes to this peer",
                "t.conf:3:1 allowed IP fd00:5::/64 is also given to the peer at t.conf:2:1: it belongs to "
                "this later peer only"}));
  // Many overlaps: the first 20, then how many more.
  std::string text = "mode server\npeer " + k1 + " 198.19.0.0/16\npeer " + k2 + " ";
  for (int i = 0; i < 30; ++i) text += (i ? "," : "") + std::string("198.19.7.") + std::to_string(i) + "/32";
  const auto many = policy::reviewed(config::load_text(text + "\n", "t.conf"));
  ASSERT_EQ(many.diagnostics.all().size(), 21u);
  EXPECT_EQ(many.diagnostics.all().back().message, "10 more allowed IPs overlap another peer's");
}

std::vector<net::InterfaceAddress> host(std::initializer_list<const char*> prefixes) {
  std::vector<net::InterfaceAddress> out;
  for (auto p : prefixes) out.push_back({"eth0", *net::Prefix::parse(p), true});
  return out;
}

TEST(ServerBindPlan, BindsEveryPassiveResultWithV6Only) {
  config::Listen l;
  l.proto = config::Proto::udp;
  auto plan = policy::server_bind_plan(l, eps({"0.0.0.0:1194", "[::]:1194"}), host({"198.18.0.1/24", "fd00::1/64"}));
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan.sockets.size(), 2u);
  EXPECT_EQ(plan.sockets[0].local.to_string(), "0.0.0.0:1194");
  EXPECT_FALSE(plan.sockets[0].v6only);
  EXPECT_EQ(plan.sockets[1].local.to_string(), "[::]:1194");
  EXPECT_TRUE(plan.sockets[1].v6only);
  EXPECT_TRUE(plan.notes.empty());
}

TEST(ServerBindPlan, SkipsAFamilyTheHostLacksWithAnInfoNote) {
  config::Listen l;
  l.proto = config::Proto::tcp;
  auto plan = policy::server_bind_plan(l, eps({"0.0.0.0:443", "[::]:443"}), host({"198.18.0.1/24"}));
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan.sockets.size(), 1u);
  EXPECT_EQ(plan.sockets[0].transport, config::Transport::tcp);
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_EQ(plan.notes[0].severity, Severity::info);
  EXPECT_EQ(plan.notes[0].text, "IPv6 skipped for [::]:443: this host has no IPv6 address");
}

TEST(ServerBindPlan, LoopbackCountsOnlyOnAHostWithNothingElse) {
  EXPECT_EQ(policy::host_families(host({"127.0.0.1/8", "::1/128", "198.18.0.1/24"})),
            std::vector<net::Family>{V4});  // an IPv4-only host with the usual loopback
  EXPECT_EQ(policy::host_families(host({"127.0.0.1/8", "::1/128"})), (std::vector<net::Family>{V4, V6}));
  EXPECT_EQ(policy::host_families(host({"127.0.0.1/8", "fd00::1/64"})), std::vector<net::Family>{V6});
}

TEST(ServerBindPlan, FamilyChoiceAndNothingUsable) {
  config::Listen l;
  l.family = config::FamilyChoice::v6;
  auto v6 = policy::server_bind_plan(l, eps({"0.0.0.0:1194", "[::]:1194"}), host({"198.18.0.1/24", "fd00::1/64"}));
  ASSERT_EQ(v6.sockets.size(), 1u);
  EXPECT_TRUE(v6.sockets[0].local.address.is_v6());
  auto none = policy::server_bind_plan(l, eps({"0.0.0.0:1194", "[::]:1194"}), host({"198.18.0.1/24"}));
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(none.notes.back().severity, Severity::error);
  EXPECT_EQ(none.notes.back().text, "no usable socket for udp port 1194");
  auto dup = policy::server_bind_plan(config::Listen{}, eps({"0.0.0.0:1194", "0.0.0.0:1194"}), host({"198.18.0.1/24"}));
  EXPECT_EQ(dup.sockets.size(), 1u);
}

config::Connection connection(const std::string& text, config::Mode* mode = nullptr) {
  auto r = config::load_text(text, "t.conf");
  EXPECT_TRUE(r.ok()) << text;
  if (mode) *mode = r.config.mode;
  return r.config.connections.at(0);
}

TEST(ClientBind, ModeClientIsNobindUnlessBindThenOnlyTheConnectingFamily) {
  config::Mode mode{};
  auto c = connection("mode client\nremote vpn.test\n", &mode);
  EXPECT_FALSE(policy::client_bind(c, mode, V6, {}));
  EXPECT_TRUE(policy::bound_families(c, mode, {}).empty());

  auto b = connection("mode client\nremote vpn.test\nbind\n", &mode);
  auto s6 = policy::client_bind(b, mode, V6, {});
  ASSERT_TRUE(s6);
  EXPECT_EQ(s6->local.to_string(), "[::]:0");  // ephemeral, only the family being tried
  EXPECT_TRUE(s6->v6only);
  auto s4 = policy::client_bind(b, mode, V4, {});
  EXPECT_EQ(s4->local.to_string(), "0.0.0.0:0");

  auto lp = connection("mode client\nremote vpn.test\nbind\nlport 5000\nlocal 198.18.0.7\n", &mode);
  auto s = policy::client_bind(lp, mode, V4, eps({"198.18.0.7:0"}));
  EXPECT_EQ(s->local.to_string(), "198.18.0.7:5000");
  EXPECT_EQ(policy::bound_families(lp, mode, eps({"198.18.0.7:0"})), std::vector<net::Family>{V4});
}

TEST(P2p, RolesOfTheThreeForms) {
  struct Case {
    const char* text;
    policy::P2pRole role;
  } cases[] = {
      {"proto udp-server\n", policy::P2pRole::listener},
      {"proto udp-client\nremote vpn.test\n", policy::P2pRole::initiator},
      {"remote vpn.test\n", policy::P2pRole::symmetric},
      {"remote vpn.test\nipv4\n", policy::P2pRole::single_family},
      {"local 198.18.0.1\nremote 198.18.0.2\n", policy::P2pRole::single_family},
      {"local 198.18.0.1\nremote vpn.test\n", policy::P2pRole::symmetric},
  };
  for (const auto& c : cases) EXPECT_EQ(policy::p2p_role(connection(c.text)), c.role) << c.text;
  config::Mode mode{};
  auto p = connection("remote vpn.test\n", &mode);
  auto s = policy::client_bind(p, mode, V6, {});
  ASSERT_TRUE(s) << "p2p binds";
  EXPECT_EQ(s->local.port, 1194);
}

}  // namespace
