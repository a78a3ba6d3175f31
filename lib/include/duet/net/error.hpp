// Errors are std::error_code. Socket errors use std::generic_category() with the POSIX
// meaning (std::errc::address_in_use is EADDRINUSE...), so the simulator and the kernel
// report the same values. Resolver and parse failures have categories of their own.
#pragma once

#include <string>
#include <system_error>

namespace duet::net {

/// Shorthand for a POSIX error code: errc(std::errc::connection_refused).
inline std::error_code errc(std::errc e) { return std::make_error_code(e); }

/// Name resolution failures (getaddrinfo's EAI_* in plain words).
enum class ResolveError {
  no_such_name = 1,   ///< NXDOMAIN / EAI_NONAME
  no_data,            ///< the name exists but has no address of the asked family
  temporary_failure,  ///< SERVFAIL / EAI_AGAIN
  timed_out,          ///< no answer within the resolver's timeout
  bad_service,        ///< the service (port) is not a number 0..65535
  bad_hints,          ///< impossible hints (e.g. a literal of another family)
};
const std::error_category& resolve_category();
std::error_code make_error_code(ResolveError e);

/// Malformed text given to a parser (address, endpoint, prefix).
enum class ParseError {
  bad_address = 1,
  bad_port,
  bad_prefix_length,
  bad_scope,
  missing_port,
};
const std::error_category& parse_category();
std::error_code make_error_code(ParseError e);

/// Symbolic errno name for a generic error ("ECONNREFUSED"), or the message for others.
std::string error_name(std::error_code ec);

}  // namespace duet::net

/// \cond
template <>
struct std::is_error_code_enum<duet::net::ResolveError> : std::true_type {};
template <>
struct std::is_error_code_enum<duet::net::ParseError> : std::true_type {};
/// \endcond
