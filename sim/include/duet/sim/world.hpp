// SimWorld: a deterministic simulated network of hosts, links, routes and DNS, with a
// fault timeline, and a NetworkStack per host that behaves like Linux's (see
// ../shared/KERNEL-FACTS.md for the measured behaviour it reproduces).
//
// Everything runs on one thread from one event queue in virtual time; all randomness
// comes from the world's seeded Random. The wall clock is never read.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "duet/net/network_stack.hpp"
#include "duet/sim/random.hpp"

namespace duet::sim {

using namespace std::chrono_literals;

/// A world description that cannot be built (unknown host, bad prefix...).
class SimError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Per-host kernel settings that change dual-stack behaviour (Linux defaults).
struct HostSettings {
  bool bindv6only = false;                   ///< net.ipv6.bindv6only
  int tcp_syn_retries = 6;                   ///< net.ipv4.tcp_syn_retries: 1+2+...+64 = 127 s
  bool forwarding = false;                   ///< the host routes packets that are not for it
  net::Duration icmp_ratelimit_v4 = 1000ms;  ///< net.ipv4.icmp_ratelimit (0: no limit)
  net::Duration icmp_ratelimit_v6 = 100ms;   ///< net.ipv6.icmp.ratelimit (0: no limit)
  bool keep_addr_on_down = false;            ///< net.ipv6.conf.all.keep_addr_on_down
  /// net.ipv6.conf.all.disable_ipv6: no IPv6 address (not even ::1), yet [::] still binds
  bool disable_ipv6 = false;
  std::uint16_t ephemeral_low = 32768;   ///< net.ipv4.ip_local_port_range, its low end
  std::uint16_t ephemeral_high = 60999;  ///< net.ipv4.ip_local_port_range, its high end
};

/// One direction's behaviour of a point-to-point link (both directions get the same).
struct LinkProperties {
  net::Duration one_way_delay = 1ms;            ///< propagation delay, each way
  net::Duration jitter = 0ms;                   ///< extra delay, uniform in [0, jitter]
  double loss_probability = 0;                  ///< per packet (per fragment for large datagrams)
  double duplicate_probability = 0;             ///< per packet: it arrives twice
  double reorder_probability = 0;               ///< a reordered packet skips the FIFO order
  std::size_t mtu = 1500;                       ///< bytes of IP packet
  std::uint64_t bandwidth_bits_per_second = 0;  ///< 0: unlimited
};

/// What a route does with a packet (ip route add [blackhole|unreachable|prohibit]).
enum class RouteVerdict : std::uint8_t { forward, blackhole, unreachable, prohibit };

/// A DNS answer for one name.
struct DnsAnswer {
  /// What the server does.
  enum class Kind : std::uint8_t {
    records,   ///< answers with `records`
    nxdomain,  ///< the name does not exist
    servfail,  ///< a server failure (EAI_AGAIN)
    timeout,   ///< no answer: the resolver gives up after WorldOptions::resolver_timeout
  };
  Kind kind = Kind::records;          ///< what the server does for this name
  std::vector<net::Address> records;  ///< A and AAAA, in the order the server gives
  net::Duration delay = 1ms;          ///< time until the answer
  bool raw_order = false;             ///< skip glibc's sorting (RFC 3484 rules)
  /// One family's question answered otherwise than the name's (an AAAA lookup that a
  /// middlebox drops while A answers, say): its kind and delay. `records` keeps the
  /// addresses of that family when the kind is `records`.
  struct PerFamily {
    Kind kind = Kind::records;  ///< what this family's question gets
    net::Duration delay = 1ms;  ///< when
    /// Same kind and delay.
    bool operator==(const PerFamily&) const = default;
  };
  std::optional<PerFamily> a;     ///< the A question, when it differs from the name's answer
  std::optional<PerFamily> aaaa;  ///< the AAAA question, when it differs
};

/// How the whole world behaves.
struct WorldOptions {
  /// How long a resolver waits for a server that never answers (glibc: 5 s x 2 tries).
  net::Duration resolver_timeout = 10s;
};

/// A deterministic simulated network of hosts, links, routes and DNS with a fault
/// timeline, and a NetworkStack per host that behaves like Linux's. One thread, virtual
/// time, one seed: a run replays exactly.
class SimWorld {
public:
  /// An empty world at virtual time 0 whose randomness all comes from `seed`.
  explicit SimWorld(std::uint64_t seed, WorldOptions options = {});
  ~SimWorld();
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  // --- topology -------------------------------------------------------------------------
  /// A host with a loopback interface and nothing else.
  void add_host(const std::string& name, HostSettings settings = {});
  /// True when add_host made `name`.
  [[nodiscard]] bool has_host(const std::string& name) const;
  /// Every host, in the order they were added.
  [[nodiscard]] std::vector<std::string> host_names() const;
  /// A host's kernel settings, to read or change (SimError for an unknown host).
  HostSettings& settings(const std::string& host);
  /// Adds "addr/len" to an interface (created, up, when new); adds the on-link route.
  void add_address(const std::string& host, const std::string& interface, const std::string& prefix);
  /// Joins two interfaces (created when new) with a point-to-point link.
  void connect(const std::string& host_a, const std::string& if_a, const std::string& host_b, const std::string& if_b,
               LinkProperties properties = {});
  /// Changes the properties of the link(s) between two hosts.
  void set_link_properties(const std::string& host_a, const std::string& host_b, LinkProperties properties);
  /// ip route add [verdict] PREFIX [dev IF]; "default" / "default6" for 0.0.0.0/0 / ::/0.
  /// Like Linux, a route for a prefix that has one already (on-link ones included) is an
  /// error: put a verdict on a longer prefix (a host route) instead.
  void add_route(const std::string& host, const std::string& prefix, RouteVerdict verdict,
                 const std::string& interface = "");
  /// ip route del PREFIX.
  void remove_route(const std::string& host, const std::string& prefix);

  // --- DNS --------------------------------------------------------------------------------
  /// The answer every host gets for `name` (names without an answer are NXDOMAIN).
  void set_dns(const std::string& name, DnsAnswer answer);
  /// The answer one host gets, overriding set_dns for that host.
  void set_dns_for(const std::string& host, const std::string& name, DnsAnswer answer);

  // --- faults (call now, or schedule with at()) ---------------------------------------------
  /// Cuts (or restores) every link between two hosts: packets are silently lost.
  void partition(const std::string& host_a, const std::string& host_b);
  /// Undoes partition().
  void heal(const std::string& host_a, const std::string& host_b);
  /// ip link set dev IF down/up, with Linux's side effects: down flushes every route
  /// through the interface and (keep_addr_on_down off) its global IPv6 addresses; up
  /// brings back only the on-link routes of the addresses that remain.
  void set_interface_up(const std::string& host, const std::string& interface, bool up);
  /// ip addr del PREFIX dev IF: the address and its on-link route go.
  void remove_address(const std::string& host, const std::string& interface, const std::string& prefix);
  /// The host stops: sockets vanish without FIN or RST, packets to it are lost.
  void crash(const std::string& host);
  /// The host comes back with no sockets (peers' packets now get RST / port unreachable).
  void restart(const std::string& host);
  /// Runs `fn` at virtual time `when` (since the world's start).
  void at(net::Duration when, std::function<void()> fn);

  // --- running ----------------------------------------------------------------------------
  /// Virtual time since the world's start.
  [[nodiscard]] net::TimePoint now() const;
  /// Runs events for `d` of virtual time; now() ends exactly `d` later.
  void run_for(net::Duration d);
  /// Runs until `done()` is true (checked after each event) or `limit` passes; true if done.
  bool run_until(const std::function<bool()>& done, net::Duration limit);
  /// Runs until no event is left or `limit` passes.
  void run_until_idle(net::Duration limit);
  /// How many events ran so far (a measure of the simulator's work).
  [[nodiscard]] std::uint64_t events_processed() const;
  /// The world's seeded generator (draw from it to keep a run reproducible).
  Random& random();

  /// The NetworkStack of a host, valid for the world's lifetime.
  net::NetworkStack& stack(const std::string& host);

  // --- observability ----------------------------------------------------------------------
  /// Every packet and socket event as one JSON object per line.
  void set_trace(std::function<void(std::string_view line)> sink);
  /// Adds a line of the caller's own to the trace (e.g. the engine's events).
  void annotate(const std::string& host, std::string_view event, std::string_view detail);
  /// Writes every packet, once, when its sender sends it (forwarded copies are not
  /// repeated; the trace says where each went) to a pcap file (LINKTYPE_RAW, nanosecond
  /// timestamps = virtual time). Throws SimError on failure.
  void open_pcap(const std::string& path);

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

/// The outcome of running one scenario twice with one seed.
struct DeterminismReport {
  bool identical = true;             ///< the two traces were byte for byte the same
  std::size_t lines = 0;             ///< trace lines of the first run
  std::size_t first_difference = 0;  ///< 1-based line number, 0 when identical
  std::string first_line;            ///< that line in run 1 ("" if run 1 ended)
  std::string second_line;           ///< that line in run 2
};

/// Builds and runs a world twice with `seed` (via `scenario`), comparing the traces.
DeterminismReport check_determinism(std::uint64_t seed, const std::function<void(SimWorld&)>& scenario);

}  // namespace duet::sim
