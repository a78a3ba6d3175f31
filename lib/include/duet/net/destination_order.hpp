// How glibc's getaddrinfo orders the addresses of one answer (RFC 3484 destination
// address selection with glibc's built-in policy table): usable destinations first (glibc
// "connects" a UDP probe socket to each; a local route verdict or no source address
// fails it), then by precedence (::1 50, ::/0 40, 2002::/16 30, ::/96 20, IPv4 10), then,
// between IPv6 addresses, the longer prefix shared with the source; else the answer's
// order. Both stacks order per-family answers they merge with this (sort_destinations).
#pragma once

#include <optional>
#include <vector>

#include "duet/net/address.hpp"

namespace duet::net {

/// One destination as the rules see it.
struct Destination {
  Endpoint endpoint;              ///< the address and port
  bool usable = true;             ///< the probe "connect" succeeded
  std::optional<Address> source;  ///< the source address it chose
};

/// The precedence of `a` in glibc's default policy table.
int destination_precedence(const Address& a);

/// The destinations in glibc's order (stable for ties).
std::vector<Endpoint> glibc_destination_order(std::vector<Destination> destinations);

}  // namespace duet::net
