// Runs one scenario in a simulated world and judges its expectations.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "duet/sim/scenario.hpp"

namespace spdlog {
class logger;
}

namespace duet::sim {

struct RunOptions {
  std::uint64_t seed = 1;
  bool swarm = false;                           ///< draw link properties from the scenario's [swarm] bounds
  std::function<void(std::string_view)> trace;  ///< world and engine events, JSON lines
  std::string pcap;                             ///< write packets here ("" = no)
  spdlog::logger* log = nullptr;                ///< engine events as log lines
};

struct ExpectationResult {
  Located expectation;
  bool passed = false;
  std::string detail;  ///< what was seen instead
};

struct RunResult {
  std::vector<ScenarioError> errors;  ///< the scenario cannot be run as written
  std::vector<ExpectationResult> expectations;
  net::Duration virtual_time{0};
  double wall_ms = 0;
  /// For each instance, the virtual times at which it connected (for benchmarks).
  std::map<std::string, std::vector<net::TimePoint>> connected_at;
  /// For each instance, its warnings and errors as logged (for side-by-side reports).
  std::map<std::string, std::vector<std::string>> warnings;
  [[nodiscard]] bool invalid() const { return !errors.empty(); }
  [[nodiscard]] bool passed() const;
};

RunResult run_scenario(const Scenario& scenario, const RunOptions& options);

}  // namespace duet::sim
