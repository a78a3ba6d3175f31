// The loader's working state, shared by the files that read directives (directives.cpp),
// follow includes (includes.cpp), merge scopes (scopes.cpp) and check the whole
// (validation.cpp). Not part of the public headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/config/diagnostic.hpp"
#include "duet/config/lexer.hpp"

namespace duet::config::detail {

constexpr std::size_t kMaxIncludeDepth = 16;
constexpr std::uintmax_t kMaxFileSize = 1 << 20;

/// A value and where it was said.
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
  Opt<std::string> dev, private_key, control_socket, user, group;
  Opt<StatusFile> status;
  std::vector<Peer> peers;
  std::vector<net::Prefix> ifconfig;
  Opt<int> tun_mtu;
  Opt<long long> max_clients;
  Opt<long long> fwmark;
  Opt<int> sndbuf, rcvbuf;
  Opt<int> crypto_threads;
  Opt<Config::Offloads> offload;
  Opt<int> verb;
  SourceLocation where;
};

/// Where a directive may appear.
enum Context : unsigned { kTop = 1, kConnection = 2, kListen = 4 };

/// The location of argument `i` of `d` (the directive's own when unknown).
SourceLocation at_arg(const Directive& d, std::size_t i);

class Loader {
public:
  Diagnostics diag;
  std::vector<std::string> files;

  // --- arguments (directives.cpp) ------------------------------------------------------
  std::optional<long long> number(const Directive& d, std::size_t i, long long lo, long long hi, const char* what);
  std::optional<std::uint16_t> port(const Directive& d, std::size_t i);
  std::optional<net::Duration> seconds(const Directive& d, std::size_t i, long long lo, long long hi);
  std::optional<Proto> proto(const Directive& d, std::size_t i);
  /// One directive into `raw`, if it is known and allowed in `ctx`.
  void apply(const Directive& d, Raw& raw, Context ctx);

  // --- reading (includes.cpp) ------------------------------------------------------------
  void read_directives(const std::vector<Directive>& ds, Raw& top, std::vector<Raw>& connections,
                       std::vector<Raw>& listens, std::vector<std::string>& include_stack);
  void include(const Directive& d, Raw& top, std::vector<Raw>& connections, std::vector<Raw>& listens,
               std::vector<std::string>& include_stack);

  // --- scopes: a block's value, else the top level's, else the default (scopes.cpp) -------
  FamilyChoice family(const Raw& r, const Raw* base);
  Connection make_connection(const Raw& top, const Raw* block);
  Listen make_listen(const Raw& top, const Raw* block);

  // --- the whole (validation.cpp) ----------------------------------------------------------
  Config build(const Raw& top, const std::vector<Raw>& connections, const std::vector<Raw>& listens);
  void check_listen_clashes(const std::vector<Listen>& listens);
};

}  // namespace duet::config::detail
