// Rule 6 of the "Socket Rework" note: a bind that cannot reach some of the remote's
// families is a warning; one that can reach none of them is an error. The same words
// are used when the configuration is loaded (literals) and after names resolve.
#pragma once

#include <string>
#include <vector>

#include "duet/net/address.hpp"

namespace duet::policy {

struct Compatibility {
  enum Verdict { fine, warning, error } verdict = fine;
  std::vector<net::Address> unusable;  ///< remote addresses the bound families cannot reach
  std::string message;                 ///< empty when fine
};

/// `bound`: the families that will have a socket (empty or both: no restriction).
/// `remotes`: every address the remote stands for.
Compatibility check_bind_remote(const std::vector<net::Family>& bound, const std::vector<net::Address>& remotes);

}  // namespace duet::policy
