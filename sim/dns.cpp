// The simulated resolver: a scenario's answers per name (and per family), with their
// delays, NXDOMAIN, SERVFAIL and silence, sorted the way glibc's getaddrinfo sorts them
// (net/destination_order.hpp) unless the scenario asks for the server's raw order.
#include <algorithm>

#include "duet/net/destination_order.hpp"
#include "duet/net/error.hpp"
#include "world_impl.hpp"

namespace duet::sim {

const DnsAnswer* SimWorld::Impl::dns_answer(const Host& h, const std::string& name) const {
  if (auto it = dns_views.find({h.name, name}); it != dns_views.end()) return &it->second;
  if (auto it = dns.find(name); it != dns.end()) return &it->second;
  if (name == "localhost") {
    static const DnsAnswer localhost{DnsAnswer::Kind::records,
                                     {Address::loopback(Family::v6), Address::loopback(Family::v4)},
                                     std::chrono::milliseconds(0),
                                     false,
                                     std::nullopt,
                                     std::nullopt};
    return &localhost;
  }
  return nullptr;
}

std::vector<Address> SimWorld::Impl::glibc_order(Host& h, std::vector<Address> addrs) {
  std::vector<net::Destination> d;
  for (const auto& a : addrs) {
    // glibc "connects" a UDP probe socket; a local verdict or no source fails it.
    const auto src = select_source(h, a);
    d.push_back({{a, 0}, src.has_value() && !local_route_error(h, a), src});
  }
  std::vector<Address> out;
  for (const auto& e : net::glibc_destination_order(std::move(d))) out.push_back(e.address);
  return out;
}

namespace {

/// One family's part of an answer: what the server does for that question, and when.
struct FamilyAnswer {
  DnsAnswer::Kind kind = DnsAnswer::Kind::records;
  net::Duration delay{};
  std::vector<Address> records;
};

FamilyAnswer for_family(const DnsAnswer& a, Family f) {
  const auto& own = f == Family::v6 ? a.aaaa : a.a;
  FamilyAnswer out{own ? own->kind : a.kind, own ? own->delay : a.delay, {}};
  for (const auto& r : a.records) {
    if (r.family() == f) out.records.push_back(r);
  }
  return out;
}

std::error_code error_of(DnsAnswer::Kind k) {
  switch (k) {
    case DnsAnswer::Kind::nxdomain:
      return make_error_code(net::ResolveError::no_such_name);
    case DnsAnswer::Kind::servfail:
      return make_error_code(net::ResolveError::temporary_failure);
    case DnsAnswer::Kind::timeout:
      return make_error_code(net::ResolveError::timed_out);
    case DnsAnswer::Kind::records:
      break;
  }
  return make_error_code(net::ResolveError::no_data);
}

}  // namespace

SimWorld::Impl::Resolution SimWorld::Impl::resolve_name(Host& h, const std::string& name, std::optional<Family> family,
                                                        std::uint16_t port) {
  const DnsAnswer* answer = dns_answer(h, name);
  if (answer == nullptr) return {std::chrono::milliseconds(1), make_error_code(net::ResolveError::no_such_name)};
  // getaddrinfo asks one question per family it wants and waits for every answer (a
  // question never answered costs the resolver's whole timeout), then merges them.
  net::Duration delay{0};
  std::vector<Address> found;
  std::error_code failure;
  for (Family f : {Family::v6, Family::v4}) {
    if (family && *family != f) continue;
    const FamilyAnswer fa = for_family(*answer, f);
    delay = std::max(delay, fa.kind == DnsAnswer::Kind::timeout ? options.resolver_timeout : fa.delay);
    if (fa.kind == DnsAnswer::Kind::records) {
      found.insert(found.end(), fa.records.begin(), fa.records.end());
    } else if (!failure || fa.kind == DnsAnswer::Kind::nxdomain) {
      failure = error_of(fa.kind);
    }
  }
  if (found.empty()) return {delay, failure ? failure : make_error_code(net::ResolveError::no_data)};
  // The server's order within a family; across families, glibc's (or the raw one).
  std::stable_sort(found.begin(), found.end(), [&](const Address& x, const Address& y) {
    const auto at = [&](const Address& a) {
      return std::find(answer->records.begin(), answer->records.end(), a) - answer->records.begin();
    };
    return at(x) < at(y);
  });
  if (!answer->raw_order) found = glibc_order(h, std::move(found));
  std::vector<Endpoint> eps;
  for (const auto& a : found) eps.push_back({a, port});
  return {delay, std::move(eps)};
}

std::vector<Endpoint> SimWorld::Impl::sort_destinations(Host& h, const std::string& name, std::vector<Endpoint> eps) {
  const DnsAnswer* answer = dns_answer(h, name);
  if (answer != nullptr && answer->raw_order) {
    // The scenario's resolver keeps the server's order for this name.
    std::stable_sort(eps.begin(), eps.end(), [&](const Endpoint& x, const Endpoint& y) {
      const auto at = [&](const Endpoint& e) {
        return std::find(answer->records.begin(), answer->records.end(), e.address) - answer->records.begin();
      };
      return at(x) < at(y);
    });
    return eps;
  }
  std::vector<net::Destination> d;
  for (const auto& e : eps) {
    const auto src = select_source(h, e.address);
    d.push_back({e, src.has_value() && !local_route_error(h, e.address), src});
  }
  return net::glibc_destination_order(std::move(d));
}

}  // namespace duet::sim
