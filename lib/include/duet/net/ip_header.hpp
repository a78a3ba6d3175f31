// The fixed header of an IPv4 or IPv6 packet, read once for everything that looks into
// packets: the tunnel (routing by destination, cryptokey checks by source), the TUN
// offloads (where TCP/UDP begins) and the simulated TUN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "duet/net/address.hpp"

namespace duet::net {

/// What the fixed header of an IP packet says.
struct IpHeader {
  int version = 0;                ///< 4 or 6
  std::size_t header_length = 0;  ///< IPv4: IHL * 4; IPv6: 40 (extension headers count as payload)
  std::uint8_t protocol = 0;      ///< IPv4 protocol, IPv6 next header
  std::size_t total_length = 0;   ///< the packet's length as the header states it
  Address source;                 ///< the sender's address
  Address destination;            ///< the receiver's address
};

/// The header at the start of `packet`; nullopt when it is no IPv4 or IPv6 header or is
/// cut short. The stated total length is not checked against the packet (see fits()).
std::optional<IpHeader> parse_ip_header(std::span<const std::uint8_t> packet);

/// True when the header's stated length is at least its own and within `packet`.
inline bool fits(const IpHeader& h, std::span<const std::uint8_t> packet) {
  return h.total_length >= h.header_length && h.total_length <= packet.size();
}

}  // namespace duet::net
