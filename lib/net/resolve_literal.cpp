#include "duet/net/resolve_literal.hpp"

#include <charconv>

#include "duet/net/error.hpp"

namespace duet::net {

Result<std::uint16_t> parse_service(const std::string& service) {
  unsigned port = 0;
  auto [p, ec] = std::from_chars(service.data(), service.data() + service.size(), port);
  if (service.empty() || ec != std::errc{} || p != service.data() + service.size() || port > 65535) {
    return make_error_code(ResolveError::bad_service);
  }
  return static_cast<std::uint16_t>(port);
}

std::optional<Result<std::vector<Endpoint>>> resolve_literal(const std::string& host, const std::string& service,
                                                             const ResolveHints& hints) {
  auto port = parse_service(service);
  if (!port) return Result<std::vector<Endpoint>>(port.error());
  auto wanted = [&](Family f) { return !hints.family || *hints.family == f; };

  if (host.empty()) {
    std::vector<Endpoint> out;
    const Family order[2] = {hints.passive ? Family::v4 : Family::v6, hints.passive ? Family::v6 : Family::v4};
    for (Family f : order) {
      if (!wanted(f)) continue;
      out.push_back({hints.passive ? Address::any(f) : Address::loopback(f), *port});
    }
    return Result<std::vector<Endpoint>>(std::move(out));
  }
  auto addr = Address::parse(host);
  if (!addr) return std::nullopt;
  if (!wanted(addr->family())) {
    return Result<std::vector<Endpoint>>(make_error_code(ResolveError::no_data));
  }
  return Result<std::vector<Endpoint>>(std::vector<Endpoint>{{*addr, *port}});
}

}  // namespace duet::net
