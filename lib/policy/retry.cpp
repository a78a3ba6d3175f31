#include "duet/policy/retry.hpp"

#include <algorithm>

namespace duet::policy {

net::Duration retry_wait(const config::Config& cfg, int failed_rounds) {
  const config::Connection c = cfg.connections.empty() ? config::Connection{} : cfg.connections.front();
  net::Duration wait = c.connect_retry;
  for (int i = 1; i < failed_rounds && wait < c.connect_retry_max; ++i) wait *= 2;
  return std::min(wait, c.connect_retry_max);
}

bool resolve_retry_exhausted(const config::Config& cfg, net::TimePoint failing_since, net::TimePoint now) {
  return cfg.resolv_retry && now - failing_since >= *cfg.resolv_retry;
}

}  // namespace duet::policy
