// Which sockets to bind: pure functions of the configuration, the resolver's answers
// and the host's own addresses (rules 2, 5 and 7 of the "Socket Rework" note).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/network_stack.hpp"

namespace duet::policy {

struct PlannedSocket {
  net::Endpoint local;
  config::Transport transport = config::Transport::udp;
  bool v6only = false;  ///< set on every IPv6 socket so IPv4 and IPv6 share a port
};

struct PlanNote {
  config::Severity severity = config::Severity::info;
  std::string text;
};

struct BindPlan {
  std::vector<PlannedSocket> sockets;
  std::vector<PlanNote> notes;
  [[nodiscard]] bool ok() const;
};

/// The families the host has a non-loopback address of (only loopback: those of loopback).
std::vector<net::Family> host_families(const std::vector<net::InterfaceAddress>& host);

/// Rule 2: a server (or a listening p2p peer) binds every result of resolving its local
/// address with AI_PASSIVE, one socket each, IPv6 ones with IPV6_V6ONLY; a family the
/// host lacks is skipped with an info note; no socket at all is an error.
BindPlan server_bind_plan(const config::Listen& listen, const std::vector<net::Endpoint>& passive,
                          const std::vector<net::InterfaceAddress>& host);

/// Whether an outgoing connection binds at all (rule 7: mode client means nobind unless
/// 'bind'; p2p binds), and if so which local endpoint for the family it is connecting
/// over: a local address of that family if one resolved, else the wildcard; lport if
/// given, else ephemeral. nullopt: do not bind. `locals` are the resolved local addresses.
std::optional<PlannedSocket> client_bind(const config::Connection& c, config::Mode mode, net::Family connecting_over,
                                         const std::vector<net::Endpoint>& locals);

/// The families a connection's binding allows (for check_bind_remote): those of its
/// resolved locals, else its family choice, else both. Empty when it does not bind.
std::vector<net::Family> bound_families(const config::Connection& c, config::Mode mode,
                                        const std::vector<net::Endpoint>& locals);

/// How a UDP peer-to-peer connection works on dual stack (rule 5).
enum class P2pRole {
  listener,      ///< udp-server: binds every local result and waits for the peer
  initiator,     ///< udp-client: binds only the family it is currently trying
  symmetric,     ///< udp: binds every local result and walks the remote list
  single_family  ///< --ipv4/--ipv6 or one literal each side: one family, no failover
};
P2pRole p2p_role(const config::Connection& c);
std::string_view to_string(P2pRole r);

}  // namespace duet::policy
