// The validated configuration: the only thing the engine sees of what the user wrote.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "duet/config/diagnostic.hpp"
#include "duet/config/key.hpp"
#include "duet/net/address.hpp"
#include "duet/net/clock.hpp"

namespace duet::config {

/// The transports of the "Socket Rework" note; there is no udp6/tcp6: the family is
/// chosen with --ipv4/--ipv6 (or by default both).
enum class Proto : std::uint8_t { udp, tcp, udp_server, udp_client, tcp_server, tcp_client };
enum class Transport : std::uint8_t { udp, tcp };
enum class Mode : std::uint8_t { p2p, client, server };
enum class FamilyChoice : std::uint8_t { both, v4, v6 };
/// --bind / --nobind / neither (then the mode decides: client = nobind, else bind).
enum class BindChoice : std::uint8_t { unset, bind, nobind };

std::string_view to_string(Proto p);
std::string_view to_string(Transport t);
std::string_view to_string(Mode m);
std::string_view to_string(FamilyChoice f);
Transport transport_of(Proto p);
/// The families a choice allows, as a resolver hint (nullopt = both).
std::optional<net::Family> family_hint(FamilyChoice f);

constexpr std::uint16_t kDefaultPort = 1194;

struct Remote {
  std::string host;  ///< a name or an address literal
  std::uint16_t port = kDefaultPort;
  Proto proto = Proto::udp;
  SourceLocation where;
};

/// One way to reach the peer: a <connection> block, or the top level when there is none.
struct Connection {
  std::vector<Remote> remotes;
  Proto proto = Proto::udp;
  FamilyChoice family = FamilyChoice::both;
  std::vector<std::string> locals;  ///< local addresses or names to bind (empty: wildcard)
  std::uint16_t lport = kDefaultPort;
  bool lport_set = false;  ///< lport/port given explicitly (a client binds ephemeral otherwise)
  BindChoice bind = BindChoice::unset;
  /// How long one address may take to answer (a TCP connect, a UDP handshake).
  net::Duration connect_timeout = std::chrono::seconds(120);
  /// How long this whole <connection> (all its addresses, raced) may take before the
  /// next <connection> is tried.
  net::Duration server_poll_timeout = std::chrono::seconds(120);
  net::Duration connect_retry = std::chrono::seconds(5);
  net::Duration connect_retry_max = std::chrono::seconds(300);
  /// RFC 8305's connection attempt delay as written (0: racing off); policy clamps it
  /// into 100 ms..2 s (policy::attempt_delay) and warns when it had to (policy::review).
  net::Duration happy_eyeballs_delay = std::chrono::milliseconds(250);
  SourceLocation happy_eyeballs_delay_where;  ///< where it was set (unknown: the default)
  /// keepalive INTERVAL TIMEOUT: a keepalive every INTERVAL, reconnect after TIMEOUT of
  /// silence. 5/15 s by default, close to WireGuard's own (a new handshake about 15 s after
  /// an unanswered packet), so a silently broken path is left within seconds.
  net::Duration keepalive_interval = std::chrono::seconds(5);
  net::Duration keepalive_timeout = std::chrono::seconds(15);
  SourceLocation where;
};

/// One set of listening sockets: a <listen> block, or the top-level proto/local/lport.
struct Listen {
  Proto proto = Proto::udp;
  FamilyChoice family = FamilyChoice::both;
  std::vector<std::string> locals;  ///< empty: the wildcard of every allowed family
  std::uint16_t port = kDefaultPort;
  /// Bind each family's wildcard even when the host has no address of that family yet
  /// (WireGuard's way, for `duetd IFNAME`: a device often comes up before the network).
  bool without_address = false;
  SourceLocation where;
};

struct Plugin {
  std::string path;
  std::vector<std::string> args;
  SourceLocation where;
};

struct Proxy {
  enum class Kind : std::uint8_t { http, socks } kind = Kind::http;
  std::string host;
  std::uint16_t port = 0;
  std::string auth_file;  ///< empty: no authentication
  SourceLocation where;
};

/// peer PUBLIC_KEY ALLOWED_IP[,ALLOWED_IP...]
struct Peer {
  Key public_key{};
  std::vector<net::Prefix> allowed_ips;
  std::optional<Key> preshared;            ///< preshared-key=KEY: mixed into every handshake
  std::optional<net::Endpoint> endpoint;   ///< endpoint=ADDR:PORT: where to reach it first (UDP)
  std::uint16_t persistent_keepalive = 0;  ///< keepalive=SECONDS: WireGuard's persistent keepalive
  SourceLocation where;
};

/// status FILE [SECONDS]: the daemon rewrites FILE with its status every SECONDS.
struct StatusFile {
  std::string path;
  net::Duration interval = std::chrono::seconds(60);
  bool operator==(const StatusFile&) const = default;
};

struct Config {
  Mode mode = Mode::p2p;
  /// Tried in order (client and p2p); empty for a server.
  std::vector<Connection> connections;
  /// All active at once (server, and p2p with a listening role).
  std::vector<Listen> listens;
  bool remote_random = false;
  std::optional<net::Duration> resolv_retry;  ///< nullopt: retry for ever ("infinite")
  std::vector<Plugin> plugins;
  std::optional<Proxy> http_proxy;
  std::optional<Proxy> socks_proxy;
  std::string dev = "duet0";
  std::string private_key;  ///< base64, or a file holding it
  std::vector<Peer> peers;
  std::vector<net::Prefix> ifconfig;  ///< addresses of the TUN device
  bool route_allowed_ips = false;     ///< route every peer's allowed IPs into the TUN device
  int tun_mtu = 1420;
  /// max-clients N: at most N peers hold keys at once (0: as many as are configured).
  std::size_t max_clients = 0;
  /// fwmark N: the mark on the tunnel's UDP sockets (SO_MARK), for policy routing (0: none).
  std::uint32_t fwmark = 0;
  /// sndbuf / rcvbuf BYTES: SO_SNDBUF / SO_RCVBUF of the tunnel's UDP sockets (0: duetd's
  /// default, 4 MiB each). A smaller send buffer makes a slow uplink push back sooner
  /// (the TUN pauses instead of a deep queue building in the kernel).
  int sndbuf = 0, rcvbuf = 0;
  /// crypto-threads N|auto: threads besides the event loop that seal and open the tunnel's
  /// data together (0: none; auto, -1: none on fewer than four cores, else all but one,
  /// at most eight). The daemon's only: the simulator stays on one thread.
  int crypto_threads = -1;
  /// The kernel offloads the daemon may use (`offload`): each one is used only where the
  /// kernel grants it; turning one off is for measuring and for working around a driver.
  struct Offloads {
    bool tun = true;  ///< TUN super-packets (IFF_VNET_HDR, TSO/USO, checksum) and merged writes
    bool gso = true;  ///< UDP_SEGMENT sends
    bool gro = true;  ///< UDP_GRO receives
    bool operator==(const Offloads&) const = default;
  } offload;
  int verb = 3;
  std::optional<StatusFile> status;
  std::string control_socket;      ///< duetctl's socket ("" = /run/duetd-DEV.sock)
  std::string user;                ///< drop to this user once the TUN and sockets are open
  std::string group;               ///< ...and this group (also the control socket's group)
  std::vector<std::string> files;  ///< every file read, in order
};

}  // namespace duet::config
