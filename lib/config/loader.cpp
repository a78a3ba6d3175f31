// Directives to a validated Config. Each directive is checked where it is read (arity,
// numbers, names); the whole is checked once everything is read (contradictions, the
// "Socket Rework" rules that need several options, listen-block clashes).
#include "duet/config/loader.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "duet/config/lexer.hpp"
#include "duet/policy/compatibility.hpp"
#include "duet/policy/remote_order.hpp"
#include "duet/tunnel/crypto.hpp"

namespace duet::config {

namespace {

constexpr std::size_t kMaxIncludeDepth = 16;
constexpr std::uintmax_t kMaxFileSize = 1 << 20;

template <typename T>
struct Set {
  T value;
  SourceLocation where;
};
template <typename T>
using Opt = std::optional<Set<T>>;

/// What one scope (top level, a <connection>, a <listen>) says, before defaults.
struct Raw {
  Opt<Proto> proto;
  Opt<bool> ipv4, ipv6, bind, nobind, remote_random, route_allowed_ips;
  Opt<Mode> mode;
  std::vector<Remote> remotes;  // port 0 / proto unset resolved later
  std::vector<std::optional<Proto>> remote_protos;
  std::vector<bool> remote_port_given;
  std::vector<Set<std::string>> locals;
  Opt<std::uint16_t> port, lport, rport;
  Opt<net::Duration> connect_timeout, server_poll_timeout, happy_eyeballs_delay;
  Opt<std::pair<net::Duration, net::Duration>> connect_retry, keepalive;
  Opt<std::optional<net::Duration>> resolv_retry;
  std::vector<Plugin> plugins;
  Opt<Proxy> http_proxy, socks_proxy;
  Opt<std::string> dev, status, private_key, control_socket, user, group;
  std::vector<Peer> peers;
  std::vector<net::Prefix> ifconfig;
  Opt<int> tun_mtu;
  Opt<Config::Offloads> offload;
  Opt<int> verb;
  SourceLocation where;
};

enum Context : unsigned { kTop = 1, kConnection = 2, kListen = 4 };

class Loader;
using Apply = void (*)(Loader&, Raw&, const Directive&);

struct Spec {
  const char* name;
  int min_args;
  int max_args;  // -1: any
  unsigned contexts;
  Apply apply;
  const char* usage;
};

SourceLocation at_arg(const Directive& d, std::size_t i) {
  SourceLocation w = d.where;
  if (i < d.args.size() && d.args[i].column > 0) w.column = d.args[i].column;
  if (i < d.args.size() && d.args[i].line > 0) {
    w.line = d.args[i].line;
    w.text = d.args[i].text;
  }
  return w;
}

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
      {"udp", Proto::udp},           {"tcp", Proto::tcp},
      {"udp-server", Proto::udp_server}, {"udp-client", Proto::udp_client},
      {"tcp-server", Proto::tcp_server}, {"tcp-client", Proto::tcp_client},
  };
  auto it = names.find(s);
  if (it == names.end()) return std::nullopt;
  return it->second;
}

class Loader {
public:
  Diagnostics diag;
  std::vector<std::string> files;

  // --- numbers ------------------------------------------------------------------------
  std::optional<long long> number(const Directive& d, std::size_t i, long long lo, long long hi,
                                  const char* what) {
    const std::string& t = d.args[i].text;
    long long v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc{} || p != t.data() + t.size() || v < lo || v > hi) {
      diag.error(at_arg(d, i), std::string(what) + " must be a whole number from " +
                                   std::to_string(lo) + " to " + std::to_string(hi) +
                                   ", not '" + t + "'");
      return std::nullopt;
    }
    return v;
  }
  std::optional<std::uint16_t> port(const Directive& d, std::size_t i) {
    auto v = number(d, i, 1, 65535, "a port");
    if (!v) return std::nullopt;
    return static_cast<std::uint16_t>(*v);
  }
  std::optional<net::Duration> seconds(const Directive& d, std::size_t i, long long lo,
                                       long long hi) {
    auto v = number(d, i, lo, hi, ("'" + d.name + "' (seconds)").c_str());
    if (!v) return std::nullopt;
    return std::chrono::seconds(*v);
  }
  std::optional<Proto> proto(const Directive& d, std::size_t i) {
    const std::string& t = d.args[i].text;
    if (auto p = parse_proto(t)) return p;
    if (auto advice = removed_proto_advice(t)) {
      diag.error(at_arg(d, i), "'" + t + "' is no longer a proto: " + *advice);
    } else {
      diag.error(at_arg(d, i), "unknown proto '" + t +
                                   "' (udp, tcp, udp-server, udp-client, tcp-server, tcp-client)");
    }
    return std::nullopt;
  }

  // --- reading ------------------------------------------------------------------------
  void read_directives(const std::vector<Directive>& ds, Raw& top, std::vector<Raw>& connections,
                       std::vector<Raw>& listens, std::vector<std::string>& include_stack);
  void apply(const Directive& d, Raw& raw, Context ctx);
  void include(const Directive& d, Raw& top, std::vector<Raw>& connections,
               std::vector<Raw>& listens, std::vector<std::string>& include_stack);

  // --- building -----------------------------------------------------------------------
  Config build(const Raw& top, const std::vector<Raw>& connections, const std::vector<Raw>& listens);
  FamilyChoice family(const Raw& r, const Raw* base);
  Connection make_connection(const Raw& top, const Raw* block, Mode mode);
  Listen make_listen(const Raw& top, const Raw* block);
  void check_listen_clashes(const std::vector<Listen>& listens);
  void check_literal_compatibility(const Connection& c, Mode mode);
};

// --- the directives -----------------------------------------------------------------------

void set_flag(Opt<bool>& o, const Directive& d) { o = Set<bool>{true, d.where}; }

bool valid_key(const std::string& text) { return tunnel::key_from_base64(text).has_value(); }

const Spec kSpecs[] = {
    {"proto", 1, 1, kTop | kConnection | kListen,
     [](Loader& l, Raw& r, const Directive& d) {
       if (auto p = l.proto(d, 0)) r.proto = Set<Proto>{*p, d.where};
     },
     "proto udp|tcp|udp-server|udp-client|tcp-server|tcp-client"},
    {"ipv4", 0, 0, kTop | kConnection | kListen,
     [](Loader&, Raw& r, const Directive& d) { set_flag(r.ipv4, d); }, "ipv4"},
    {"ipv6", 0, 0, kTop | kConnection | kListen,
     [](Loader&, Raw& r, const Directive& d) { set_flag(r.ipv6, d); }, "ipv6"},
    {"mode", 1, 1, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       const std::string& m = d.args[0].text;
       if (m == "p2p") r.mode = Set<Mode>{Mode::p2p, d.where};
       else if (m == "client") r.mode = Set<Mode>{Mode::client, d.where};
       else if (m == "server") r.mode = Set<Mode>{Mode::server, d.where};
       else l.diag.error(at_arg(d, 0), "unknown mode '" + m + "' (p2p, client, server)");
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
    {"remote-random", 0, 0, kTop,
     [](Loader&, Raw& r, const Directive& d) { set_flag(r.remote_random, d); }, "remote-random"},
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
    {"bind", 0, 0, kTop | kConnection,
     [](Loader&, Raw& r, const Directive& d) { set_flag(r.bind, d); }, "bind"},
    {"nobind", 0, 0, kTop | kConnection,
     [](Loader&, Raw& r, const Directive& d) { set_flag(r.nobind, d); }, "nobind"},
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
         l.diag.error(at_arg(d, 1), "connect-retry: the maximum (" + d.args[1].text +
                                        " s) is below the first delay (" + d.args[0].text + " s)");
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
       r.http_proxy = Set<Proxy>{{Proxy::Kind::http, d.args[0].text, *p,
                                  d.args.size() > 2 ? d.args[2].text : "", d.where},
                                 d.where};
     },
     "http-proxy HOST PORT [AUTHFILE]"},
    {"socks-proxy", 2, 3, kTop | kConnection,
     [](Loader& l, Raw& r, const Directive& d) {
       auto p = l.port(d, 1);
       if (!p) return;
       r.socks_proxy = Set<Proxy>{{Proxy::Kind::socks, d.args[0].text, *p,
                                   d.args.size() > 2 ? d.args[2].text : "", d.where},
                                  d.where};
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
    {"status", 1, 1, kTop,
     [](Loader&, Raw& r, const Directive& d) { r.status = Set<std::string>{d.args[0].text, d.where}; },
     "status FILE"},
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
    {"peer", 2, 2, kTop,
     [](Loader& l, Raw& r, const Directive& d) {
       if (!valid_key(d.args[0].text)) {
         l.diag.error(at_arg(d, 0), "'" + d.args[0].text + "' is not a WireGuard public key (44 characters of base64)");
         return;
       }
       Peer p;
       p.public_key = d.args[0].text;
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
       r.peers.push_back(std::move(p));
     },
     "peer PUBLIC_KEY ALLOWED_IP[,ALLOWED_IP...]"},
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
    {"route-allowed-ips", 0, 0, kTop,
     [](Loader&, Raw& r, const Directive& d) { set_flag(r.route_allowed_ips, d); }, "route-allowed-ips"},
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
           if (word == "tun") o.tun = true;
           else if (word == "gso") o.gso = true;
           else if (word == "gro") o.gro = true;
           else {
             l.diag.error(at_arg(d, 0), "'offload' takes all, none, or a list of tun, gso and gro (such as tun,gro), not '" +
                                            word + "'");
             return;
           }
           start = end + 1;
         }
       }
       r.offload = Set<Config::Offloads>{o, d.where};
     },
     "offload all|none|tun,gso,gro"},
    {"control-socket", 1, 1, kTop,
     [](Loader&, Raw& r, const Directive& d) { r.control_socket = Set<std::string>{d.args[0].text, d.where}; },
     "control-socket PATH"},
    {"user", 1, 1, kTop,
     [](Loader&, Raw& r, const Directive& d) { r.user = Set<std::string>{d.args[0].text, d.where}; },
     "user NAME"},
    {"group", 1, 1, kTop,
     [](Loader&, Raw& r, const Directive& d) { r.group = Set<std::string>{d.args[0].text, d.where}; },
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
    case kTop: return "the top level";
    case kConnection: return "<connection>";
    case kListen: return "<listen>";
  }
  return "?";
}

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
    diag.error(w, std::string(n < spec->min_args ? "missing argument" : "too many arguments") +
                      " for '" + d.name + "' (usage: " + spec->usage + ")");
    return;
  }
  spec->apply(*this, raw, d);
}

void Loader::read_directives(const std::vector<Directive>& ds, Raw& top,
                             std::vector<Raw>& connections, std::vector<Raw>& listens,
                             std::vector<std::string>& include_stack) {
  for (const auto& d : ds) {
    if (d.is_block) {
      if (d.name == "connection" || d.name == "listen") {
        Raw block;
        block.where = d.where;
        const Context ctx = d.name == "connection" ? kConnection : kListen;
        for (const auto& inner : d.block) apply(inner, block, ctx);
        (ctx == kConnection ? connections : listens).push_back(std::move(block));
      } else {
        diag.error(d.where, "unknown block <" + d.name + "> (known: <connection>, <listen>)");
      }
      continue;
    }
    if (d.name == "config") {
      include(d, top, connections, listens, include_stack);
      continue;
    }
    apply(d, top, kTop);
  }
}

void Loader::include(const Directive& d, Raw& top, std::vector<Raw>& connections,
                     std::vector<Raw>& listens, std::vector<std::string>& include_stack) {
  if (d.args.size() != 1) {
    diag.error(d.where, "usage: config FILE");
    return;
  }
  std::filesystem::path path = d.args[0].text;
  // Relative includes are relative to the including file.
  if (path.is_relative() && !include_stack.empty()) {
    path = std::filesystem::path(include_stack.back()).parent_path() / path;
  }
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(path, ec).string();
  if (std::find(include_stack.begin(), include_stack.end(), canonical) != include_stack.end()) {
    diag.error(at_arg(d, 0), "'" + d.args[0].text + "' is already being read (config cycle: " +
                                 [&] {
                                   std::string chain;
                                   for (const auto& f : include_stack) chain += f + " -> ";
                                   return chain + canonical;
                                 }() + ")");
    return;
  }
  if (include_stack.size() >= kMaxIncludeDepth) {
    diag.error(at_arg(d, 0), "config files nested deeper than " + std::to_string(kMaxIncludeDepth));
    return;
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    diag.error(at_arg(d, 0), "cannot read config file '" + path.string() + "': " +
                                 (std::filesystem::exists(path, ec) ? "not a regular file"
                                                                    : "no such file"));
    return;
  }
  if (std::filesystem::file_size(path, ec) > kMaxFileSize) {
    diag.error(at_arg(d, 0), "config file '" + path.string() + "' is larger than 1 MiB");
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  if (!in && !in.eof()) {
    diag.error(at_arg(d, 0), "cannot read config file '" + path.string() + "'");
    return;
  }
  files.push_back(path.string());
  include_stack.push_back(canonical);
  const auto ds = lex(buf.str(), path.string(), diag);
  read_directives(ds, top, connections, listens, include_stack);
  include_stack.pop_back();
}

// --- building the Config --------------------------------------------------------------------

FamilyChoice Loader::family(const Raw& r, const Raw* base) {
  auto ipv4 = r.ipv4 ? r.ipv4 : (base ? base->ipv4 : std::nullopt);
  auto ipv6 = r.ipv6 ? r.ipv6 : (base ? base->ipv6 : std::nullopt);
  if (ipv4 && ipv6) {
    diag.error(ipv6->where, "'ipv6' contradicts 'ipv4' at " + ipv4->where.to_string() +
                                ": give one of them to force a family, or neither for both");
    return FamilyChoice::both;
  }
  if (ipv4) return FamilyChoice::v4;
  if (ipv6) return FamilyChoice::v6;
  return FamilyChoice::both;
}

template <typename T>
const Opt<T>& pick(const Opt<T>& inner, const Opt<T>& outer) {
  return inner ? inner : outer;
}

Connection Loader::make_connection(const Raw& top, const Raw* block, Mode mode) {
  const Raw empty;
  const Raw& b = block ? *block : empty;
  Connection c;
  c.where = block ? block->where : SourceLocation{};
  if (auto& p = pick(b.proto, top.proto)) c.proto = p->value;
  c.family = family(b, &top);
  for (const auto& l : (b.locals.empty() ? top.locals : b.locals)) c.locals.push_back(l.value);
  if (auto& p = pick(b.lport, top.lport)) {
    c.lport = p->value;
    c.lport_set = true;
  } else if (auto& q = pick(b.port, top.port)) {
    c.lport = q->value;
    c.lport_set = true;
  }
  const auto& bind = pick(b.bind, top.bind);
  const auto& nobind = pick(b.nobind, top.nobind);
  if (bind && nobind) {
    diag.error(bind->where.line >= nobind->where.line ? bind->where : nobind->where,
               "'bind' and 'nobind' contradict each other (the other is at " +
                   (bind->where.line >= nobind->where.line ? nobind->where : bind->where).to_string() + ")");
  } else if (bind) {
    c.bind = BindChoice::bind;
  } else if (nobind) {
    c.bind = BindChoice::nobind;
  }
  if (auto& t = pick(b.connect_timeout, top.connect_timeout)) c.connect_timeout = t->value;
  if (auto& t = pick(b.server_poll_timeout, top.server_poll_timeout)) c.server_poll_timeout = t->value;
  if (auto& r = pick(b.connect_retry, top.connect_retry)) {
    c.connect_retry = r->value.first;
    c.connect_retry_max = r->value.second;
  }
  if (auto& k = pick(b.keepalive, top.keepalive)) {
    c.keepalive_interval = k->value.first;
    c.keepalive_timeout = k->value.second;
  }
  if (auto& h = pick(b.happy_eyeballs_delay, top.happy_eyeballs_delay)) {
    c.happy_eyeballs_delay = h->value;
    const auto clamped = policy::clamp_attempt_delay(h->value);
    if (clamped != h->value) {
      diag.warning(h->where, "happy-eyeballs-delay " + std::to_string(net::to_ms(h->value) > 0 ? static_cast<long long>(net::to_ms(h->value)) : 0) +
                                 " ms is outside 100..2000 ms (RFC 8305); using " +
                                 std::to_string(static_cast<long long>(net::to_ms(clamped))) + " ms");
      c.happy_eyeballs_delay = clamped;
    }
  }
  const auto& rport = pick(b.rport, top.rport);
  const auto& port = pick(b.port, top.port);
  const Raw& rr = block ? b : top;
  for (std::size_t i = 0; i < rr.remotes.size(); ++i) {
    Remote r = rr.remotes[i];
    if (!rr.remote_port_given[i]) r.port = rport ? rport->value : port ? port->value : kDefaultPort;
    r.proto = rr.remote_protos[i].value_or(c.proto);
    c.remotes.push_back(r);
  }
  (void)mode;
  return c;
}

Listen Loader::make_listen(const Raw& top, const Raw* block) {
  const Raw empty;
  const Raw& b = block ? *block : empty;
  Listen l;
  l.where = block ? block->where : (top.proto ? top.proto->where : SourceLocation{});
  if (auto& p = pick(b.proto, top.proto)) l.proto = p->value;
  l.family = family(b, &top);
  for (const auto& x : (b.locals.empty() ? top.locals : b.locals)) l.locals.push_back(x.value);
  if (auto& p = pick(b.lport, top.lport)) l.port = p->value;
  else if (auto& q = pick(b.port, top.port)) l.port = q->value;
  return l;
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
        const std::string what =
            (m.address ? net::Endpoint{*m.address, m.port}.to_string()
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

void Loader::check_literal_compatibility(const Connection& c, Mode mode) {
  // Which families would be bound: literal locals say it, else --ipv4/--ipv6.
  if (c.bind == BindChoice::nobind || (mode == Mode::client && c.bind != BindChoice::bind)) return;
  std::vector<net::Family> bound;
  for (const auto& local : c.locals) {
    auto a = net::Address::parse(local);
    if (!a) return;  // a name: checked after it resolves
    if (std::find(bound.begin(), bound.end(), a->family()) == bound.end()) bound.push_back(a->family());
    if (c.family != FamilyChoice::both && family_hint(c.family) != a->family()) {
      diag.error(c.where.known() ? c.where : c.remotes.empty() ? c.where : c.remotes.front().where,
                 "local " + local + " is " + std::string(net::to_string(a->family())) + " but '" +
                     std::string(c.family == FamilyChoice::v4 ? "ipv4" : "ipv6") + "' is set");
    }
  }
  if (c.locals.empty()) {
    if (c.family == FamilyChoice::both) return;
    bound.push_back(*family_hint(c.family));
  }
  std::vector<net::Address> literals;
  for (const auto& r : c.remotes) {
    auto a = net::Address::parse(r.host);
    if (!a) return;  // names are checked after resolution, with the same words
    literals.push_back(*a);
  }
  const auto check = policy::check_bind_remote(bound, literals);
  const SourceLocation where = c.remotes.empty() ? c.where : c.remotes.front().where;
  if (check.verdict == policy::Compatibility::error) diag.error(where, check.message);
  if (check.verdict == policy::Compatibility::warning) diag.warning(where, check.message);
}

Config Loader::build(const Raw& top, const std::vector<Raw>& connections,
                     const std::vector<Raw>& listens) {
  Config cfg;
  cfg.mode = top.mode ? top.mode->value : Mode::p2p;
  const SourceLocation mode_at = top.mode ? top.mode->where : SourceLocation{};
  cfg.remote_random = top.remote_random.has_value();
  if (top.resolv_retry) cfg.resolv_retry = top.resolv_retry->value;
  else cfg.resolv_retry = std::nullopt;
  cfg.plugins = top.plugins;
  if (top.dev) cfg.dev = top.dev->value;
  if (top.verb) cfg.verb = top.verb->value;
  if (top.status) cfg.status_file = top.status->value;
  if (top.private_key) cfg.private_key = top.private_key->value;
  if (top.control_socket) cfg.control_socket = top.control_socket->value;
  if (top.user) cfg.user = top.user->value;
  if (top.group) cfg.group = top.group->value;
  cfg.peers = top.peers;
  cfg.ifconfig = top.ifconfig;
  cfg.route_allowed_ips = top.route_allowed_ips.has_value();
  if (top.tun_mtu) cfg.tun_mtu = top.tun_mtu->value;
  if (top.offload) cfg.offload = top.offload->value;
  if (top.http_proxy) cfg.http_proxy = top.http_proxy->value;
  if (top.socks_proxy) cfg.socks_proxy = top.socks_proxy->value;
  if (cfg.http_proxy && cfg.socks_proxy) {
    diag.error(top.socks_proxy->where, "give 'http-proxy' (at " + top.http_proxy->where.to_string() +
                                           ") or 'socks-proxy', not both");
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
    diag.error(listens.front().where, "<listen> blocks need 'mode server' (this is mode " +
                                          std::string(to_string(cfg.mode)) + ")");
  }
  if (connections.empty()) {
    cfg.connections.push_back(make_connection(top, nullptr, cfg.mode));
  } else {
    for (const auto& b : connections) cfg.connections.push_back(make_connection(top, &b, cfg.mode));
  }
  bool any_remote = false;
  for (const auto& c : cfg.connections) any_remote = any_remote || !c.remotes.empty();
  for (const auto& c : cfg.connections) {
    const SourceLocation at = c.where.known() ? c.where : proto_at;
    if (cfg.mode == Mode::client) {
      if (c.proto == Proto::tcp_server || c.proto == Proto::udp_server) {
        diag.error(at, "'proto " + std::string(to_string(c.proto)) + "' cannot connect out in 'mode client' "
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
      diag.error(top.http_proxy->where, "'http-proxy' carries TCP only: use 'proto tcp-client' "
                                        "(or 'proto tcp' with 'mode client', or 'remote HOST PORT tcp')");
    }
    for (const auto& r : c.remotes) {
      auto a = net::Address::parse(r.host);
      if (a && c.family != FamilyChoice::both && family_hint(c.family) != a->family()) {
        diag.error(r.where, "remote " + r.host + " is " + std::string(net::to_string(a->family())) +
                                " but '" + (c.family == FamilyChoice::v4 ? "ipv4" : "ipv6") + "' is set");
      }
    }
    check_literal_compatibility(c, cfg.mode);
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

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

LoadResult finish(Loader& loader, const std::vector<Directive>& first, const std::string& first_name,
                  const std::vector<Directive>& command_line) {
  Raw top;
  std::vector<Raw> connections, listens;
  std::vector<std::string> stack;
  if (!first_name.empty()) {
    std::error_code ec;
    stack.push_back(std::filesystem::weakly_canonical(first_name, ec).string());
  }
  loader.read_directives(first, top, connections, listens, stack);
  stack.clear();
  loader.read_directives(command_line, top, connections, listens, stack);
  LoadResult result;
  result.config = loader.build(top, connections, listens);
  result.diagnostics = loader.diag;
  return result;
}

}  // namespace

LoadResult load_text(std::string_view text, const std::string& name,
                     const std::vector<std::string>& args) {
  Loader loader;
  loader.files.push_back(name);
  const auto ds = lex(text, name, loader.diag);
  const auto cl = lex_command_line(args, loader.diag);
  return finish(loader, ds, name, cl);
}

LoadResult load_command_line(const std::vector<std::string>& args) {
  Loader loader;
  const auto cl = lex_command_line(args, loader.diag);
  return finish(loader, {}, "", cl);
}

std::vector<std::string> known_directives() {
  std::vector<std::string> out;
  for (const auto& s : kSpecs) out.emplace_back(s.name);
  return out;
}

std::string suggest_directive(const std::string& name) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(2, name.size() / 3) + 1;
  for (const auto& s : kSpecs) {
    const std::size_t d = edit_distance(name, s.name);
    if (d < best_d) {
      best_d = d;
      best = s.name;
    }
  }
  return best;
}

std::string_view to_string(Proto p) {
  switch (p) {
    case Proto::udp: return "udp";
    case Proto::tcp: return "tcp";
    case Proto::udp_server: return "udp-server";
    case Proto::udp_client: return "udp-client";
    case Proto::tcp_server: return "tcp-server";
    case Proto::tcp_client: return "tcp-client";
  }
  return "?";
}
std::string_view to_string(Transport t) { return t == Transport::udp ? "udp" : "tcp"; }
std::string_view to_string(Mode m) {
  switch (m) {
    case Mode::p2p: return "p2p";
    case Mode::client: return "client";
    case Mode::server: return "server";
  }
  return "?";
}
std::string_view to_string(FamilyChoice f) {
  switch (f) {
    case FamilyChoice::both: return "both";
    case FamilyChoice::v4: return "ipv4";
    case FamilyChoice::v6: return "ipv6";
  }
  return "?";
}
Transport transport_of(Proto p) {
  return (p == Proto::udp || p == Proto::udp_server || p == Proto::udp_client) ? Transport::udp
                                                                                : Transport::tcp;
}
std::optional<net::Family> family_hint(FamilyChoice f) {
  if (f == FamilyChoice::v4) return net::Family::v4;
  if (f == FamilyChoice::v6) return net::Family::v6;
  return std::nullopt;
}

}  // namespace duet::config
