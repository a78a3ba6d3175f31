#include "duet/net/ping.hpp"

#include <algorithm>

#include "duet/net/checksum.hpp"

namespace duet::net {

std::vector<std::uint8_t> ipv4_icmp_echo(std::uint8_t type, const Address& source, const Address& destination,
                                         std::uint16_t id, std::uint16_t sequence) {
  std::vector<std::uint8_t> p(20 + 8 + 8, 0);
  p[0] = 0x45;
  p[3] = static_cast<std::uint8_t>(p.size());
  p[8] = 64;
  p[9] = 1;  // ICMP
  std::copy_n(source.bytes().begin(), 4, p.begin() + 12);
  std::copy_n(destination.bytes().begin(), 4, p.begin() + 16);
  const auto hc = internet_checksum(std::span(p).first(20));
  p[10] = static_cast<std::uint8_t>(hc >> 8);
  p[11] = static_cast<std::uint8_t>(hc);
  p[20] = type;
  p[24] = static_cast<std::uint8_t>(id >> 8);
  p[25] = static_cast<std::uint8_t>(id);
  p[26] = static_cast<std::uint8_t>(sequence >> 8);
  p[27] = static_cast<std::uint8_t>(sequence);
  std::copy_n("duetping", 8, p.begin() + 28);
  const auto ic = internet_checksum(std::span(p).subspan(20));
  p[22] = static_cast<std::uint8_t>(ic >> 8);
  p[23] = static_cast<std::uint8_t>(ic);
  return p;
}

}  // namespace duet::net
