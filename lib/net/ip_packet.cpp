#include "duet/net/ip_packet.hpp"

#include <algorithm>

namespace duet::net {

std::uint32_t checksum_words(std::span<const std::uint8_t> d, std::uint32_t sum) {
  for (std::size_t i = 0; i + 1 < d.size(); i += 2) sum += (std::uint32_t{d[i]} << 8) | d[i + 1];
  if (d.size() & 1) sum += std::uint32_t{d.back()} << 8;
  return sum;
}

std::uint16_t internet_checksum(std::span<const std::uint8_t> data, std::uint32_t sum) {
  sum = checksum_words(data, sum);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

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
