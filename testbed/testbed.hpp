// duet-testbed: the helper behind testbed/run. Its parts, one file each:
//   why_not.cpp  which scenarios the kernel cannot replay faithfully, and why;
//   plan.cpp     the bash that builds a scenario on network namespaces and runs duetd;
//   dns_server.cpp the scenario's DNS answers, served in each namespace;
//   judge.cpp    what the daemons did, judged by the simulator's judge, side by side;
//   report.cpp   bench/FIDELITY.md from a run's JSON lines;
//   stream.cpp   the timeline's clock: echo streams and waits at absolute instants.
#pragma once

#include <optional>
#include <string>

#include "duet/sim/scenario.hpp"

namespace duet::testbed {

/// Why the kernel testbed cannot replay `s` faithfully; empty if it can.
std::string simulator_only(const sim::Scenario& s);
/// Prints the plan's bash; 0, or 3 when a route or fault cannot be replayed.
int plan(const sim::Scenario& s, const std::string& prefix, const std::string& dir, const std::string& duetd);
/// A DNS server on 127.0.0.1:53 of the namespace it runs in (never returns but on error).
int dns_server(const sim::Scenario& s);
/// Judges a finished run in `dir`; 0 when the kernel passed.
int judge(const sim::Scenario& s, const std::string& dir, long long start_ms, bool as_json);
/// The fidelity report from testbed/run --json output.
int report(const std::string& path);
/// The time in a `reconnects` sentence's detail ("reconnected to X 841.0 ms after ..." ->
/// 841.0), if it has one.
std::optional<double> ms_after(const std::string& detail);

/// Relays frames between interfaces `end_a` and `end_b` as link `index` of `s` would
/// carry them (delay, jitter, loss, duplication, reordering, rate), until SIGTERM.
int link_emulator(const sim::Scenario& s, std::size_t index, const std::string& end_a, const std::string& end_b,
                  std::uint64_t seed);

/// Waits until `unix_ms` (CLOCK_REALTIME, absolute); 0.
int sleep_until(long long unix_ms);
/// Sends an ICMP echo request through `device` to `destination` at every `start_ms` +
/// k * `every_ms` before `end_ms` (Unix milliseconds), counts the answers and prints
/// "N sent, M answered"; 0, or 1/2 when it cannot send or the arguments are wrong.
int stream(const std::string& device, const std::string& destination, long long start_ms, long long every_ms,
           long long end_ms);

}  // namespace duet::testbed
