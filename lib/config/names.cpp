// The names of the configuration's enums, as the user writes them.
#include "duet/config/config.hpp"

namespace duet::config {

std::string_view to_string(Proto p) {
  switch (p) {
    case Proto::udp:
      return "udp";
    case Proto::tcp:
      return "tcp";
    case Proto::udp_server:
      return "udp-server";
    case Proto::udp_client:
      return "udp-client";
    case Proto::tcp_server:
      return "tcp-server";
    case Proto::tcp_client:
      return "tcp-client";
  }
  return "?";
}
std::string_view to_string(Transport t) { return t == Transport::udp ? "udp" : "tcp"; }
std::string_view to_string(Mode m) {
  switch (m) {
    case Mode::p2p:
      return "p2p";
    case Mode::client:
      return "client";
    case Mode::server:
      return "server";
  }
  return "?";
}
std::string_view to_string(FamilyChoice f) {
  switch (f) {
    case FamilyChoice::both:
      return "both";
    case FamilyChoice::v4:
      return "ipv4";
    case FamilyChoice::v6:
      return "ipv6";
  }
  return "?";
}
Transport transport_of(Proto p) {
  return (p == Proto::udp || p == Proto::udp_server || p == Proto::udp_client) ? Transport::udp : Transport::tcp;
}
std::optional<net::Family> family_hint(FamilyChoice f) {
  if (f == FamilyChoice::v4) return net::Family::v4;
  if (f == FamilyChoice::v6) return net::Family::v6;
  return std::nullopt;
}

}  // namespace duet::config
