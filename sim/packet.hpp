// A simulated IP packet: the header fields the simulation needs, and the payload.
// pcap.cpp turns it into real IPv4/IPv6 bytes for tshark.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "duet/net/address.hpp"

namespace duet::sim {

enum class Proto : std::uint8_t { icmp, tcp, udp };

namespace tcp_flag {
constexpr std::uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
}

// ICMP types and codes by their RFC names (ICMPv4: RFC 792; ICMPv6: RFC 4443).
namespace icmp4 {
constexpr std::uint8_t dest_unreachable = 3, time_exceeded = 11;
constexpr std::uint8_t net_unreachable = 0, host_unreachable = 1, port_unreachable = 3, frag_needed = 4,
                       admin_prohibited = 13;
}  // namespace icmp4
namespace icmp6 {
constexpr std::uint8_t dest_unreachable = 1, packet_too_big = 2, time_exceeded = 3;
constexpr std::uint8_t no_route = 0, admin_prohibited = 1, address_unreachable = 3, port_unreachable = 4;
}  // namespace icmp6

struct Packet {
  std::uint64_t id = 0;  ///< world-unique, for traces
  net::Address src;
  net::Address dst;
  Proto proto = Proto::udp;
  std::uint8_t ttl = 64;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  // TCP
  std::uint8_t flags = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  // ICMP error: type, code, next-hop MTU for "too big", and the packet it is about.
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
  std::uint32_t icmp_mtu = 0;
  std::shared_ptr<const Packet> quoted;
  std::vector<std::uint8_t> payload;
  /// Size of the fragments the source cut this datagram into (0: not fragmented).
  std::size_t fragment_size = 0;

  [[nodiscard]] net::Family family() const { return src.family(); }
  /// Bytes on the wire: IP header + transport header + payload.
  [[nodiscard]] std::size_t size() const;
  /// "udp 198.18.0.1:5000 > 198.18.0.2:53 len 12" style summary for traces.
  [[nodiscard]] std::string summary() const;
};

/// IPv4/IPv6 header size.
inline std::size_t ip_header_size(net::Family f) { return f == net::Family::v4 ? 20 : 40; }

}  // namespace duet::sim
