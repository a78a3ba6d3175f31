// The host's interface addresses, from getifaddrs(3).
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>

#include "asio_glue.hpp"

namespace duet::posix::detail {

namespace {

int mask_length(const sockaddr* mask) {
  if (mask == nullptr) return 0;
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
  if (mask->sa_family == AF_INET) {
    p = reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    n = 4;
  } else {
    p = reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    n = 16;
  }
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) bits += __builtin_popcount(p[i]);
  return bits;
}

}  // namespace

Result<std::vector<net::InterfaceAddress>> interface_addresses() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::error_code(errno, std::generic_category());
  std::vector<net::InterfaceAddress> out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    net::InterfaceAddress ia;
    ia.interface = i->ifa_name;
    ia.up = (i->ifa_flags & IFF_UP) != 0;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      ia.prefix.address = Address::v4(ntohl(sin->sin_addr.s_addr));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      Address::Bytes b{};
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      ia.prefix.address = Address::v6(b, sin6->sin6_scope_id);
    } else {
      continue;
    }
    ia.prefix.length = static_cast<std::uint8_t>(mask_length(i->ifa_netmask));
    out.push_back(std::move(ia));
  }
  freeifaddrs(list);
  return out;
}

}  // namespace duet::posix::detail
