#include "duet/net/address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "duet/net/error.hpp"

namespace duet::net {

std::string_view to_string(Family family) { return family == Family::v4 ? "IPv4" : "IPv6"; }

Address Address::v4(std::uint32_t host_order) {
  Address a;
  a.family_ = Family::v4;
  a.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
  a.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
  a.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
  a.bytes_[3] = static_cast<std::uint8_t>(host_order);
  return a;
}

Address Address::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return v4((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d);
}

Address Address::v6(const Bytes& bytes, std::uint32_t scope_id) {
  Address a;
  a.family_ = Family::v6;
  a.bytes_ = bytes;
  a.scope_id_ = scope_id;
  return a;
}

Address Address::any(Family family) { return family == Family::v4 ? v4(0) : v6(Bytes{}); }

Address Address::loopback(Family family) {
  if (family == Family::v4) return v4(127, 0, 0, 1);
  Bytes b{};
  b[15] = 1;
  return v6(b);
}

Result<Address> Address::parse(std::string_view text) {
  // Longest valid literal: 45 chars of IPv6 (with embedded IPv4) plus "%4294967295".
  if (text.empty() || text.size() > 60) return make_error_code(ParseError::bad_address);
  std::string s(text);
  std::uint32_t scope = 0;
  if (auto pct = s.find('%'); pct != std::string::npos) {
    std::string_view sc(s.data() + pct + 1, s.size() - pct - 1);
    auto [p, ec] = std::from_chars(sc.data(), sc.data() + sc.size(), scope);
    if (sc.empty() || ec != std::errc{} || p != sc.data() + sc.size()) {
      return make_error_code(ParseError::bad_scope);
    }
    s.resize(pct);
    Bytes b{};
    if (inet_pton(AF_INET6, s.c_str(), b.data()) != 1) {
      return make_error_code(ParseError::bad_address);
    }
    return v6(b, scope);
  }
  Bytes b{};
  if (inet_pton(AF_INET, s.c_str(), b.data()) == 1) {
    Address a;
    a.bytes_ = b;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), b.data()) == 1) return v6(b);
  return make_error_code(ParseError::bad_address);
}

std::uint32_t Address::v4_value() const {
  return (std::uint32_t{bytes_[0]} << 24) | (std::uint32_t{bytes_[1]} << 16) | (std::uint32_t{bytes_[2]} << 8) |
         bytes_[3];
}

bool Address::is_unspecified() const {
  for (std::size_t i = 0; i < byte_length(); ++i) {
    if (bytes_[i] != 0) return false;
  }
  return true;
}

bool Address::is_loopback() const {
  if (is_v4()) return bytes_[0] == 127;
  if (is_v4_mapped()) return bytes_[12] == 127;
  return *this == loopback(Family::v6);
}

bool Address::is_link_local() const {
  if (is_v4()) return bytes_[0] == 169 && bytes_[1] == 254;
  return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
}

bool Address::is_v4_mapped() const {
  if (!is_v6()) return false;
  for (int i = 0; i < 10; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[10] == 0xff && bytes_[11] == 0xff;
}

Address Address::unmapped() const {
  if (!is_v4_mapped()) return *this;
  return v4(bytes_[12], bytes_[13], bytes_[14], bytes_[15]);
}

Address Address::v4_mapped() const {
  if (!is_v4()) return *this;
  Bytes b{};
  b[10] = b[11] = 0xff;
  std::memcpy(&b[12], bytes_.data(), 4);
  return v6(b);
}

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  std::string out(buf);
  if (is_v6() && scope_id_ != 0) out += "%" + std::to_string(scope_id_);
  return out;
}

namespace {

Result<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || value > 65535) {
    return make_error_code(ParseError::bad_port);
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

Result<Endpoint> Endpoint::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return make_error_code(ParseError::bad_address);
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (rest.empty()) return make_error_code(ParseError::missing_port);
    if (rest.front() != ':') return make_error_code(ParseError::bad_address);
    port = rest.substr(1);
    auto addr = Address::parse(host);
    if (!addr) return addr.error();
    if (!addr->is_v6()) return make_error_code(ParseError::bad_address);
    auto p = parse_port(port);
    if (!p) return p.error();
    return Endpoint{*addr, *p};
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return make_error_code(ParseError::missing_port);
  host = text.substr(0, colon);
  // An IPv6 literal must be bracketed when a port follows, or the last group is ambiguous.
  if (host.find(':') != std::string_view::npos) return make_error_code(ParseError::bad_address);
  auto addr = Address::parse(host);
  if (!addr) return addr.error();
  auto p = parse_port(text.substr(colon + 1));
  if (!p) return p.error();
  return Endpoint{*addr, *p};
}

std::string Endpoint::to_string() const {
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(port);
  return address.to_string() + ":" + std::to_string(port);
}

Result<Prefix> Prefix::parse(std::string_view text) {
  auto slash = text.find('/');
  auto addr = Address::parse(text.substr(0, slash));
  if (!addr) return addr.error();
  const unsigned max = addr->is_v4() ? 32 : 128;
  unsigned len = max;
  if (slash != std::string_view::npos) {
    auto lt = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(lt.data(), lt.data() + lt.size(), len);
    if (lt.empty() || ec != std::errc{} || p != lt.data() + lt.size() || len > max) {
      return make_error_code(ParseError::bad_prefix_length);
    }
  }
  return Prefix{*addr, static_cast<std::uint8_t>(len)};
}

std::string Prefix::to_string() const { return address.to_string() + "/" + std::to_string(length); }

Prefix Prefix::network() const {
  Address::Bytes b = address.bytes();
  const std::size_t n = address.byte_length();
  for (std::size_t i = 0; i < n; ++i) {
    const int bits_here = static_cast<int>(length) - static_cast<int>(i * 8);
    if (bits_here >= 8) continue;
    if (bits_here <= 0) {
      b[i] = 0;
    } else {
      b[i] &= static_cast<std::uint8_t>(0xff << (8 - bits_here));
    }
  }
  Address a = address.is_v4() ? Address::v4(b[0], b[1], b[2], b[3]) : Address::v6(b);
  return Prefix{a, length};
}

bool Prefix::contains(const Address& a) const {
  if (a.family() != family()) return false;
  return common_prefix_length(a, address) >= length;
}

int common_prefix_length(const Address& a, const Address& b) {
  if (a.family() != b.family()) return 0;
  int bits = 0;
  for (std::size_t i = 0; i < a.byte_length(); ++i) {
    const std::uint8_t x = a.bytes()[i] ^ b.bytes()[i];
    if (x == 0) {
      bits += 8;
      continue;
    }
    for (int bit = 7; bit >= 0 && !(x & (1u << bit)); --bit) ++bits;
    break;
  }
  return bits;
}

}  // namespace duet::net

std::size_t std::hash<duet::net::Address>::operator()(const duet::net::Address& a) const noexcept {
  // FNV-1a over the bytes: stable across runs and standard libraries.
  std::uint64_t h = 1469598103934665603ull ^ static_cast<std::uint64_t>(a.family());
  for (auto byte : a.bytes()) {
    h ^= byte;
    h *= 1099511628211ull;
  }
  h ^= a.scope_id();
  return static_cast<std::size_t>(h);
}

std::size_t std::hash<duet::net::Endpoint>::operator()(const duet::net::Endpoint& e) const noexcept {
  const std::uint64_t h = std::hash<duet::net::Address>{}(e.address);
  return static_cast<std::size_t>((h ^ e.port) * 1099511628211ull);
}
