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

struct Located {
  std::string text;
  int line = 0;
};

struct ScenarioHost {
  std::string name;
  HostSettings settings;
  std::vector<std::pair<std::string, std::string>> addresses;  ///< (interface, prefix)
  std::vector<Located> routes;
  int line = 0;
};

struct ScenarioLink {
  std::string host_a, if_a, host_b, if_b;
  LinkProperties properties;
  int line = 0;
};

struct ScenarioInstance {
  std::string name;
  std::string host;
  std::string config;  ///< daemon configuration text
  net::Duration start{0};
  int line = 0;
  int host_line = 0;
};

struct ScenarioFault {
  net::Duration at{0};
  std::string host;
  std::string action;  ///< route, unroute, partition, heal, down, up, crash, restart, remove-address, add-address
  std::string argument;
  int line = 0;
};

struct ScenarioSend {
  net::Duration at{0};
  std::string instance;
  int count = 0;
  int line = 0;
};

/// Bounds a swarm run draws each link's properties from (absent: links as written).
struct SwarmBounds {
  std::optional<std::pair<net::Duration, net::Duration>> delay, jitter;
  std::optional<std::pair<double, double>> loss;
};

struct Scenario {
  std::string file;
  std::string name;
  net::Duration duration = std::chrono::seconds(10);
  std::uint64_t seed = 1;
  std::vector<ScenarioHost> hosts;
  std::vector<ScenarioLink> links;
  std::map<std::string, DnsAnswer> dns;
  std::vector<ScenarioInstance> instances;
  std::vector<ScenarioFault> faults;
  std::vector<ScenarioSend> sends;
  std::vector<Located> expectations;
  SwarmBounds swarm;
  std::string simulator_only;  ///< why the testbed cannot run it (empty: it can)
};

struct ScenarioError {
  std::string file;
  int line = 0;
  std::string message;
  [[nodiscard]] std::string to_string() const;
};

/// Reads a scenario file; on failure, the errors name file and line.
std::optional<Scenario> load_scenario(const std::string& path, std::vector<ScenarioError>& errors);

/// "250ms", "2s", "1.5s", "100us" -> duration; nullopt if malformed.
std::optional<net::Duration> parse_duration(const std::string& text);

}  // namespace duet::sim
