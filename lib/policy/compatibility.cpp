#include "duet/policy/compatibility.hpp"

#include <algorithm>

namespace duet::policy {

Compatibility check_bind_remote(const std::vector<net::Family>& bound, const std::vector<net::Address>& remotes) {
  Compatibility c;
  const bool v4 = std::find(bound.begin(), bound.end(), net::Family::v4) != bound.end();
  const bool v6 = std::find(bound.begin(), bound.end(), net::Family::v6) != bound.end();
  if (bound.empty() || (v4 && v6) || remotes.empty()) return c;
  const net::Family only = v4 ? net::Family::v4 : net::Family::v6;
  std::string usable_list, unusable_list;
  for (const auto& a : remotes) {
    if (a.family() == only) {
      usable_list += (usable_list.empty() ? "" : ", ") + a.to_string();
    } else {
      c.unusable.push_back(a);
      unusable_list += (unusable_list.empty() ? "" : ", ") + a.to_string();
    }
  }
  if (c.unusable.empty()) return c;
  const std::string fam(net::to_string(only));
  const std::string other(net::to_string(only == net::Family::v4 ? net::Family::v6 : net::Family::v4));
  if (usable_list.empty()) {
    c.verdict = Compatibility::error;
    c.message = "bound to " + fam + " only, but the remote has only " + other + " addresses (" + unusable_list +
                "): no address can be reached";
  } else {
    c.verdict = Compatibility::warning;
    c.message = "bound to " + fam + " only: remote " + other + " addresses " + unusable_list +
                " will not be used (using " + usable_list + ")";
  }
  return c;
}

}  // namespace duet::policy
