// The simulated world's insides, shared by the files that implement its layers:
// world.cpp (topology, faults, running), network.cpp (routing, links, ICMP),
// udp.cpp, tcp.cpp (transports), dns.cpp (resolver), stack.cpp (NetworkStack), pcap.cpp.
#pragma once

#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "duet/sim/world.hpp"
#include "event_queue.hpp"
#include "packet.hpp"
#include "sockets.hpp"

namespace duet::sim {

using net::Prefix;

struct Host;
struct Link;

struct Interface {
  std::string name;
  bool up = true;
  std::vector<Prefix> addresses;
  Link* link = nullptr;  ///< point-to-point link, if any
  int link_side = 0;     ///< which end of `link` this is
};

struct Route {
  Prefix prefix;  ///< network form (host bits cleared)
  RouteVerdict verdict = RouteVerdict::forward;
  std::string interface;     ///< for forward
  Interface* out = nullptr;  ///< `interface`, resolved when the route is added
  bool connected = false;    ///< added with an interface address
};

struct Link {
  std::uint64_t id = 0;
  LinkProperties properties;
  bool cut = false;
  Host* host[2] = {nullptr, nullptr};
  std::string interface[2];
  Interface* end[2] = {nullptr, nullptr};
  TimePoint last_arrival[2]{};  ///< per direction (0: from host[0]); keeps FIFO order
  TimePoint busy_until[2]{};    ///< per direction, for bandwidth
};

/// Linux's per-destination ICMP token bucket (inet_peer rate_tokens / rate_last).
struct IcmpBucket {
  Duration tokens{0};
  TimePoint last{};
  bool initialised = false;
};

struct Host {
  std::uint32_t index = 0;
  std::string name;
  HostSettings settings;
  bool alive = true;
  std::uint64_t incarnation = 1;
  std::vector<std::unique_ptr<Interface>> interfaces;  ///< [0] is "lo"
  std::vector<Route> routes;
  std::vector<Address> local_addresses;                        ///< every interface address, kept in step with them
  std::map<std::pair<Address, int>, IcmpBucket> icmp_buckets;  ///< (destination, family)
  std::map<Address, std::size_t> path_mtu;                     ///< learned from "too big"
  std::unique_ptr<net::NetworkStack> stack;

  // Transport tables. Sockets are owned here; user objects refer to them by id.
  std::uint64_t next_socket_id = 1;
  std::map<std::uint64_t, std::unique_ptr<UdpSock>> udp;
  std::map<std::uint64_t, std::unique_ptr<TcpSock>> tcp;

  Interface* find_interface(const std::string& name);
};

/// What an ICMP error means to a socket: Linux's icmp_err_convert (IPv4) and
/// icmpv6_err_convert (IPv6). Non-fatal errors are "soft": connected UDP never reports
/// them, established TCP rides them out.
struct IcmpMeaning {
  std::error_code error;  ///< empty: not an error for the socket (e.g. time exceeded)
  bool fatal = false;
};
IcmpMeaning icmp_meaning(const Packet& icmp);

/// A packet's way out of a host: the route's verdict and, for forward, the interface.
struct RouteResult {
  RouteVerdict verdict = RouteVerdict::unreachable;
  Interface* interface = nullptr;
  bool local = false;  ///< the destination is this host
  bool found = false;  ///< some route matched
};

struct SimWorld::Impl {
  Impl(std::uint64_t seed, WorldOptions opts) : random(seed), options(opts) {}

  EventQueue queue;
  Random random;
  WorldOptions options;
  std::vector<std::unique_ptr<Host>> hosts;
  std::map<std::string, Host*> hosts_by_name;
  std::vector<std::unique_ptr<Link>> links;
  std::map<std::string, DnsAnswer> dns;
  std::map<std::pair<std::string, std::string>, DnsAnswer> dns_views;  ///< (host, name)
  std::uint64_t next_packet_id = 1;
  std::function<void(std::string_view)> trace_sink;
  std::ofstream pcap;

  Host& host(const std::string& name);
  [[nodiscard]] TimePoint now() const { return queue.now(); }
  EventId after(Duration d, std::function<void()> fn) { return queue.schedule(queue.now() + d, std::move(fn)); }

  // network.cpp
  bool is_local_address(const Host& h, const Address& a) const;
  RouteResult route(Host& h, const Address& dst);
  /// The source address Linux would pick on `h` for `dst`, if any.
  std::optional<Address> select_source(Host& h, const Address& dst);
  std::optional<Address> select_source(Host& h, const Address& dst, const RouteResult& r);
  /// Sends a packet made on `h`. Local verdicts come back at once (EINVAL for blackhole,
  /// EHOSTUNREACH, EACCES, ENETUNREACH, EMSGSIZE); otherwise the packet is on its way.
  std::error_code output(Host& h, Packet p);
  /// output() with the route already looked up (it must be for p.dst).
  std::error_code output(Host& h, Packet p, const RouteResult& r);
  /// The error a local route verdict gives at once, or {} for forward.
  static std::error_code verdict_error(const RouteResult& r);
  /// Largest IP packet `h` can send towards `dst` unfragmented (link MTU, learned PMTU).
  std::size_t path_mtu(Host& h, const Address& dst);
  void transmit(Host& h, Interface& out, Packet p);
  /// The error Linux gives at once for a local route verdict towards `dst`, or {}.
  std::error_code local_route_error(Host& h, const Address& dst);
  void arrive(Host& h, Interface* in, const std::shared_ptr<Packet>& p);
  void forward(Host& h, const std::shared_ptr<Packet>& p);
  void deliver(Host& h, const std::shared_ptr<Packet>& p);
  /// Sends an ICMP error about `about` from `h`, subject to Linux's rate limits.
  void icmp_error(Host& h, const Packet& about, std::uint8_t type, std::uint8_t code, bool route_error,
                  std::uint32_t mtu = 0);
  bool icmp_allowed(Host& h, const Address& to, bool route_error);

  // udp.cpp / tcp.cpp: packets for a transport on `h`, and ICMP errors about them.
  void udp_input(Host& h, const std::shared_ptr<Packet>& p);
  void udp_icmp(Host& h, const Packet& icmp);
  void tcp_input(Host& h, const std::shared_ptr<Packet>& p);
  void tcp_icmp(Host& h, const Packet& icmp);

  // Port management shared by UDP and TCP (stack.cpp).
  std::error_code check_bind_address(Host& h, Family family, bool v6only, const Address& a);
  bool port_free(Host& h, Proto proto, const PortClaim& claim, std::uint16_t port, const void* self);
  std::optional<std::uint16_t> ephemeral_port(Host& h, Proto proto, const PortClaim& claim);

  // dns.cpp
  std::vector<Address> glibc_order(Host& h, std::vector<Address> addrs);
  const DnsAnswer* dns_answer(const Host& h, const std::string& name) const;
  struct Resolution {
    net::Duration delay{};
    net::Result<std::vector<Endpoint>> result;
  };
  /// What getaddrinfo on `h` answers for `name` (one family or both), and after how long.
  Resolution resolve_name(Host& h, const std::string& name, std::optional<Family> family, std::uint16_t port);
  std::vector<Endpoint> sort_destinations(Host& h, const std::string& name, std::vector<Endpoint> eps);

  // Observability (world.cpp, pcap.cpp)
  [[nodiscard]] bool tracing() const { return static_cast<bool>(trace_sink); }
  void trace(const Host& h, std::string_view event, const std::string& fields);
  void trace_packet(const Host& h, std::string_view event, const Packet& p, std::string_view why = {});
  void capture(const Packet& p);

  void crash_host(Host& h);
};

std::unique_ptr<net::NetworkStack> make_sim_stack(SimWorld::Impl& world, Host& host);
std::unique_ptr<net::DatagramSocket> make_udp_socket(SimWorld::Impl& world, Host& host, Family family);
std::unique_ptr<net::StreamSocket> make_stream_socket(SimWorld::Impl& world, Host& host, Family family);
net::Result<std::unique_ptr<net::Listener>> make_listener(SimWorld::Impl& world, Host& host, const Endpoint& local,
                                                          const net::ListenOptions& options);

/// How a socket of `family` (IPV6_V6ONLY `v6only`) sees a packet address: IPv4 addresses
/// appear v4-mapped on IPv6 sockets.
inline Address socket_view(Family family, const Address& a) { return family == Family::v6 ? a.v4_mapped() : a; }

/// Whether another socket of the transport already claims `port` in a way that overlaps.
bool udp_port_taken(const Host& h, const PortClaim& claim, std::uint16_t port, const void* self);
bool tcp_port_taken(const Host& h, const PortClaim& claim, std::uint16_t port, const void* self);
bool port_in_use(const Host& h, Proto proto, std::uint16_t port);

/// JSON string literal with escapes.
std::string json_string(std::string_view s);

}  // namespace duet::sim
