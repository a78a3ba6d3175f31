#include "duet/policy/review.hpp"

#include <algorithm>

#include "duet/policy/bind_plan.hpp"
#include "duet/policy/compatibility.hpp"

namespace duet::policy {

using namespace std::chrono_literals;

net::Duration attempt_delay(const config::Connection& c) {
  if (c.happy_eyeballs_delay.count() <= 0) return net::Duration{0};
  return std::clamp<net::Duration>(c.happy_eyeballs_delay, 100ms, 2000ms);
}

namespace {

long long whole_ms(net::Duration d) { return static_cast<long long>(net::to_ms(d)); }

/// Rule 6 for literals: the families a connection binds against its literal remotes.
void check_literals(const config::Connection& c, config::Mode mode, config::Diagnostics& out) {
  std::vector<net::Endpoint> locals;
  for (const auto& l : c.locals) {
    auto a = net::Address::parse(l);
    if (!a) return;  // a name: checked after it resolves
    locals.push_back({*a, 0});
  }
  std::vector<net::Address> remotes;
  for (const auto& r : c.remotes) {
    auto a = net::Address::parse(r.host);
    if (!a) return;  // names are checked after resolution, with the same words
    remotes.push_back(*a);
  }
  const auto check = check_bind_remote(bound_families(c, mode, locals), remotes);
  const config::SourceLocation where = c.remotes.empty() ? c.where : c.remotes.front().where;
  if (check.verdict == Compatibility::error) out.error(where, check.message);
  if (check.verdict == Compatibility::warning) out.warning(where, check.message);
}

}  // namespace

config::Diagnostics review(const config::Config& cfg) {
  config::Diagnostics out;
  for (const auto& c : cfg.connections) {
    if (const auto used = attempt_delay(c); used != c.happy_eyeballs_delay) {
      out.warning(c.happy_eyeballs_delay_where,
                  "happy-eyeballs-delay " + std::to_string(whole_ms(c.happy_eyeballs_delay)) +
                      " ms is outside 100..2000 ms (RFC 8305); using " + std::to_string(whole_ms(used)) + " ms");
    }
    check_literals(c, cfg.mode, out);
  }
  return out;
}

config::LoadResult reviewed(config::LoadResult loaded) {
  if (loaded.ok()) loaded.diagnostics.append(review(loaded.config));
  return loaded;
}

}  // namespace duet::policy
