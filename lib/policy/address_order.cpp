#include "duet/policy/address_order.hpp"

#include <algorithm>

namespace duet::policy {

std::vector<net::Endpoint> interleave_families(const std::vector<net::Endpoint>& sorted) {
  if (sorted.empty()) return {};
  const net::Family first = sorted.front().family();
  std::vector<net::Endpoint> a, b;
  for (const auto& e : sorted) (e.family() == first ? a : b).push_back(e);
  std::vector<net::Endpoint> out;
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size()) out.push_back(a[i]);
    if (i < b.size()) out.push_back(b[i]);
  }
  return out;
}

}  // namespace duet::policy
