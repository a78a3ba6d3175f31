// Small helpers for whole IP packets, shared by the pcap writer, the simulated TUN and
// the tests that put real packets through a tunnel.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "duet/net/address.hpp"

namespace duet::net {

/// The Internet checksum (RFC 1071) of `data`, continuing from a partial `sum`.
std::uint16_t internet_checksum(std::span<const std::uint8_t> data, std::uint32_t sum = 0);
/// The running 32-bit sum of 16-bit big-endian words (for pseudo-headers).
std::uint32_t checksum_words(std::span<const std::uint8_t> data, std::uint32_t sum = 0);

/// An IPv4 ICMP echo request (type 8) or reply (type 0) with an 8-byte payload.
std::vector<std::uint8_t> ipv4_icmp_echo(std::uint8_t type, const Address& source, const Address& destination,
                                         std::uint16_t id, std::uint16_t sequence);

}  // namespace duet::net
