#include "duet/net/ip_header.hpp"

#include <algorithm>

namespace duet::net {

std::optional<IpHeader> parse_ip_header(std::span<const std::uint8_t> p) {
  if (p.empty()) return std::nullopt;
  IpHeader h;
  h.version = p[0] >> 4;
  if (h.version == 4 && p.size() >= 20) {
    h.header_length = std::size_t{p[0] & 0x0fu} * 4;
    if (h.header_length < 20 || h.header_length > p.size()) return std::nullopt;
    h.protocol = p[9];
    h.total_length = (std::size_t{p[2]} << 8) | p[3];
    h.source = Address::v4(p[12], p[13], p[14], p[15]);
    h.destination = Address::v4(p[16], p[17], p[18], p[19]);
    return h;
  }
  if (h.version == 6 && p.size() >= 40) {
    h.header_length = 40;
    h.protocol = p[6];
    h.total_length = 40 + ((std::size_t{p[4]} << 8) | p[5]);
    Address::Bytes s{}, d{};
    std::copy(p.begin() + 8, p.begin() + 24, s.begin());
    std::copy(p.begin() + 24, p.begin() + 40, d.begin());
    h.source = Address::v6(s);
    h.destination = Address::v6(d);
    return h;
  }
  return std::nullopt;
}

}  // namespace duet::net
