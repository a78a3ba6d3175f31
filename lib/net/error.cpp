#include "duet/net/error.hpp"

#include <cerrno>
#include <cstring>

namespace duet::net {

namespace {

class ResolveCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "resolve"; }
  std::string message(int ev) const override {
    switch (static_cast<ResolveError>(ev)) {
      case ResolveError::no_such_name:
        return "no such name";
      case ResolveError::no_data:
        return "no address of the requested family";
      case ResolveError::temporary_failure:
        return "temporary failure in name resolution";
      case ResolveError::timed_out:
        return "name resolution timed out";
      case ResolveError::bad_service:
        return "service is not a port number";
      case ResolveError::bad_hints:
        return "impossible resolver hints";
    }
    return "unknown resolver error";
  }
};

class ParseCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "parse"; }
  std::string message(int ev) const override {
    switch (static_cast<ParseError>(ev)) {
      case ParseError::bad_address:
        return "not an IPv4 or IPv6 address";
      case ParseError::bad_port:
        return "port must be a number from 0 to 65535";
      case ParseError::bad_prefix_length:
        return "prefix length out of range";
      case ParseError::bad_scope:
        return "IPv6 scope id must be a number";
      case ParseError::missing_port:
        return "endpoint needs a port (a.b.c.d:port or [v6]:port)";
    }
    return "unknown parse error";
  }
};

}  // namespace

const std::error_category& resolve_category() {
  static const ResolveCategory c;
  return c;
}
std::error_code make_error_code(ResolveError e) { return {static_cast<int>(e), resolve_category()}; }

const std::error_category& parse_category() {
  static const ParseCategory c;
  return c;
}
std::error_code make_error_code(ParseError e) { return {static_cast<int>(e), parse_category()}; }

std::string error_name(std::error_code ec) {
  if (!ec) return "ok";
  if (ec.category() == std::generic_category() || ec.category() == std::system_category()) {
    const char* name = strerrorname_np(ec.value());
    if (name != nullptr) return name;
  }
  return ec.message();
}

}  // namespace duet::net
