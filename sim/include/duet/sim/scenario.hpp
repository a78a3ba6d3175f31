// A scenario: hosts, links, routes, DNS, duet instances (configured in the daemon's own
// syntax), a fault timeline, and expectations written as sentences:
//
//   expect = ["client connects within 300ms over IPv4",
//             "server listens on exactly 0.0.0.0:1194/udp [::]:1194/udp"]
//
// See sim/scenarios/README.md for the format and every sentence.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "duet/net/clock.hpp"
#include "duet/sim/world.hpp"

namespace duet::sim {

/// A piece of a scenario file with the line it is on (for error messages).
struct Located {
  std::string text;  ///< as written
  int line = 0;      ///< 1-based line in the file
};

/// A `[[host]]`: its name, kernel settings, addresses and routes.
struct ScenarioHost {
  std::string name;                                            ///< the host's name
  HostSettings settings;                                       ///< sysctls as the file sets them
  std::vector<std::pair<std::string, std::string>> addresses;  ///< (interface, prefix)
  std::vector<Located> routes;  ///< `ip route` style: "default dev eth0", "blackhole fd00::/64"
  int line = 0;                 ///< where the table starts
};

/// A `[[link]]`: two interfaces joined, and how packets cross.
struct ScenarioLink {
  std::string host_a;         ///< one end's host
  std::string if_a;           ///< ...and interface
  std::string host_b;         ///< the other end's host
  std::string if_b;           ///< ...and interface
  LinkProperties properties;  ///< delay, loss, MTU...
  int line = 0;               ///< where the table starts
};

/// An `[[instance]]`: one duet node, configured in the daemon's own syntax.
struct ScenarioInstance {
  std::string name;        ///< how expectations call it
  std::string host;        ///< the host it runs on
  std::string config;      ///< daemon configuration text
  net::Duration start{0};  ///< when it starts
  int line = 0;            ///< where the table starts
  int host_line = 0;       ///< the line of its `host` key
};

/// A `[[fault]]`: something done to the world at a time.
struct ScenarioFault {
  net::Duration at{0};   ///< when
  std::string host;      ///< on which host
  std::string action;    ///< route, unroute, partition, heal, down, up, crash, restart, remove-address, add-address
  std::string argument;  ///< the action's value (a route, an interface, a host...)
  int line = 0;          ///< where the table starts
};

/// A `[[send]]`: test messages an instance sends through its session.
struct ScenarioSend {
  net::Duration at{0};                 ///< when
  std::string instance;                ///< who sends
  int count = 0;                       ///< how many messages
  net::Duration every{0};              ///< again every this long (0: once): a stream of traffic
  std::optional<net::Duration> until;  ///< the stream's end (default: the scenario's)
  int line = 0;                        ///< where the table starts
};

/// Bounds a swarm run draws each link's properties from (absent: links as written).
struct SwarmBounds {
  std::optional<std::pair<net::Duration, net::Duration>> delay;   ///< one-way delay range
  std::optional<std::pair<net::Duration, net::Duration>> jitter;  ///< jitter range
  std::optional<std::pair<double, double>> loss;                  ///< loss probability range
};

/// A scenario file, read (see load_scenario).
struct Scenario {
  std::string file;                                   ///< the path it was read from
  std::string name;                                   ///< its `name`
  net::Duration duration = std::chrono::seconds(10);  ///< virtual time it runs for
  std::uint64_t seed = 1;                             ///< the seed unless the runner gives one
  std::vector<ScenarioHost> hosts;                    ///< its hosts, its topology file's included
  std::vector<ScenarioLink> links;                    ///< the links between them
  std::map<std::string, DnsAnswer> dns;               ///< answers by name
  std::vector<ScenarioInstance> instances;            ///< the duet nodes
  std::vector<ScenarioFault> faults;                  ///< the fault timeline
  std::vector<ScenarioSend> sends;                    ///< test messages
  std::vector<Located> expectations;                  ///< the sentences to judge
  SwarmBounds swarm;                                  ///< what a swarm run draws links from
  std::string simulator_only;                         ///< why the testbed cannot run it (empty: it can)
};

/// Why a scenario cannot be read or run as written.
struct ScenarioError {
  std::string file;     ///< the file
  int line = 0;         ///< 1-based line (0: the file as a whole)
  std::string message;  ///< what is wrong
  /// "file:line: message".
  [[nodiscard]] std::string to_string() const;
};

/// Reads a scenario file; on failure, the errors name file and line.
std::optional<Scenario> load_scenario(const std::string& path, std::vector<ScenarioError>& errors);

/// "250ms", "2s", "1.5s", "100us" -> duration; nullopt if malformed.
std::optional<net::Duration> parse_duration(const std::string& text);

}  // namespace duet::sim
