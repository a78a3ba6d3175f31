#include <gtest/gtest.h>

#include "world_fixture.hpp"

using namespace duet;
using namespace duet::test;
using net::Address;
using sim::DnsAnswer;

namespace {

Address a(const char* t) { return *Address::parse(t); }

net::Result<std::vector<net::Endpoint>> resolve(sim::SimWorld& w, const std::string& host, const std::string& name,
                                                std::optional<net::Family> family = std::nullopt,
                                                Duration* took = nullptr) {
  std::optional<net::Result<std::vector<net::Endpoint>>> out;
  const auto start = w.now();
  auto op = w.stack(host).resolve(name, "1194", {family, false, net::SocketType::datagram},
                                  [&](auto r) { out = std::move(r); });
  w.run_until([&] { return out.has_value(); }, 60s);
  if (took) *took = w.now() - start;
  return out ? std::move(*out) : net::Result<std::vector<net::Endpoint>>(net::errc(std::errc::timed_out));
}

std::string list(const net::Result<std::vector<net::Endpoint>>& r) {
  if (!r) return r.error().message();
  std::string s;
  for (const auto& e : *r) s += (s.empty() ? "" : " ") + e.address.to_string();
  return s;
}

TEST(SimDns, DualStackNamesComeBackIpv6FirstLikeGlibc) {
  sim::SimWorld w(1);
  build_three_hosts(w);
  w.set_dns("vpn.test", {DnsAnswer::Kind::records, {a("198.18.2.2"), a("fd00:2::2")}});
  EXPECT_EQ(list(resolve(w, "client", "vpn.test")), "fd00:2::2 198.18.2.2");
  w.set_dns("raw.test", {DnsAnswer::Kind::records, {a("198.18.2.2"), a("fd00:2::2")}, 1ms, true});
  EXPECT_EQ(list(resolve(w, "client", "raw.test")), "198.18.2.2 fd00:2::2");
}

TEST(SimDns, ALocalVerdictForIpv6MovesItBehindIpv4) {
  for (auto verdict : {sim::RouteVerdict::blackhole, sim::RouteVerdict::unreachable, sim::RouteVerdict::prohibit}) {
    sim::SimWorld w(1);
    build_three_hosts(w);
    w.set_dns("vpn.test", {DnsAnswer::Kind::records, {a("fd00:2::2"), a("198.18.2.2")}});
    w.add_route("client", "fd00:2::/64", verdict);
    EXPECT_EQ(list(resolve(w, "client", "vpn.test")), "198.18.2.2 fd00:2::2");
  }
  // A verdict on a router changes nothing: glibc's probe sends no packet.
  sim::SimWorld w(1);
  build_three_hosts(w);
  w.set_dns("vpn.test", {DnsAnswer::Kind::records, {a("198.18.2.2"), a("fd00:2::2")}});
  w.add_route("router", "fd00:2::2/128", sim::RouteVerdict::blackhole);
  EXPECT_EQ(list(resolve(w, "client", "vpn.test")), "fd00:2::2 198.18.2.2");
}

TEST(SimDns, AHostWithoutIpv6SourceSortsIpv6Last) {
  sim::SimWorld w(1);
  build_three_hosts(w);
  w.remove_address("client", "eth0", "fd00:1::2/64");
  w.set_dns("vpn.test", {DnsAnswer::Kind::records, {a("fd00:2::2"), a("198.18.2.2")}});
  EXPECT_EQ(list(resolve(w, "client", "vpn.test")), "198.18.2.2 fd00:2::2");
}

TEST(SimDns, FailuresAndFamilyFilters) {
  sim::SimWorld w(1, {.resolver_timeout = 10s});
  build_three_hosts(w);
  w.set_dns("v4.test", {DnsAnswer::Kind::records, {a("198.18.2.2")}});
  w.set_dns("broken.test", {DnsAnswer::Kind::servfail, {}, 30ms});
  w.set_dns("slow.test", {DnsAnswer::Kind::timeout, {}});
  EXPECT_EQ(resolve(w, "client", "nowhere.test").error(), make_error_code(net::ResolveError::no_such_name));
  Duration took{};
  EXPECT_EQ(resolve(w, "client", "broken.test", std::nullopt, &took).error(),
            make_error_code(net::ResolveError::temporary_failure));
  EXPECT_EQ(took, Duration(30ms));
  EXPECT_EQ(resolve(w, "client", "slow.test", std::nullopt, &took).error(),
            make_error_code(net::ResolveError::timed_out));
  EXPECT_EQ(took, Duration(10s));
  EXPECT_EQ(resolve(w, "client", "v4.test", net::Family::v6).error(), make_error_code(net::ResolveError::no_data));
  EXPECT_EQ(list(resolve(w, "client", "v4.test", net::Family::v4)), "198.18.2.2");
}

TEST(SimDns, EachHostCanSeeItsOwnAnswer) {
  sim::SimWorld w(1);
  build_three_hosts(w);
  w.set_dns("vpn.test", {DnsAnswer::Kind::records, {a("198.18.2.2")}});
  w.set_dns_for("server", "vpn.test", {DnsAnswer::Kind::nxdomain, {}});
  EXPECT_EQ(list(resolve(w, "client", "vpn.test")), "198.18.2.2");
  EXPECT_FALSE(resolve(w, "server", "vpn.test"));
  EXPECT_THROW(w.set_dns_for("ghost", "x", {}), sim::SimError);
}

}  // namespace
