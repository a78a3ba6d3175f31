#include "duet/policy/bind_plan.hpp"

#include <algorithm>

namespace duet::policy {

bool BindPlan::ok() const {
  return !sockets.empty() && std::none_of(notes.begin(), notes.end(),
                                          [](const PlanNote& n) { return n.severity == config::Severity::error; });
}

std::vector<net::Family> host_families(const std::vector<net::InterfaceAddress>& host) {
  // A family counts when the host has a real address of it; loopback decides only on a
  // host that has nothing else (so a laptop without a network still serves itself).
  std::vector<net::Family> out, loopback;
  for (const auto& a : host) {
    auto& list = a.prefix.address.is_loopback() ? loopback : out;
    if (std::find(list.begin(), list.end(), a.prefix.family()) == list.end()) list.push_back(a.prefix.family());
  }
  return out.empty() ? loopback : out;
}

BindPlan server_bind_plan(const config::Listen& listen, const std::vector<net::Endpoint>& passive,
                          const std::vector<net::InterfaceAddress>& host) {
  BindPlan plan;
  const auto families = host_families(host);
  const auto transport = config::transport_of(listen.proto);
  bool skipped_note[2] = {false, false};
  for (const auto& e : passive) {
    const auto want = config::family_hint(listen.family);
    if (want && *want != e.family()) continue;
    if (!listen.without_address && std::find(families.begin(), families.end(), e.family()) == families.end()) {
      const int i = e.family() == net::Family::v4 ? 0 : 1;
      if (!skipped_note[i]) {
        plan.notes.push_back({config::Severity::info, std::string(net::to_string(e.family())) + " skipped for " +
                                                          e.to_string() + ": this host has no " +
                                                          std::string(net::to_string(e.family())) + " address"});
        skipped_note[i] = true;
      }
      continue;
    }
    PlannedSocket s{e, transport, e.family() == net::Family::v6};
    const bool duplicate = std::any_of(plan.sockets.begin(), plan.sockets.end(), [&](const PlannedSocket& x) {
      return x.local == s.local && x.transport == s.transport;
    });
    if (!duplicate) plan.sockets.push_back(s);
  }
  if (plan.sockets.empty()) {
    plan.notes.push_back(
        {config::Severity::error, "no usable socket for " + std::string(config::to_string(listen.proto)) + " port " +
                                      std::to_string(listen.port) +
                                      (listen.where.known() ? " (listen at " + listen.where.to_string() + ")" : "")});
  }
  return plan;
}

namespace {

bool binds(const config::Connection& c, config::Mode mode) {
  if (c.bind == config::BindChoice::nobind) return false;
  if (c.bind == config::BindChoice::bind) return true;
  return mode != config::Mode::client;  // rule 7: a client defaults to nobind
}

}  // namespace

std::optional<PlannedSocket> client_bind(const config::Connection& c, config::Mode mode, net::Family connecting_over,
                                         const std::vector<net::Endpoint>& locals) {
  if (!binds(c, mode)) return std::nullopt;
  PlannedSocket s;
  s.transport = config::transport_of(c.proto);
  s.v6only = connecting_over == net::Family::v6;
  s.local = {net::Address::any(connecting_over), c.lport_set ? c.lport : std::uint16_t{0}};
  // p2p peers that listen use their configured port by default; clients go ephemeral.
  if (mode == config::Mode::p2p && !c.lport_set) s.local.port = c.lport;
  for (const auto& l : locals) {
    if (l.family() == connecting_over) {
      s.local.address = l.address;
      break;
    }
  }
  return s;
}

std::vector<net::Family> bound_families(const config::Connection& c, config::Mode mode,
                                        const std::vector<net::Endpoint>& locals) {
  if (!binds(c, mode)) return {};
  // A client with --bind binds only the family it connects over: no restriction.
  if (mode == config::Mode::client || c.proto == config::Proto::udp_client || c.proto == config::Proto::tcp_client) {
    if (c.locals.empty() && c.family == config::FamilyChoice::both) return {};
  }
  std::vector<net::Family> out;
  for (const auto& l : locals) {
    if (std::find(out.begin(), out.end(), l.family()) == out.end()) out.push_back(l.family());
  }
  if (!out.empty()) return out;
  if (auto f = config::family_hint(c.family)) return {*f};
  return {net::Family::v4, net::Family::v6};
}

P2pRole p2p_role(const config::Connection& c) {
  if (c.family != config::FamilyChoice::both) return P2pRole::single_family;
  if (c.proto == config::Proto::udp_server || c.proto == config::Proto::tcp_server) return P2pRole::listener;
  if (c.proto == config::Proto::udp_client || c.proto == config::Proto::tcp_client) return P2pRole::initiator;
  // One literal local and literal remotes all of its family: one family, no failover.
  if (c.locals.size() == 1 && net::Address::parse(c.locals.front())) {
    const auto f = net::Address::parse(c.locals.front())->family();
    const bool all_same =
        !c.remotes.empty() && std::all_of(c.remotes.begin(), c.remotes.end(), [&](const config::Remote& r) {
          auto a = net::Address::parse(r.host);
          return a && a->family() == f;
        });
    if (all_same) return P2pRole::single_family;
  }
  return P2pRole::symmetric;
}

std::string_view to_string(P2pRole r) {
  switch (r) {
    case P2pRole::listener:
      return "listener (binds every local address, waits for the peer)";
    case P2pRole::initiator:
      return "initiator (binds only the family it is trying)";
    case P2pRole::symmetric:
      return "symmetric (binds every local address, walks the remote list)";
    case P2pRole::single_family:
      return "single family (no failover to the other)";
  }
  return "?";
}

}  // namespace duet::policy
