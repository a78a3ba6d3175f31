// The directive table: every directive, where it may appear, how many arguments it
// takes and how it is read into a scope. Arguments are checked here (numbers, names,
// keys); what needs several directives is checked in validation.cpp.
#include <charconv>
#include <cstdlib>
#include <map>

#include "duet/config/loader.hpp"
#include "loader_state.hpp"

namespace duet::config::detail {

SourceLocation at_arg(const Directive& d, std::size_t i) {
  SourceLocation w = d.where;
  if (i < d.args.size() && d.args[i].column > 0) w.column = d.args[i].column;
  if (i < d.args.size() && d.args[i].line > 0) {
    w.line = d.args[i].line;
    w.text = d.args[i].text;
  }
  return w;
}

namespace {

using Apply = void (*)(Loader&, Raw&, const Directive&);

struct Spec {
  const char* name;
  int min_args;
  int max_args;  // -1: any
  unsigned contexts;
  Apply apply;
  const char* usage;
};

/// What to write instead of a proto name the note removed.
std::optional<std::string> removed_proto_advice(const std::string& p) {
  static const std::map<std::string, std::pair<std::string, std::string>> removed = {
      {"udp4", {"udp", "--ipv4"}},
      {"udp6", {"udp", "--ipv6"}},
      {"tcp4", {"tcp", "--ipv4"}},
      {"tcp6", {"tcp", "--ipv6"}},
      {"tcp4-server", {"tcp-server", "--ipv4"}},
      {"tcp6-server", {"tcp-server", "--ipv6"}},
      {"tcp4-client", {"tcp-client", "--ipv4"}},
      {"tcp6-client", {"tcp-client", "--ipv6"}},
      {"udp4-server", {"udp-server", "--ipv4"}},
      {"udp6-server", {"udp-server", "--ipv6"}},
      {"udp4-client", {"udp-client", "--ipv4"}},
      {"udp6-client", {"udp-client", "--ipv6"}},
  };
  auto it = removed.find(p);
  if (it == removed.end()) return std::nullopt;
  return "use 'proto " + it->second.first + "' with '" + it->second.second + "'";
}

std::optional<Proto> parse_proto(const std::string& s) {
  static const std::map<std::string, Proto> names = {
      {"udp", Proto::udp},
      {"tcp", Proto::tcp},
      {"udp-server", Proto::udp_server},
      {"udp-client", Proto::udp_client},
      {"tcp-server", Proto::tcp_server},
      {"tcp-client", Proto::tcp_client},
  };
  auto it = names.find(s);
  if (it == names.end()) return std::nullopt;
  return it->second;
}

}  // namespace

std::optional<long long> Loader::number(const Directive& d, std::size_t i, long long lo, long long hi,
                                        const char* what) {
  const std::string& t = d.args[i].text;
  long long v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc{} || p != t.data() + t.size() || v < lo || v > hi) {
    diag.error(at_arg(d, i), std::string(what) + " must be a whole number from " + std::to_string(lo) + " to " +
                                 std::to_string(hi) + ", not '" + t + "'");
    return std::nullopt;
  }
  return v;
}

std::optional<std::uint16_t> Loader::port(const Directive& d, std::size_t i) {
  auto v = number(d, i, 1, 65535, "a port");
  if (!v) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

std::optional<net::Duration> Loader::seconds(const Directive& d, std::size_t i, long long lo, long long hi) {
  auto v = number(d, i, lo, hi, ("'" + d.name + "' (seconds)").c_str());
  if (!v) return std::nullopt;
  return std::chrono::seconds(*v);
}

std::optional<Proto> Loader::proto(const Directive& d, std::size_t i) {
  const std::string& t = d.args[i].text;
  if (auto p = parse_proto(t)) return p;
  if (auto advice = removed_proto_advice(t)) {
    diag.error(at_arg(d, i), "'" + t + "' is no longer a proto: " + *advice);
  } else {
    diag.error(at_arg(d, i), "unknown proto '" + t + "' (udp, tcp, udp-server, udp-client, tcp-server, tcp-client)");
  }
  return std::nullopt;
}

namespace {

// --- the directives -----------------------------------------------------------------------

void set_flag(Opt<bool>& o, const Directive& d) { o = Set<bool>{true, d.where}; }

bool valid_key(const std::string& text) { return key_from_base64(text).has_value(); }

const Spec kSpecs[] = {
    {"proto", 1, 1, kTop | kConnection | kListen,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto p = l.proto(d, 0)) r.proto = Set<Proto>{*p, d.where};
     },
     "proto udp|tcp|udp-server|udp-client|tcp-server|tcp-client"},
    {"ipv4", 0, 0, kTop | kConnection | kListen, [](Loader&, Raw& r, const Directive& d) { set_flag(r.ipv4, d); },
     "ipv4"},
    {"ipv6", 0, 0, kTop | kConnection | kListen, [](Loader&, Raw& r, const Directive& d) { set_flag(r.ipv6, d); },
     "ipv6"},
    {"mode", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       const std::string& m = d.args[0].text;
       if (m == "p2p")
         r.mode = Set<Mode>{Mode::p2p, d.where};
       else if (m == "client")
         r.mode = Set<Mode>{Mode::client, d.where};
       else if (m == "server")
         r.mode = Set<Mode>{Mode::server, d.where};
       else
         l.diag.error(at_arg(d, 0), "unknown mode '" + m + "' (p2p, client, server)");
     },
     "mode p2p|client|server"},
    {"remote", 1, 3, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       Remote rem;
       rem.host = d.args[0].text;
       rem.where = d.where;
       if (rem.host.empty()) {
         l.diag.error(at_arg(d, 0), "remote host is empty");
         return;
       }
       if (rem.host.front() == '[' && rem.host.back() == ']') rem.host = rem.host.substr(1, rem.host.size() - 2);
       std::optional<Proto> proto;
       bool port_given = false;
       if (d.args.size() >= 2) {
         auto p = l.port(d, 1);
         if (!p) return;
         rem.port = *p;
         port_given = true;
       }
       if (d.args.size() >= 3) {
         proto = l.proto(d, 2);
         if (!proto) return;
       }
       r.remotes.push_back(rem);
       r.remote_protos.push_back(proto);
       r.remote_port_given.push_back(port_given);
     },
     "remote HOST [PORT [PROTO]]"},
    {"remote-random", 0, 0, kTop, [](Loader&, Raw& r, const Directive& d) { set_flag(r.remote_random, d); },
     "remote-random"},
    {"local", 1, 1, kTop | kConnection | kListen,
     [](Loader& l, Raw& r, const Directive& d) {
       std::string a = d.args[0].text;
       if (!a.empty() && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
       if (a.empty()) {
         l.diag.error(at_arg(d, 0), "local address is empty");
         return;
       }
       r.locals.push_back({a, d.where});
     },
     "local ADDRESS|NAME"},
    {"port", 1, 1, kTop | kConnection | kListen,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto p = l.port(d, 0)) r.port = Set<std::uint16_t>{*p, d.where};
     },
     "port N"},
    {"lport", 1, 1, kTop | kConnection | kListen,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto p = l.port(d, 0)) r.lport = Set<std::uint16_t>{*p, d.where};
     },
     "lport N"},
    {"rport", 1, 1, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto p = l.port(d, 0)) r.rport = Set<std::uint16_t>{*p, d.where};
     },
     "rport N"},
    {"bind", 0, 0, kTop | kConnection, [](Loader&, Raw& r, const Directive& d) { set_flag(r.bind, d); }, "bind"},
    {"nobind", 0, 0, kTop | kConnection, [](Loader&, Raw& r, const Directive& d) { set_flag(r.nobind, d); }, "nobind"},
    {"connect-timeout", 1, 1, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto s = l.seconds(d, 0, 1, 3600)) r.connect_timeout = Set<net::Duration>{*s, d.where};
     },
     "connect-timeout SECONDS"},
    {"connect-retry", 1, 2, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       auto first = l.seconds(d, 0, 0, 3600);
       std::optional<net::Duration> max = std::chrono::seconds(300);
       if (d.args.size() == 2) max = l.seconds(d, 1, 1, 86400);
       if (!first || !max) return;
       if (d.args.size() == 1) max = std::max(*max, *first);  // no maximum given: at least the first
       if (*max < *first) {
         l.diag.error(at_arg(d, 1), "connect-retry: the maximum (" + d.args[1].text + " s) is below the first delay (" +
                                        d.args[0].text + " s)");
         return;
       }
       r.connect_retry = Set<std::pair<net::Duration, net::Duration>>{{*first, *max}, d.where};
     },
     "connect-retry SECONDS [MAX_SECONDS]"},
    {"keepalive", 2, 2, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       auto interval = l.seconds(d, 0, 1, 3600);
       auto timeout = l.seconds(d, 1, 2, 86400);
       if (!interval || !timeout) return;
       if (*timeout <= *interval) {
         l.diag.error(at_arg(d, 1), "keepalive: the timeout (" + d.args[1].text +
                                        " s) must be longer than the interval (" + d.args[0].text + " s)");
         return;
       }
       r.keepalive = Set<std::pair<net::Duration, net::Duration>>{{*interval, *timeout}, d.where};
     },
     "keepalive INTERVAL_SECONDS TIMEOUT_SECONDS"},
    {"resolv-retry", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (d.args[0].text == "infinite") {
         r.resolv_retry = Set<std::optional<net::Duration>>{std::nullopt, d.where};
       } else if (auto s = l.seconds(d, 0, 0, 86400)) {
         r.resolv_retry = Set<std::optional<net::Duration>>{*s, d.where};
       }
     },
     "resolv-retry SECONDS|infinite"},
    {"server-poll-timeout", 1, 1, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto s = l.seconds(d, 0, 1, 3600)) r.server_poll_timeout = Set<net::Duration>{*s, d.where};
     },
     "server-poll-timeout SECONDS"},
    {"happy-eyeballs-delay", 1, 1, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto ms = l.number(d, 0, 0, 60000, "'happy-eyeballs-delay' (milliseconds)")) {
         r.happy_eyeballs_delay = Set<net::Duration>{std::chrono::milliseconds(*ms), d.where};
       }
     },
     "happy-eyeballs-delay MILLISECONDS (0 turns racing off)"},
    {"plugin", 1, -1, kTop,
     [](Loader&, Raw& r, const Directive& d) {
       Plugin p;
       p.path = d.args[0].text;
       for (std::size_t i = 1; i < d.args.size(); ++i) p.args.push_back(d.args[i].text);
       p.where = d.where;
       r.plugins.push_back(std::move(p));
     },
     "plugin PATH [ARGS...]"},
    {"http-proxy", 2, 3, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       auto p = l.port(d, 1);
       if (!p) return;
       r.http_proxy = Set<Proxy>{
           {Proxy::Kind::http, d.args[0].text, *p, d.args.size() > 2 ? d.args[2].text : "", d.where}, d.where};
     },
     "http-proxy HOST PORT [AUTHFILE]"},
    {"socks-proxy", 2, 3, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       auto p = l.port(d, 1);
       if (!p) return;
       r.socks_proxy = Set<Proxy>{
           {Proxy::Kind::socks, d.args[0].text, *p, d.args.size() > 2 ? d.args[2].text : "", d.where}, d.where};
     },
     "socks-proxy HOST PORT [AUTHFILE]"},
    {"dev", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       const std::string& n = d.args[0].text;
       if (n.empty() || n.size() > 15 || n.find('/') != std::string::npos) {
         l.diag.error(at_arg(d, 0), "interface name '" + n + "' must be 1 to 15 characters without '/'");
         return;
       }
       r.dev = Set<std::string>{n, d.where};
     },
     "dev NAME"},
    {"verb", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto v = l.number(d, 0, 0, 11, "'verb'")) r.verb = Set<int>{static_cast<int>(*v), d.where};
     },
     "verb 0..11"},
    {"status", 1, 2, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       StatusFile f{d.args[0].text};
       if (d.args.size() == 2) {
         auto s = l.seconds(d, 1, 1, 86400);
         if (!s) return;
         f.interval = *s;
       }
       r.status = Set<StatusFile>{f, d.where};
     },
     "status FILE [SECONDS]"},
    {"private-key", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       const std::string& k = d.args[0].text;
       // A key is 44 characters of base64 ending in '='; anything else is a file name.
       const bool looks_like_key = k.size() == 44 && k.back() == '=';
       if (looks_like_key && !valid_key(k)) {
         l.diag.error(at_arg(d, 0), "private-key is not a WireGuard key (44 characters of base64)");
         return;
       }
       r.private_key = Set<std::string>{k, d.where};
     },
     "private-key KEY|FILE"},
    {"peer", 2, 5, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (!valid_key(d.args[0].text)) {
         l.diag.error(at_arg(d, 0), "'" + d.args[0].text + "' is not a WireGuard public key (44 characters of base64)");
         return;
       }
       Peer p;
       p.public_key = *key_from_base64(d.args[0].text);
       p.where = d.where;
       std::string list = d.args[1].text;
       std::size_t start = 0;
       while (start <= list.size()) {
         const auto comma = list.find(',', start);
         const std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
         auto prefix = net::Prefix::parse(item);
         if (!prefix) {
           l.diag.error(at_arg(d, 1), "'" + item + "' is not an allowed IP prefix (like 198.18.120.0/24)");
           return;
         }
         p.allowed_ips.push_back(prefix->network());
         if (comma == std::string::npos) break;
         start = comma + 1;
       }
       // WireGuard's per-peer settings, as NAME=VALUE after the allowed IPs.
       for (std::size_t i = 2; i < d.args.size(); ++i) {
         const std::string& opt = d.args[i].text;
         const auto eq = opt.find('=');
         const std::string name = opt.substr(0, eq), value = eq == std::string::npos ? "" : opt.substr(eq + 1);
         if (name == "endpoint" && eq != std::string::npos) {
           auto e = net::Endpoint::parse(value);
           if (!e) {
             l.diag.error(at_arg(d, i), "endpoint '" + value +
                                            "' is not ADDRESS:PORT or [IPV6]:PORT (a literal: names go in 'remote')");
             return;
           }
           p.endpoint = *e;
         } else if (name == "keepalive" && eq != std::string::npos) {
           char* end = nullptr;
           const long v = std::strtol(value.c_str(), &end, 10);
           if (value.empty() || *end != '\0' || v < 0 || v > 65535) {
             l.diag.error(at_arg(d, i), "keepalive '" + value + "' is not a number of seconds from 0 to 65535");
             return;
           }
           p.persistent_keepalive = static_cast<std::uint16_t>(v);
         } else if (name == "preshared-key" && eq != std::string::npos) {
           auto k = key_from_base64(value);
           if (!k) {
             l.diag.error(at_arg(d, i), "preshared-key is not a WireGuard key (44 characters of base64)");
             return;
           }
           p.preshared = *k;
         } else {
           l.diag.error(at_arg(d, i),
                        "'" + opt + "': a peer takes endpoint=ADDR:PORT, keepalive=SECONDS, preshared-key=KEY");
           return;
         }
       }
       r.peers.push_back(std::move(p));
     },
     "peer PUBLIC_KEY ALLOWED_IP[,ALLOWED_IP...] [endpoint=ADDR:PORT] [keepalive=SECONDS] [preshared-key=KEY]"},
    {"ifconfig", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       auto p = net::Prefix::parse(d.args[0].text);
       if (!p || d.args[0].text.find('/') == std::string::npos) {
         l.diag.error(at_arg(d, 0), "ifconfig wants ADDRESS/LENGTH, not '" + d.args[0].text + "'");
         return;
       }
       r.ifconfig.push_back(*p);
     },
     "ifconfig ADDRESS/LENGTH"},
    {"route-allowed-ips", 0, 0, kTop, [](Loader&, Raw& r, const Directive& d) { set_flag(r.route_allowed_ips, d); },
     "route-allowed-ips"},
    {"fwmark", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto v = l.number(d, 0, 0, 4294967295LL, "'fwmark'")) r.fwmark = Set<long long>{*v, d.where};
     },
     "fwmark MARK"},
    {"crypto-threads", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (d.args[0].text == "auto") {
         r.crypto_threads = Set<int>{-1, d.where};
       } else if (auto v = l.number(d, 0, 0, 64, "'crypto-threads' (a count, or auto)")) {
         r.crypto_threads = Set<int>{static_cast<int>(*v), d.where};
       }
     },
     "crypto-threads N|auto"},
    {"sndbuf", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto v = l.number(d, 0, 4096, 1 << 30, "'sndbuf'")) r.sndbuf = Set<int>{static_cast<int>(*v), d.where};
     },
     "sndbuf BYTES"},
    {"rcvbuf", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto v = l.number(d, 0, 4096, 1 << 30, "'rcvbuf'")) r.rcvbuf = Set<int>{static_cast<int>(*v), d.where};
     },
     "rcvbuf BYTES"},
    {"max-clients", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto v = l.number(d, 0, 1, 10'000'000, "'max-clients'")) r.max_clients = Set<long long>{*v, d.where};
     },
     "max-clients N"},
    {"tun-mtu", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto v = l.number(d, 0, 576, 65535, "'tun-mtu'")) r.tun_mtu = Set<int>{static_cast<int>(*v), d.where};
     },
     "tun-mtu BYTES"},
    {"offload", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       const std::string& t = d.args[0].text;
       Config::Offloads o{false, false, false};
       if (t == "all") {
         o = {};
       } else if (t != "none") {
         std::size_t start = 0;
         while (start <= t.size()) {
           const auto end = std::min(t.find(',', start), t.size());
           const std::string word = t.substr(start, end - start);
           if (word == "tun")
             o.tun = true;
           else if (word == "gso")
             o.gso = true;
           else if (word == "gro")
             o.gro = true;
           else {
             l.diag.error(
                 at_arg(d, 0),
                 "'offload' takes all, none, or a list of tun, gso and gro (such as tun,gro), not '" + word + "'");
             return;
           }
           start = end + 1;
         }
       }
       r.offload = Set<Config::Offloads>{o, d.where};
     },
     "offload all|none|tun,gso,gro"},
    {"control-socket", 1, 1, kTop,
     [](Loader&, Raw& r, const Directive& d) {
       r.control_socket = Set<std::string>{d.args[0].text, d.where};
     },
     "control-socket PATH"},
    {"user", 1, 1, kTop,
     [](Loader&, Raw& r, const Directive& d) {
       r.user = Set<std::string>{d.args[0].text, d.where};
     },
     "user NAME"},
    {"group", 1, 1, kTop,
     [](Loader&, Raw& r, const Directive& d) {
       r.group = Set<std::string>{d.args[0].text, d.where};
     },
     "group NAME"},
    {"config", 1, 1, kTop, nullptr, "config FILE"},
};

const Spec* find_spec(const std::string& name) {
  for (const auto& s : kSpecs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

std::string context_name(Context c) {
  switch (c) {
    case kTop:
      return "the top level";
    case kConnection:
      return "<connection>";
    case kListen:
      return "<listen>";
  }
  return "?";
}

}  // namespace

void Loader::apply(const Directive& d, Raw& raw, Context ctx) {
  const Spec* spec = find_spec(d.name);
  if (spec == nullptr) {
    std::string msg = "unknown directive '" + d.name + "'";
    if (auto s = suggest_directive(d.name); !s.empty()) msg += "; did you mean '" + s + "'?";
    diag.error(d.where, msg);
    return;
  }
  if ((spec->contexts & ctx) == 0) {
    diag.error(d.where, "'" + d.name + "' is not allowed in " + context_name(ctx));
    return;
  }
  const int n = static_cast<int>(d.args.size());
  if (n < spec->min_args || (spec->max_args >= 0 && n > spec->max_args)) {
    SourceLocation w = n > spec->max_args && spec->max_args >= 0 ? at_arg(d, spec->max_args) : d.where;
    diag.error(w, std::string(n < spec->min_args ? "missing argument" : "too many arguments") + " for '" + d.name +
                      "' (usage: " + spec->usage + ")");
    return;
  }
  spec->apply(*this, raw, d);
}

}  // namespace duet::config::detail

namespace duet::config {

std::vector<std::string> known_directives() {
  std::vector<std::string> out;
  for (const auto& s : detail::kSpecs) out.emplace_back(s.name);
  return out;
}

}  // namespace duet::config
