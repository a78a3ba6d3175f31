// The order in which one name's addresses are raced (RFC 8305 section 4): families
// interleaved, beginning with the family of the first address, the order within each
// family kept ("First Address Family Count" 1).
#pragma once

#include <vector>

#include "duet/net/address.hpp"

namespace duet::policy {

std::vector<net::Endpoint> interleave_families(const std::vector<net::Endpoint>& sorted);

}  // namespace duet::policy
