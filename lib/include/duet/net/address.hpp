// IP addresses, endpoints and prefixes: plain values, parsed and printed the way
// users write them ("198.18.0.1", "fd00::1%3", "[fd00::1]:1194", "fd00::/64").
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "duet/net/result.hpp"

namespace duet::net {

/// An address family.
enum class Family : std::uint8_t {
  v4,  ///< IPv4 (AF_INET)
  v6,  ///< IPv6 (AF_INET6)
};

/// "IPv4" or "IPv6".
std::string_view to_string(Family family);

/// An IPv4 or IPv6 address; IPv6 addresses may carry a scope id (link-local).
class Address {
public:
  /// Network-order bytes, room for IPv6.
  using Bytes = std::array<std::uint8_t, 16>;

  /// 0.0.0.0
  Address() = default;

  /// An IPv4 address from its value in host byte order (0xC6120001 is 198.18.0.1).
  static Address v4(std::uint32_t host_order);
  /// The IPv4 address a.b.c.d.
  static Address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);
  /// An IPv6 address from its 16 network-order bytes, with a scope id for link-local ones.
  static Address v6(const Bytes& bytes, std::uint32_t scope_id = 0);
  /// The wildcard of a family: 0.0.0.0 or ::.
  static Address any(Family family);
  /// 127.0.0.1 or ::1.
  static Address loopback(Family family);

  /// Parses "a.b.c.d" or an IPv6 literal with optional "%scope" (numeric); no brackets.
  static Result<Address> parse(std::string_view text);

  /// IPv4 or IPv6.
  [[nodiscard]] Family family() const { return family_; }
  /// family() is IPv4.
  [[nodiscard]] bool is_v4() const { return family_ == Family::v4; }
  /// family() is IPv6.
  [[nodiscard]] bool is_v6() const { return family_ == Family::v6; }
  /// IPv4 in host byte order; only meaningful for is_v4().
  [[nodiscard]] std::uint32_t v4_value() const;
  /// Network-order bytes: 4 for IPv4 (rest zero), 16 for IPv6.
  [[nodiscard]] const Bytes& bytes() const { return bytes_; }
  /// 4 or 16: how many of bytes() are the address.
  [[nodiscard]] std::size_t byte_length() const { return is_v4() ? 4 : 16; }
  /// The IPv6 scope id (interface index) of a link-local address; 0 when none.
  [[nodiscard]] std::uint32_t scope_id() const { return scope_id_; }

  /// 0.0.0.0 or `::`.
  [[nodiscard]] bool is_unspecified() const;
  /// 127.0.0.0/8 or `::1`.
  [[nodiscard]] bool is_loopback() const;
  /// 169.254.0.0/16 or fe80::/10.
  [[nodiscard]] bool is_link_local() const;
  /// An IPv4-mapped IPv6 address, \::ffff:a.b.c.d.
  [[nodiscard]] bool is_v4_mapped() const;
  /// \::ffff:a.b.c.d to a.b.c.d; any other address is returned unchanged.
  [[nodiscard]] Address unmapped() const;
  /// a.b.c.d to \::ffff:a.b.c.d; IPv6 addresses are returned unchanged.
  [[nodiscard]] Address v4_mapped() const;

  /// Canonical text: dotted quad, or RFC 5952 IPv6 with "%scope" when set.
  [[nodiscard]] std::string to_string() const;

  /// Ordered by family, then bytes, then scope id (for maps and sorted lists).
  friend auto operator<=>(const Address&, const Address&) = default;
  /// Same family, bytes and scope id. Two 64-bit compares instead of a byte loop: routing compares addresses a lot.
  friend bool operator==(const Address& a, const Address& b) {
    std::uint64_t x[2], y[2];
    std::memcpy(x, a.bytes_.data(), 16);
    std::memcpy(y, b.bytes_.data(), 16);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0 && a.family_ == b.family_ && a.scope_id_ == b.scope_id_;
  }

private:
  Family family_ = Family::v4;
  Bytes bytes_{};
  std::uint32_t scope_id_ = 0;
};

/// An address and a port.
struct Endpoint {
  Address address;         ///< the IP address
  std::uint16_t port = 0;  ///< the port, host byte order

  /// Parses "a.b.c.d:port" or "[v6]:port" (also "[v6%scope]:port").
  static Result<Endpoint> parse(std::string_view text);
  /// "a.b.c.d:port" or "[v6]:port".
  [[nodiscard]] std::string to_string() const;
  /// The address's family.
  [[nodiscard]] Family family() const { return address.family(); }

  /// Ordered by address, then port.
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
  /// Same address and port.
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

/// A network prefix "address/length"; the address is kept as given (host bits allowed,
/// as in an interface address like 198.18.0.1/24).
struct Prefix {
  Address address;          ///< as given, host bits included
  std::uint8_t length = 0;  ///< prefix length in bits: 0..32 or 0..128

  /// Parses "addr/len"; a bare address means a host prefix (/32 or /128).
  static Result<Prefix> parse(std::string_view text);
  /// "addr/len".
  [[nodiscard]] std::string to_string() const;
  /// The address's family.
  [[nodiscard]] Family family() const { return address.family(); }
  /// The prefix with host bits cleared.
  [[nodiscard]] Prefix network() const;
  /// True when `a` is of the same family and inside the prefix.
  [[nodiscard]] bool contains(const Address& a) const;

  /// Ordered by address, then length.
  friend auto operator<=>(const Prefix&, const Prefix&) = default;
  /// Same address (as given) and length.
  friend bool operator==(const Prefix&, const Prefix&) = default;
};

/// Number of leading bits two addresses of one family share (0 across families).
int common_prefix_length(const Address& a, const Address& b);

}  // namespace duet::net

// Addresses as keys of unordered containers (left out of the API reference).
/// \cond
template <>
struct std::hash<duet::net::Address> {
  std::size_t operator()(const duet::net::Address& a) const noexcept;
};
template <>
struct std::hash<duet::net::Endpoint> {
  std::size_t operator()(const duet::net::Endpoint& e) const noexcept;
};
/// \endcond
