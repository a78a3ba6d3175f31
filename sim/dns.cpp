// Name resolution answers, sorted the way glibc's getaddrinfo sorts them (RFC 3484 with
// glibc's built-in policy table): usable destinations first, then by precedence
// (IPv6 ::/0 above IPv4), then longest matching prefix for IPv6, else the server's order.
#include <algorithm>

#include "world_impl.hpp"

namespace duet::sim {

namespace {

/// glibc's default precedence (RFC 3484 section 2.1), IPv4 seen as ::ffff:0:0/96.
int precedence(const Address& a) {
  if (a.is_v4()) return 10;
  if (a == Address::loopback(Family::v6)) return 50;
  if (a.bytes()[0] == 0x20 && a.bytes()[1] == 0x02) return 30;  // 2002::/16
  bool compat = true;                                           // ::/96
  for (int i = 0; i < 12; ++i) compat = compat && a.bytes()[i] == 0;
  if (compat) return 20;
  return 40;
}

}  // namespace

const DnsAnswer* SimWorld::Impl::dns_answer(const Host& h, const std::string& name) const {
  if (auto it = dns_views.find({h.name, name}); it != dns_views.end()) return &it->second;
  if (auto it = dns.find(name); it != dns.end()) return &it->second;
  if (name == "localhost") {
    static const DnsAnswer localhost{DnsAnswer::Kind::records,
                                     {Address::loopback(Family::v6), Address::loopback(Family::v4)},
                                     std::chrono::milliseconds(0),
                                     false};
    return &localhost;
  }
  return nullptr;
}

std::vector<Address> SimWorld::Impl::glibc_order(Host& h, std::vector<Address> addrs) {
  struct Candidate {
    Address address;
    bool usable;
    int precedence;
    int match;  // common prefix with the source (IPv6 only)
  };
  std::vector<Candidate> c;
  for (const auto& a : addrs) {
    // Rule 1: glibc "connects" a UDP probe socket; a local verdict or no source fails it.
    const auto src = select_source(h, a);
    const bool usable = src.has_value() && !local_route_error(h, a);
    const int match = (usable && a.is_v6()) ? common_prefix_length(*src, a) : 0;
    c.push_back({a, usable, precedence(a), match});
  }
  std::stable_sort(c.begin(), c.end(), [](const Candidate& x, const Candidate& y) {
    if (x.usable != y.usable) return x.usable;
    if (x.precedence != y.precedence) return x.precedence > y.precedence;
    if (x.address.is_v6() && y.address.is_v6() && x.match != y.match) return x.match > y.match;
    return false;
  });
  std::vector<Address> out;
  for (const auto& x : c) out.push_back(x.address);
  return out;
}

}  // namespace duet::sim
