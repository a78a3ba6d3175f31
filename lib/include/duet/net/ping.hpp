// Whole IP packets made for tests and the simulated TUN: an IPv4 ping.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "duet/net/address.hpp"

namespace duet::net {

/// An IPv4 ICMP echo request (type 8) or reply (type 0) with an 8-byte payload.
std::vector<std::uint8_t> ipv4_icmp_echo(std::uint8_t type, const Address& source, const Address& destination,
                                         std::uint16_t id, std::uint16_t sequence);

}  // namespace duet::net
