// The engine in the simulator, measured in virtual time: how long a client needs when
// IPv6 is silently blackholed (racing on and off), how long failover takes mid-session,
// and how many scenarios the runner gets through per second of wall time.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "duet/sim/runner.hpp"

using namespace duet;

namespace {

const std::string kTopology = DUET_SCENARIOS "/topologies/dual-stack.toml";

/// Writes a scenario to a temporary file and runs it; returns the connected times.
sim::RunResult run(const std::string& body, std::uint64_t seed = 1) {
  const auto path = std::filesystem::temp_directory_path() / ("duet-bench-" + std::to_string(seed) + ".toml");
  std::ofstream(path) << "topology = \"" << kTopology << "\"\n" << body;
  std::vector<sim::ScenarioError> errors;
  auto s = sim::load_scenario(path.string(), errors);
  std::filesystem::remove(path);
  if (!s) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::exit(2);
  }
  sim::RunOptions o;
  o.seed = seed;
  return sim::run_scenario(*s, o);
}

double ms(net::Duration d) { return net::to_ms(d); }

/// The server's IPv6 address blackholed on the router at `fault_at`; a client of `transport`
/// with `extra` configuration lines.
sim::RunResult blackhole(const std::string& transport, const std::string& extra, const std::string& fault_at,
                         const std::string& duration, const std::string& expectation, bool traffic = false) {
  return run("name = \"bench\"\nduration = \"" + duration + "\"\nexpect = [\"" + expectation + "\"]\n" +
             (traffic ? "[[send]]\nat = \"1s\"\nevery = \"50ms\"\ninstance = \"client\"\ncount = 1\n" : "") +
             "[[fault]]\nat = \"" + fault_at +
             "\"\nhost = \"router\"\nroute = \"blackhole fd00:2::2/128\"\n"
             "[[instance]]\nname = \"server\"\nhost = \"server\"\nconfig = \"mode server\\nproto " +
             transport +
             "\\n\"\n"
             "[[instance]]\nname = \"client\"\nhost = \"client\"\nconfig = \"mode client\\nremote vpn.test 1194 " +
             transport + "\\n" + extra + "\"\n");
}

double connect_ms(const std::string& transport, const std::string& extra) {
  const auto r = blackhole(transport, extra, "0s", "300s", "client connects over IPv4");
  if (!r.passed()) return -1;
  return ms(r.connected_at.at("client").front().time_since_epoch());
}

/// From the blackhole at `at_ms` to the session's first connection over IPv4 after it.
double failover_ms(const std::string& transport, const std::string& keepalive, int at_ms, bool traffic) {
  const auto r =
      blackhole(transport, keepalive, std::to_string(at_ms) + "ms", "60s", "client ends connected over IPv4", traffic);
  if (!r.passed() || r.connected_at.at("client").size() < 2) return -1;
  return ms(r.connected_at.at("client")[1].time_since_epoch()) - at_ms;
}

}  // namespace

int main() {
  std::printf("## Time to connect with IPv6 silently blackholed (virtual ms, seed 1, 20 ms RTT)\n\n");
  // Racing off with the default timeouts: each address gets its share of the block's
  // server-poll-timeout (120 s for two addresses: 60 s each).
  std::printf(
      "| transport | racing (default, 250 ms) | racing off, default timeouts (120 s) | racing off, "
      "connect-timeout 5 s |\n");
  std::printf("|---|---:|---:|---:|\n");
  for (const char* t : {"udp", "tcp"}) {
    std::printf("| %s | %.1f | %.1f | %.1f |\n", t, connect_ms(t, ""), connect_ms(t, "happy-eyeballs-delay 0\\n"),
                connect_ms(t, "happy-eyeballs-delay 0\\nconnect-timeout 5\\n"));
  }
  std::printf("\n## Failover mid-session: IPv6 blackholed, time until connected over IPv4 (virtual ms)\n\n");
  std::printf(
      "| transport | under traffic (a message every 50 ms), defaults | idle, defaults, cut right after a keepalive "
      "(worst case) | idle, keepalive 1 3, same cut |\n|---|---:|---:|---:|\n");
  for (const char* t : {"udp", "tcp"}) {
    // The client connects at 21 (udp) or 41 ms (tcp) and sends a keepalive then and every
    // interval: a cut 100 ms after one waits a whole interval for the next.
    std::printf("| %s | %.1f | %.1f | %.1f |\n", t, failover_ms(t, "", 5000, true), failover_ms(t, "", 5150, false),
                failover_ms(t, "keepalive 1 3\\n", 5150, false));
  }
  // Scenarios per second of wall time over the whole library.
  std::vector<sim::Scenario> library;
  for (const auto& e : std::filesystem::directory_iterator(DUET_SCENARIOS)) {
    if (e.path().extension() != ".toml") continue;
    std::vector<sim::ScenarioError> errors;
    if (auto s = sim::load_scenario(e.path().string(), errors)) library.push_back(std::move(*s));
  }
  const int rounds = 50;
  int runs = 0, passed = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (const auto& s : library) {
      sim::RunOptions o;
      o.seed = static_cast<std::uint64_t>(r + 1);
      passed += sim::run_scenario(s, o).passed() ? 1 : 0;
      ++runs;
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "\n## Runner speed\n\n%d scenario runs (%zu scenarios x %d seeds, %d passed) in %.2f s of wall time: "
      "%.0f scenarios per second; the whole library once: %.1f ms\n",
      runs, library.size(), rounds, passed, wall, runs / wall, 1000 * wall / rounds);
  return 0;
}
