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

/// How to run a scenario.
struct RunOptions {
  std::uint64_t seed = 1;                       ///< the world's seed
  bool swarm = false;                           ///< draw link properties from the scenario's [swarm] bounds
  std::function<void(std::string_view)> trace;  ///< world and engine events, JSON lines
  std::string pcap;                             ///< write packets here ("" = no)
  spdlog::logger* log = nullptr;                ///< engine events as log lines
};

/// One expectation's verdict.
struct ExpectationResult {
  Located expectation;  ///< the sentence and its line
  bool passed = false;  ///< it held
  std::string detail;   ///< what was seen instead
};

/// What running a scenario came to.
struct RunResult {
  std::vector<ScenarioError> errors;            ///< the scenario cannot be run as written
  std::vector<ExpectationResult> expectations;  ///< each sentence's verdict, in file order
  net::Duration virtual_time{0};                ///< virtual time simulated
  double wall_ms = 0;                           ///< wall time it took (for reports only)
  /// For each instance, the virtual times at which it connected (for benchmarks).
  std::map<std::string, std::vector<net::TimePoint>> connected_at;
  /// For each instance, its warnings and errors as logged (for side-by-side reports).
  std::map<std::string, std::vector<std::string>> warnings;
  /// The scenario could not be run (see errors).
  [[nodiscard]] bool invalid() const { return !errors.empty(); }
  /// Valid, and every expectation held.
  [[nodiscard]] bool passed() const;
};

/// Builds the scenario's world, runs it for its duration with duet's engine on every
/// instance, and judges the expectations.
RunResult run_scenario(const Scenario& scenario, const RunOptions& options);

}  // namespace duet::sim
