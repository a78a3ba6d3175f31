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

/// WireGuard's rule where peers' allowed IPs overlap: a prefix given to two peers belongs
/// to the later one; a more specific prefix takes its addresses from a broader one of
/// another peer. Legal, but rarely meant: each overlap is a warning on the line that
/// wins (the first 20; then how many more).
void check_overlaps(const std::vector<config::Peer>& peers, config::Diagnostics& out) {
  struct Item {
    net::Prefix prefix;
    std::size_t peer;
  };
  std::vector<Item> all;
  for (std::size_t i = 0; i < peers.size(); ++i) {
    for (const auto& p : peers[i].allowed_ips) all.push_back({p.network(), i});
  }
  // By address, then length, then peer: a prefix comes before those it contains.
  std::sort(all.begin(), all.end(), [](const Item& a, const Item& b) {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return a.peer < b.peer;
  });
  constexpr std::size_t kSaid = 20;
  std::size_t overlaps = 0;
  std::vector<const Item*> open;  // the prefixes that contain the current one, outermost first
  for (const Item& it : all) {
    while (!open.empty() &&
           !(open.back()->prefix.family() == it.prefix.family() && open.back()->prefix.length <= it.prefix.length &&
             open.back()->prefix.contains(it.prefix.address))) {
      open.pop_back();
    }
    if (!open.empty() && open.back()->peer != it.peer) {
      const Item& outer = *open.back();
      if (++overlaps <= kSaid) {
        const std::string other = peers[outer.peer].where.to_string();
        if (outer.prefix == it.prefix) {
          out.warning(peers[it.peer].where, "allowed IP " + it.prefix.to_string() + " is also given to the peer at " +
                                                other + ": it belongs to this later peer only");
        } else {
          out.warning(peers[it.peer].where, "allowed IP " + it.prefix.to_string() + " lies inside " +
                                                outer.prefix.to_string() + " of the peer at " + other +
                                                ": the most specific wins, so its traffic goes to this peer");
        }
      }
    }
    open.push_back(&it);
  }
  if (overlaps > kSaid && !peers.empty()) {
    out.warning(peers.front().where, std::to_string(overlaps - kSaid) + " more allowed IPs overlap another peer's");
  }
}

}  // namespace

config::Diagnostics review(const config::Config& cfg) {
  config::Diagnostics out;
  check_overlaps(cfg.peers, out);
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
