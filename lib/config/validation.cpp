// The whole configuration, once everything is read: the rules that need several
// directives (mode against remotes and protos, contradictions, proxies against UDP,
// <listen> blocks that would take the same socket). The socket policy's own verdicts on
// a configuration (bind against remote families, the Happy Eyeballs delay's bounds) are
// policy::review's.
#include <map>

#include "loader_state.hpp"

namespace duet::config::detail {

Config Loader::build(const Raw& top, const std::vector<Raw>& connections, const std::vector<Raw>& listens) {
  Config cfg;
  cfg.mode = top.mode ? top.mode->value : Mode::p2p;
  const SourceLocation mode_at = top.mode ? top.mode->where : SourceLocation{};
  cfg.remote_random = top.remote_random.has_value();
  if (top.resolv_retry)
    cfg.resolv_retry = top.resolv_retry->value;
  else
    cfg.resolv_retry = std::nullopt;
  cfg.plugins = top.plugins;
  if (top.dev) cfg.dev = top.dev->value;
  if (top.verb) cfg.verb = top.verb->value;
  if (top.status) cfg.status = top.status->value;
  if (top.private_key) cfg.private_key = top.private_key->value;
  if (top.control_socket) cfg.control_socket = top.control_socket->value;
  if (top.user) cfg.user = top.user->value;
  if (top.group) cfg.group = top.group->value;
  cfg.peers = top.peers;
  // A key names one peer: a second 'peer' line with it is a mistake, not a merge.
  std::map<Key, const Peer*> seen_keys;
  for (const auto& p : cfg.peers) {
    if (auto [it, fresh] = seen_keys.emplace(p.public_key, &p); !fresh) {
      diag.error(p.where,
                 "peer " + key_to_base64(p.public_key) + " is already given at " + it->second->where.to_string());
    }
  }
  cfg.ifconfig = top.ifconfig;
  cfg.route_allowed_ips = top.route_allowed_ips.has_value();
  if (top.tun_mtu) cfg.tun_mtu = top.tun_mtu->value;
  if (top.max_clients) cfg.max_clients = static_cast<std::size_t>(top.max_clients->value);
  if (top.fwmark) cfg.fwmark = static_cast<std::uint32_t>(top.fwmark->value);
  if (top.sndbuf) cfg.sndbuf = top.sndbuf->value;
  if (top.crypto_threads) cfg.crypto_threads = top.crypto_threads->value;
  if (top.rcvbuf) cfg.rcvbuf = top.rcvbuf->value;
  if (top.offload) cfg.offload = top.offload->value;
  if (top.http_proxy) cfg.http_proxy = top.http_proxy->value;
  if (top.socks_proxy) cfg.socks_proxy = top.socks_proxy->value;
  if (cfg.http_proxy && cfg.socks_proxy) {
    diag.error(top.socks_proxy->where,
               "give 'http-proxy' (at " + top.http_proxy->where.to_string() + ") or 'socks-proxy', not both");
  }
  cfg.files = files;

  const Proto top_proto = top.proto ? top.proto->value : Proto::udp;
  const SourceLocation proto_at = top.proto ? top.proto->where : mode_at;

  if (!connections.empty() && !top.remotes.empty()) {
    diag.error(top.remotes.front().where,
               "'remote' outside <connection> while <connection> blocks exist: move it into a block");
  }

  if (cfg.mode == Mode::server) {
    if (!top.remotes.empty() || !connections.empty()) {
      diag.error(!top.remotes.empty() ? top.remotes.front().where : connections.front().where,
                 "'mode server' takes no 'remote' or <connection>: clients connect to it "
                 "(use 'mode client' or 'mode p2p' to connect out)");
    }
    if (top_proto == Proto::tcp_client || top_proto == Proto::udp_client) {
      diag.error(proto_at, "'proto " + std::string(to_string(top_proto)) +
                               "' cannot serve: a server uses udp, tcp, udp-server or tcp-server");
    }
    if (listens.empty()) {
      cfg.listens.push_back(make_listen(top, nullptr));
    } else {
      for (const auto& l : listens) cfg.listens.push_back(make_listen(top, &l));
    }
    for (std::size_t i = 0; i < cfg.listens.size(); ++i) {
      const Proto p = cfg.listens[i].proto;
      if (p == Proto::tcp_client || p == Proto::udp_client) {
        diag.error(cfg.listens[i].where, "a <listen> block cannot use 'proto " + std::string(to_string(p)) + "'");
      }
    }
    check_listen_clashes(cfg.listens);
    return cfg;
  }

  if (!listens.empty()) {
    diag.error(listens.front().where,
               "<listen> blocks need 'mode server' (this is mode " + std::string(to_string(cfg.mode)) + ")");
  }
  if (connections.empty()) {
    cfg.connections.push_back(make_connection(top, nullptr));
  } else {
    for (const auto& b : connections) cfg.connections.push_back(make_connection(top, &b));
  }
  bool any_remote = false;
  for (const auto& c : cfg.connections) any_remote = any_remote || !c.remotes.empty();
  for (const auto& c : cfg.connections) {
    const SourceLocation at = c.where.known() ? c.where : proto_at;
    if (cfg.mode == Mode::client) {
      if (c.proto == Proto::tcp_server || c.proto == Proto::udp_server) {
        diag.error(at, "'proto " + std::string(to_string(c.proto)) +
                           "' cannot connect out in 'mode client' "
                           "(use udp, tcp, udp-client or tcp-client)");
      }
    } else {  // p2p
      if (c.proto == Proto::tcp) {
        diag.error(at, "'proto tcp' in p2p mode is ambiguous: one peer says 'tcp-server', the other 'tcp-client'");
      }
      if ((c.proto == Proto::tcp_client || c.proto == Proto::udp_client) && c.remotes.empty()) {
        diag.error(at, "'proto " + std::string(to_string(c.proto)) + "' needs a 'remote' to connect to");
      }
    }
    // What travels through the proxy is what the remotes use (each may name its own proto).
    bool udp_remote = c.remotes.empty() && transport_of(c.proto) == Transport::udp;
    for (const auto& r : c.remotes) udp_remote = udp_remote || transport_of(r.proto) == Transport::udp;
    if (cfg.http_proxy && udp_remote) {
      diag.error(top.http_proxy->where,
                 "'http-proxy' carries TCP only: use 'proto tcp-client' "
                 "(or 'proto tcp' with 'mode client', or 'remote HOST PORT tcp')");
    }
    for (const auto& r : c.remotes) {
      auto a = net::Address::parse(r.host);
      if (a && c.family != FamilyChoice::both && family_hint(c.family) != a->family()) {
        diag.error(r.where, "remote " + r.host + " is " + std::string(net::to_string(a->family())) + " but '" +
                                (c.family == FamilyChoice::v4 ? "ipv4" : "ipv6") + "' is set");
      }
    }
  }
  if (cfg.mode == Mode::client && !any_remote) {
    diag.error(mode_at, "'mode client' needs at least one 'remote'");
  }
  // p2p peers with a listening role also listen (udp binds every local result).
  if (cfg.mode == Mode::p2p && cfg.connections.size() == 1) {
    const Connection& c = cfg.connections.front();
    if ((c.proto == Proto::udp || c.proto == Proto::udp_server || c.proto == Proto::tcp_server) &&
        c.bind != BindChoice::nobind) {
      Listen l = make_listen(top, nullptr);
      l.proto = c.proto;
      cfg.listens.push_back(l);
    }
  }
  return cfg;
}

void Loader::check_listen_clashes(const std::vector<Listen>& listens) {
  struct Claim {
    Transport transport;
    net::Family family;
    std::optional<net::Address> address;  // nullopt: wildcard
    std::uint16_t port;
    const Listen* from;
  };
  std::vector<Claim> claims;
  for (const auto& l : listens) {
    const Transport t = transport_of(l.proto);
    std::vector<Claim> mine;
    if (l.locals.empty()) {
      for (net::Family f : {net::Family::v4, net::Family::v6}) {
        if (l.family == FamilyChoice::both || family_hint(l.family) == f) {
          mine.push_back({t, f, std::nullopt, l.port, &l});
        }
      }
    } else {
      for (const auto& local : l.locals) {
        auto a = net::Address::parse(local);
        if (!a) continue;  // a name: checked once it resolves
        mine.push_back({t, a->family(), a->is_unspecified() ? std::nullopt : std::optional(*a), l.port, &l});
      }
    }
    for (const auto& m : mine) {
      for (const auto& c : claims) {
        if (c.from == m.from || c.transport != m.transport || c.family != m.family || c.port != m.port) continue;
        if (c.address && m.address && *c.address != *m.address) continue;
        const std::string what = (m.address ? net::Endpoint{*m.address, m.port}.to_string()
                                            : net::Endpoint{net::Address::any(m.family), m.port}.to_string()) +
                                 "/" + std::string(to_string(m.transport));
        diag.error(m.from->where, "this <listen> would take " + what + ", which the <listen> at " +
                                      c.from->where.to_string() + " already takes");
        return;
      }
    }
    claims.insert(claims.end(), mine.begin(), mine.end());
  }
}

}  // namespace duet::config::detail
