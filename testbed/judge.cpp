#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "duet/config/loader.hpp"
#include "duet/policy/review.hpp"
#include "duet/sim/judge.hpp"
#include "duet/sim/runner.hpp"
#include "testbed.hpp"

namespace duet::testbed {

using json = nlohmann::json;

namespace {

/// What an instance did, from its duetd events file (and pings the script recorded).
sim::Observed observe(const sim::Scenario& s, const sim::ScenarioInstance& in, const std::string& dir,
                      long long start_ms) {
  sim::Observed o;
  o.name = in.name;
  auto loaded = policy::reviewed(config::load_text(in.config, in.name));
  o.diagnostics = loaded.diagnostics.all();
  o.started_at = net::TimePoint(std::chrono::duration_cast<net::Duration>(in.start));
  o.started = true;
  o.startup_failed = !loaded.ok();
  std::ifstream events(dir + "/" + in.name + ".events");
  std::optional<net::Endpoint> up;
  for (std::string line; std::getline(events, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    transport::Event e;
    const std::string kind = j.value("kind", "");
    bool known = false;
    for (int k = 0; k <= static_cast<int>(transport::EventKind::framing_error); ++k) {
      if (transport::to_string(static_cast<transport::EventKind>(k)) == kind) {
        e.kind = static_cast<transport::EventKind>(k);
        known = true;
      }
    }
    if (!known) continue;
    // unix_us where the daemon writes it (whole milliseconds round each difference).
    e.time = j.contains("unix_us")
                 ? net::TimePoint(std::chrono::microseconds(j.value("unix_us", 0LL) - start_ms * 1000))
                 : net::TimePoint(std::chrono::milliseconds(j.value("unix_ms", 0LL) - start_ms));
    // The scenario ends at its duration, as the simulated world does; what the daemons
    // log while being stopped (a peer's EOF, say) is not part of it.
    if (e.time.time_since_epoch() >= s.duration) continue;
    if (j.contains("endpoint")) {
      if (auto ep = net::Endpoint::parse(j["endpoint"].get<std::string>())) e.endpoint = *ep;
    }
    if (j.contains("transport"))
      e.transport = j["transport"] == "tcp" ? config::Transport::tcp : config::Transport::udp;
    e.detail = j.value("detail", "");
    e.elapsed = std::chrono::duration_cast<net::Duration>(
        std::chrono::duration<double, std::milli>(j.value("elapsed_ms", 0.0)));
    if (e.kind == transport::EventKind::listening) {
      o.listening.clear();
      std::istringstream w(e.detail);
      for (std::string x; w >> x;) o.listening.push_back(x);
    }
    if (e.kind == transport::EventKind::connected) up = e.endpoint;
    if (e.kind == transport::EventKind::disconnected) up.reset();
    if (e.kind == transport::EventKind::peer_accepted) ++o.peers_accepted;
    if (e.kind == transport::EventKind::startup_failed) o.startup_failed = true;
    o.events.push_back({e, j.value("text", "")});
  }
  // The engine starts when the daemon is ready (TUN and addresses take tens of ms): its
  // first event marks the moment the simulator calls the instance's start.
  if (!o.events.empty()) o.started_at = o.events.front().event.time;
  o.connected_at_end = up;
  o.has_tunnel = true;
  std::ifstream pings(dir + "/" + in.name + ".pings");
  for (std::string a; pings >> a;) {
    if (auto addr = net::Address::parse(a)) ++o.echo_replies[*addr];
  }
  std::ifstream sent(dir + "/" + in.name + ".pings-sent");
  for (std::string x; sent >> x;) ++o.pings_sent;
  return o;
}

/// The connection an instance made first, for the side-by-side table.
std::string first_connection(const sim::Observed& o) {
  for (const auto& s : o.events) {
    if (s.event.kind == transport::EventKind::connected) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " after %.0f ms", net::to_ms(s.event.time - o.started_at));
      return std::string(s.event.endpoint->address.is_v4() ? "IPv4" : "IPv6") + "/" +
             std::string(config::to_string(*s.event.transport)) + buf;
    }
  }
  return "no connection";
}

}  // namespace

int judge(const sim::Scenario& s, const std::string& dir, long long start_ms, bool as_json) {
  std::vector<sim::Observed> seen;
  for (const auto& in : s.instances) seen.push_back(observe(s, in, dir, start_ms));
  std::vector<sim::ExpectationResult> kernel;
  std::vector<sim::ScenarioError> errors;
  sim::judge_expectations(s, seen, kernel, errors);
  const auto simulated = sim::run_scenario(s, {.seed = s.seed});
  // A link that loses, duplicates or reorders packets at random makes a run one draw: which
  // packets a 10 % loss hits moves a failover by whole probe rounds, and the two worlds
  // draw over different packets. There the simulator also runs kSeeds seeds, and each time
  // is reported as the range they span, against which the kernel's one run is judged.
  constexpr std::uint64_t kSeeds = 20;
  const bool random_links = std::any_of(s.links.begin(), s.links.end(), [](const sim::ScenarioLink& l) {
    const auto& p = l.properties;
    return p.loss_probability > 0 || p.duplicate_probability > 0 || p.reorder_probability > 0;
  });
  std::map<std::size_t, std::pair<double, double>> sentence_range;  // by expectation index
  std::map<std::string, std::pair<double, double>> first_range;     // by instance
  const auto widen = [](auto& ranges, const auto& key, double ms) {
    auto [it, fresh] = ranges.try_emplace(key, ms, ms);
    if (!fresh) it->second = {std::min(it->second.first, ms), std::max(it->second.second, ms)};
  };
  for (std::uint64_t k = 0; random_links && k < kSeeds; ++k) {
    const auto run = k == 0 ? simulated : sim::run_scenario(s, {.seed = s.seed + k});
    for (std::size_t i = 0; i < run.expectations.size(); ++i) {
      if (const auto ms = ms_after(run.expectations[i].detail)) widen(sentence_range, i, *ms);
    }
    for (const auto& in : s.instances) {
      if (auto it = run.connected_at.find(in.name); it != run.connected_at.end() && !it->second.empty()) {
        widen(first_range, in.name, net::to_ms(it->second.front().time_since_epoch() - in.start));
      }
    }
  }
  const auto range_json = [&](const std::pair<double, double>& r) {
    return json{{"min_ms", std::lround(r.first)}, {"max_ms", std::lround(r.second)}, {"seeds", kSeeds}};
  };
  // The simulator's view of each instance's first connection, from its trace of events.
  json out = {{"scenario", s.file}, {"name", s.name}, {"expectations", json::array()}, {"instances", json::array()}};
  bool kernel_ok = errors.empty(), sim_ok = simulated.passed();
  for (std::size_t i = 0; i < kernel.size(); ++i) {
    const auto& k = kernel[i];
    const sim::ExpectationResult* m = i < simulated.expectations.size() ? &simulated.expectations[i] : nullptr;
    // Probe-session data ([[send]], "receives N messages") exists only in the simulator:
    // duetd carries IP packets. Such a sentence is not judged on the kernel.
    const bool applies = k.expectation.text.find(" receives ") == std::string::npos;
    kernel_ok = kernel_ok && (k.passed || !applies);
    out["expectations"].push_back({{"sentence", k.expectation.text},
                                   {"kernel", applies ? json(k.passed) : json("n/a")},
                                   {"kernel_detail", applies ? k.detail : "probe-session data: simulator only"},
                                   {"sim", m && m->passed},
                                   {"sim_detail", m ? m->detail : ""}});
    if (auto r = sentence_range.find(i); r != sentence_range.end()) {
      out["expectations"].back()["sim_range"] = range_json(r->second);
    }
  }
  for (const auto& o : seen) {
    int kernel_warnings = 0;
    std::string first_warning;
    for (const auto& e : o.events) {
      if (sim::severity_of(e.event.kind) != config::Severity::info) {
        if (kernel_warnings++ == 0) first_warning = e.text;
      }
    }
    const auto sw = simulated.warnings.find(o.name);
    const int sim_warnings = sw == simulated.warnings.end() ? 0 : static_cast<int>(sw->second.size());
    std::string sim_connected = "no connection";
    if (auto it = simulated.connected_at.find(o.name); it != simulated.connected_at.end() && !it->second.empty()) {
      char buf[64];
      net::Duration start{0};
      for (const auto& in : s.instances) {
        if (in.name == o.name) start = in.start;
      }
      std::snprintf(buf, sizeof buf, "after %.0f ms", net::to_ms(it->second.front().time_since_epoch() - start));
      sim_connected = buf;
    }
    out["instances"].push_back({{"name", o.name},
                                {"kernel", first_connection(o)},
                                {"sim", sim_connected},
                                {"kernel_warnings", kernel_warnings},
                                {"sim_warnings", sim_warnings},
                                {"first_kernel_warning", first_warning}});
    if (auto r = first_range.find(o.name); r != first_range.end()) {
      out["instances"].back()["sim_range"] = range_json(r->second);
    }
  }
  for (const auto& e : errors) out["errors"].push_back(e.to_string());
  out["kernel_passed"] = kernel_ok;
  out["sim_passed"] = sim_ok;
  if (as_json) {
    std::cout << out.dump() << "\n";
  } else {
    std::printf("%s: %s\n", s.file.c_str(), s.name.c_str());
    std::printf("  %-6s %-6s  %s\n", "sim", "kernel", "expectation");
    for (const auto& x : out["expectations"]) {
      const std::string kernel_word = !x["kernel"].is_boolean() ? "n/a" : x["kernel"].get<bool>() ? "pass" : "FAIL";
      std::printf("  %-6s %-6s  %s\n", x["sim"].get<bool>() ? "pass" : "FAIL", kernel_word.c_str(),
                  x["sentence"].get<std::string>().c_str());
      if (kernel_word == "FAIL")
        std::printf("                 kernel: %s\n", x["kernel_detail"].get<std::string>().c_str());
    }
    for (const auto& i : out["instances"]) {
      std::printf("  %s: sim %s, %d warnings/errors; kernel %s, %d warnings/errors%s\n",
                  i["name"].get<std::string>().c_str(), i["sim"].get<std::string>().c_str(),
                  i["sim_warnings"].get<int>(), i["kernel"].get<std::string>().c_str(), i["kernel_warnings"].get<int>(),
                  i["first_kernel_warning"].get<std::string>().empty()
                      ? ""
                      : (" (first: " + i["first_kernel_warning"].get<std::string>() + ")").c_str());
    }
    for (const auto& e : errors) std::printf("  error: %s\n", e.to_string().c_str());
  }
  return kernel_ok ? 0 : 1;
}

}  // namespace duet::testbed
