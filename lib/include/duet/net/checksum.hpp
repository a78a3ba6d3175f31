// The Internet checksum (RFC 1071), once for everything that builds or checks packets:
// the TUN offloads, the simulator's packets and pcap, the simulated TUN's pings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace duet::net {

/// The one's-complement sum of `data` as 16-bit big-endian words, folded to 16 bits and
/// not complemented; `initial` continues an earlier sum (any 32-bit value).
std::uint16_t ones_sum(std::span<const std::uint8_t> data, std::uint32_t initial = 0);

/// The checksum field's value for `data`: the complement of ones_sum(data, initial).
inline std::uint16_t internet_checksum(std::span<const std::uint8_t> data, std::uint32_t initial = 0) {
  return static_cast<std::uint16_t>(~ones_sum(data, initial));
}

/// The sum of the TCP/UDP pseudo-header of the IPv4 or IPv6 packet starting at `ip`, for
/// `l4_length` bytes of protocol `proto`.
std::uint32_t pseudo_header_sum(std::span<const std::uint8_t> ip, std::uint8_t proto, std::size_t l4_length);

}  // namespace duet::net
