// A small network described once and built twice: as a simulated world, and as real
// network namespaces joined by veth pairs (for the conformance cases that need routers).
#pragma once

#include <string>
#include <vector>

#include "duet/sim/world.hpp"

namespace duet::test {

struct Topology {
  struct Address {
    std::string host, interface, prefix;
  };
  struct Link {
    std::string host_a, if_a, host_b, if_b;
  };
  struct Route {
    std::string host, prefix;
    sim::RouteVerdict verdict = sim::RouteVerdict::forward;
    std::string interface, via;  ///< via: the gateway namespaces need; the simulator doesn't
  };
  struct Host {
    std::string name;
    bool router = false;
    int icmp_ratelimit_v4_ms = 1000;
    int icmp_ratelimit_v6_ms = 100;
    int tcp_syn_retries = 6;
    bool disable_ipv6 = false;
  };
  std::vector<Host> hosts;
  std::vector<Address> addresses;
  std::vector<Link> links;
  std::vector<Route> routes;

  void build(sim::SimWorld& w) const {
    for (const auto& h : hosts) {
      sim::HostSettings s;
      s.forwarding = h.router;
      s.icmp_ratelimit_v4 = std::chrono::milliseconds(h.icmp_ratelimit_v4_ms);
      s.icmp_ratelimit_v6 = std::chrono::milliseconds(h.icmp_ratelimit_v6_ms);
      s.tcp_syn_retries = h.tcp_syn_retries;
      s.disable_ipv6 = h.disable_ipv6;
      w.add_host(h.name, s);
    }
    // Veths carry frames at once: the simulated links do too (Linux treats an ICMP error
    // that comes back within the connect() call differently, see sim/tcp.cpp).
    sim::LinkProperties instant;
    instant.one_way_delay = net::Duration{0};
    for (const auto& l : links) w.connect(l.host_a, l.if_a, l.host_b, l.if_b, instant);
    for (const auto& a : addresses) w.add_address(a.host, a.interface, a.prefix);
    for (const auto& r : routes) w.add_route(r.host, r.prefix, r.verdict, r.interface);
  }
};

/// Real namespaces for a Topology, named with this process's pid; all are deleted by the
/// destructor (and stale ones of dead test processes at construction).
class Netns {
public:
  explicit Netns(const Topology& t);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  /// Moves this thread into a host's namespace (sockets made afterwards live there).
  void enter(const std::string& host);
  /// Back to the namespace the process started in.
  void leave();
  /// Runs a command with "ip netns exec <host's namespace>" before it.
  void exec(const std::string& host, const std::string& command);
  /// The namespace's name for a host.
  [[nodiscard]] std::string name(const std::string& host) const { return ns(host); }

  /// True when this process may create namespaces.
  static bool available(std::string& why);

private:
  std::string ns(const std::string& host) const { return prefix_ + host; }
  void run(const std::string& command);

  std::string prefix_;
  std::vector<std::string> created_;
  int original_ = -1;
};

}  // namespace duet::test
