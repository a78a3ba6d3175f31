#include "duet/policy/remote_order.hpp"

#include <algorithm>

namespace duet::policy {

using namespace std::chrono_literals;

net::Duration clamp_attempt_delay(net::Duration requested) {
  if (requested.count() == 0) return requested;
  return std::clamp<net::Duration>(requested, 100ms, 2000ms);
}

std::vector<net::Endpoint> interleave_families(const std::vector<net::Endpoint>& resolver_order) {
  if (resolver_order.empty()) return {};
  const net::Family first = resolver_order.front().family();
  std::vector<net::Endpoint> a, b;
  for (const auto& e : resolver_order) (e.family() == first ? a : b).push_back(e);
  std::vector<net::Endpoint> out;
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size()) out.push_back(a[i]);
    if (i < b.size()) out.push_back(b[i]);
  }
  return out;
}

RemoteOrder order_remotes(const std::vector<net::Endpoint>& resolver_order,
                          net::Duration happy_eyeballs_delay) {
  RemoteOrder r;
  const auto delay = clamp_attempt_delay(happy_eyeballs_delay);
  r.racing = delay.count() != 0;
  r.attempt_delay = delay;
  r.order = r.racing ? interleave_families(resolver_order) : resolver_order;
  return r;
}

}  // namespace duet::policy
