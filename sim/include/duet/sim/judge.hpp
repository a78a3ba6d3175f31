// The meaning of a scenario's expectation sentences, in one place: the simulator's runner
// and the namespace testbed both describe what each instance did (its events, sockets,
// state at the end) and let this code judge the sentences, so "client connects within
// 300ms over IPv4" means the same in both worlds.
#pragma once

#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "duet/config/diagnostic.hpp"
#include "duet/sim/runner.hpp"
#include "duet/sim/scenario.hpp"
#include "duet/transport/events.hpp"

namespace duet::sim {

/// What one instance did. Times are on the scenario's clock (0 = the scenario's start).
struct Observed {
  struct Seen {
    transport::Event event;
    std::string text;  ///< as the daemon logged it (Event::describe)
  };
  std::string name;
  bool started = false, startup_failed = false;
  net::TimePoint started_at{};
  std::vector<config::Diagnostic> diagnostics;
  std::vector<Seen> events;
  std::vector<std::string> listening;             ///< "ADDRESS:PORT/PROTO", as last started
  std::optional<net::Endpoint> connected_at_end;  ///< the client's remote when the run ended
  std::uint64_t data_received = 0;                ///< probe data messages (simulator only)
  std::size_t peers_accepted = 0;
  bool has_tunnel = false;
  std::map<net::Address, int> echo_replies;  ///< answered pings, by destination
  int pings_sent = 0;
};

/// "X pings A" (scheduled by the runner before the run, judged after it).
const std::regex& pings_sentence();

/// What "X logs info|warning|error" matches for an engine event.
config::Severity severity_of(transport::EventKind k);

/// Judges every expectation of `s`; sentences it cannot read, and unknown instances, are
/// added to `errors` with their line.
void judge_expectations(const Scenario& s, const std::vector<Observed>& seen, std::vector<ExpectationResult>& out,
                        std::vector<ScenarioError>& errors);

}  // namespace duet::sim
