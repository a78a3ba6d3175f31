#include "duet/net/destination_order.hpp"

#include <algorithm>

namespace duet::net {

int destination_precedence(const Address& a) {
  if (a.is_v4()) return 10;
  if (a == Address::loopback(Family::v6)) return 50;
  if (a.bytes()[0] == 0x20 && a.bytes()[1] == 0x02) return 30;  // 2002::/16
  bool compat = true;                                           // ::/96
  for (int i = 0; i < 12; ++i) compat = compat && a.bytes()[i] == 0;
  if (compat) return 20;
  return 40;
}

std::vector<Endpoint> glibc_destination_order(std::vector<Destination> destinations) {
  auto match = [](const Destination& d) {
    return d.usable && d.source && d.endpoint.address.is_v6() ? common_prefix_length(*d.source, d.endpoint.address) : 0;
  };
  std::stable_sort(destinations.begin(), destinations.end(), [&](const Destination& x, const Destination& y) {
    if (x.usable != y.usable) return x.usable;
    const int px = destination_precedence(x.endpoint.address), py = destination_precedence(y.endpoint.address);
    if (px != py) return px > py;
    if (x.endpoint.address.is_v6() && y.endpoint.address.is_v6() && match(x) != match(y)) return match(x) > match(y);
    return false;
  });
  std::vector<Endpoint> out;
  out.reserve(destinations.size());
  for (const auto& d : destinations) out.push_back(d.endpoint);
  return out;
}

}  // namespace duet::net
