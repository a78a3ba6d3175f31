// In which order to try a remote's addresses, and how far apart: the note's "try them
// in order", or Happy Eyeballs v2 (RFC 8305 section 4): families interleaved, starting
// with the resolver's first, one new attempt per connection-attempt delay.
#pragma once

#include <vector>

#include "duet/net/address.hpp"
#include "duet/net/clock.hpp"

namespace duet::policy {

/// RFC 8305's bounds on the connection attempt delay: 0 stays 0 (racing off), anything
/// else is clamped into [100 ms, 2 s].
net::Duration clamp_attempt_delay(net::Duration requested);

/// Resolver order with families alternated, beginning with the family of the first
/// address (RFC 8305 section 4, "First Address Family Count" 1); order within a family kept.
std::vector<net::Endpoint> interleave_families(const std::vector<net::Endpoint>& resolver_order);

struct RemoteOrder {
  std::vector<net::Endpoint> order;
  bool racing = false;               ///< Happy Eyeballs on
  net::Duration attempt_delay{0};    ///< with racing: start the next attempt this long after
};

/// The plan for one remote: racing when `happy_eyeballs_delay` is not 0.
RemoteOrder order_remotes(const std::vector<net::Endpoint>& resolver_order,
                          net::Duration happy_eyeballs_delay);

}  // namespace duet::policy
