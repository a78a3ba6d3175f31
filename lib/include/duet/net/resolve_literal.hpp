// The part of getaddrinfo that needs no resolver: numeric services, literal addresses
// and the empty host. Both stacks answer these the same way, without asking anyone.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "duet/net/network_stack.hpp"

namespace duet::net {

/// The port of a numeric service ("1194"), or ResolveError::bad_service.
Result<std::uint16_t> parse_service(const std::string& service);

/// The answer for a literal or empty host, or nullopt when the host is a name.
/// Empty host: passive gives 0.0.0.0 then ::, else ::1 then 127.0.0.1 (glibc's order).
std::optional<Result<std::vector<Endpoint>>> resolve_literal(const std::string& host, const std::string& service,
                                                             const ResolveHints& hints);

}  // namespace duet::net
