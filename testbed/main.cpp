// duet-testbed: the helper behind testbed/run. It reads a scenario file with the
// simulator's own loader and
//   plan  prints the bash that builds the scenario on network namespaces (hosts, veth
//         links, addresses, routes and their verdicts, /etc/netns hosts files), starts one
//         duetd per instance (with generated keys, peers and a TUN address), plays the fault
//         timeline, pings where the scenario pings, and stops everything at the end;
//   judge reads what the daemons did (duetd --events) and judges the scenario's sentences
//         with the simulator's judge, runs the simulator on the same file, and prints both
//         side by side (with --json, one JSON object).
//   dns   serves the scenario's DNS answers in a namespace (the plan starts one per host);
//   link  is the link emulator between the two ends of a scenario's link (one per link);
//   stream, sleep-until keep the plan's actions on the scenario's instants (stream.cpp).
// A scenario the kernel cannot replay faithfully (link loss, jitter or bandwidth without
// netem, partitions, an answer order glibc would change, probe-session data) is reported
// as simulator-only with the reason.
#include <iostream>
#include <string>
#include <vector>

#include "testbed.hpp"

using namespace duet;

namespace {
constexpr const char* kUsage =
    "usage: duet-testbed plan SCENARIO PREFIX DIR DUETD\n"
    "       duet-testbed judge SCENARIO DIR START_UNIX_MS [--json]\n"
    "       duet-testbed why-not SCENARIO   (empty output: the testbed can run it)\n"
    "       duet-testbed report RUN.jsonl     (bench/FIDELITY.md from testbed/run --json)\n"
    "       duet-testbed dns SCENARIO         (the scenario's DNS answers on 127.0.0.1:53)\n"
    "       duet-testbed link SCENARIO INDEX END_A END_B SEED   (link INDEX between two interfaces)\n"
    "       duet-testbed stream DEVICE ADDRESS START EVERY_MS END   (echo requests at START + k * EVERY_MS)\n"
    "       duet-testbed sleep-until UNIX_MS\n";
}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 1 && a[0] == "--version") {
    std::cout << "duet-testbed " << DUET_VERSION << "\n";
    return 0;
  }
  if (a.size() == 1 && (a[0] == "--help" || a[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (a.size() < 2) {
    std::cerr << kUsage;
    return 2;
  }
  if (a[0] == "report") return testbed::report(a[1]);
  // Times are Unix milliseconds (the plan's t0 + the scenario's instant).
  if (a[0] == "sleep-until") return testbed::sleep_until(std::stoll(a[1]));
  if (a[0] == "stream" && a.size() == 6)
    return testbed::stream(a[1], a[2], std::stoll(a[3]), std::stoll(a[4]), std::stoll(a[5]));
  std::vector<sim::ScenarioError> errors;
  auto s = sim::load_scenario(a[1], errors);
  if (!s) {
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    return 2;
  }
  if (a[0] == "dns") return testbed::dns_server(*s);
  if (a[0] == "link" && a.size() == 6)
    return testbed::link_emulator(*s, std::stoul(a[2]), a[3], a[4], std::stoull(a[5]));
  if (a[0] == "why-not") {
    std::cout << testbed::simulator_only(*s);
    return 0;
  }
  if (a[0] == "plan" && a.size() == 5) return testbed::plan(*s, a[2], a[3], a[4]);
  if (a[0] == "judge" && a.size() >= 4)
    return testbed::judge(*s, a[2], std::stoll(a[3]), a.size() > 4 && a[4] == "--json");
  std::cerr << kUsage;
  return 2;
}
