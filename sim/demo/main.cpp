// duet-sim-demo: a simulated dual-stack world and what a client sees in it.
//
//   client eth0 ── eth0 router eth1 ── eth0 server        vpn.test: AAAA fd00:2::2
//   198.18.1.2        (forwards)        198.18.2.2                  A    198.18.2.2
//   fd00:1::2                           fd00:2::2
//
// For each situation (IPv6 healthy, silently blackholed, unreachable, prohibited; IPv4
// broken) the client resolves vpn.test and tries every address in order, the way the
// "Socket Rework" note describes, and the demo prints each step in virtual time.
// It talks to the simulated stack directly, one plain attempt per address, to show what
// each fault does to a socket; duet-sim runs the engine itself (racing, failover).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>

#include "duet/net/error.hpp"
#include "duet/sim/world.hpp"

#ifndef DUET_VERSION
#define DUET_VERSION "0"
#endif

using namespace duet;
using namespace std::chrono_literals;

namespace {

struct Situation {
  const char* name;
  const char* route_prefix;  // on the router; nullptr: all healthy
  sim::RouteVerdict verdict;
};

const Situation kSituations[] = {
    {"IPv6 and IPv4 healthy", nullptr, sim::RouteVerdict::forward},
    {"IPv6 silently blackholed on the router", "fd00:2::2/128", sim::RouteVerdict::blackhole},
    {"IPv6 unreachable on the router (ICMPv6 no route)", "fd00:2::2/128", sim::RouteVerdict::unreachable},
    {"IPv6 prohibited on the router (ICMPv6 admin prohibited)", "fd00:2::2/128", sim::RouteVerdict::prohibit},
    {"IPv4 prohibited on the router, IPv6 healthy", "198.18.2.2/32", sim::RouteVerdict::prohibit},
};

void build(sim::SimWorld& w, const Situation& s) {
  sim::HostSettings router;
  router.forwarding = true;
  sim::LinkProperties link;
  link.one_way_delay = 5ms;
  link.jitter = 1ms;
  w.add_host("client");
  w.add_host("router", router);
  w.add_host("server");
  w.connect("client", "eth0", "router", "eth0", link);
  w.connect("router", "eth1", "server", "eth0", link);
  for (auto [h, i, p] : {std::tuple{"client", "eth0", "198.18.1.2/24"},
                         {"client", "eth0", "fd00:1::2/64"},
                         {"router", "eth0", "198.18.1.1/24"},
                         {"router", "eth0", "fd00:1::1/64"},
                         {"router", "eth1", "198.18.2.1/24"},
                         {"router", "eth1", "fd00:2::1/64"},
                         {"server", "eth0", "198.18.2.2/24"},
                         {"server", "eth0", "fd00:2::2/64"}}) {
    w.add_address(h, i, p);
  }
  for (const char* h : {"client", "server"}) {
    w.add_route(h, "default", sim::RouteVerdict::forward, "eth0");
    w.add_route(h, "default6", sim::RouteVerdict::forward, "eth0");
  }
  if (s.route_prefix != nullptr) w.add_route("router", s.route_prefix, s.verdict);
  w.set_dns(
      "vpn.test",
      {sim::DnsAnswer::Kind::records, {*net::Address::parse("198.18.2.2"), *net::Address::parse("fd00:2::2")}, 2ms});
}

/// Tries each resolved address in turn with a per-attempt timeout; logs every step.
class InOrderClient {
public:
  InOrderClient(sim::SimWorld& w, net::Duration attempt_timeout)
      : w_(w), stack_(w.stack("client")), timeout_(attempt_timeout) {}

  void start() {
    spdlog::info("  [{:>9.3f} ms] resolving vpn.test", now_ms());
    op_ = stack_.resolve("vpn.test", "1194", {std::nullopt, false, net::SocketType::stream},
                         [this](net::Result<std::vector<net::Endpoint>> r) {
                           if (!r) {
                             spdlog::warn("  [{:>9.3f} ms] resolve failed: {}", now_ms(), r.error().message());
                             done_ = true;
                             return;
                           }
                           std::string list;
                           for (const auto& e : *r) list += " " + e.to_string();
                           spdlog::info("  [{:>9.3f} ms] resolved (glibc order):{}", now_ms(), list);
                           remotes_ = std::move(*r);
                           next();
                         });
  }

  [[nodiscard]] bool done() const { return done_; }
  [[nodiscard]] const std::optional<net::Endpoint>& connected() const { return connected_; }
  [[nodiscard]] double finished_ms() const { return finished_ms_; }

private:
  double now_ms() const { return net::to_ms(w_.now().time_since_epoch()); }

  void next() {
    if (index_ >= remotes_.size()) {
      spdlog::warn("  [{:>9.3f} ms] every address failed", now_ms());
      finish();
      return;
    }
    const net::Endpoint remote = remotes_[index_++];
    spdlog::info("  [{:>9.3f} ms] connecting to {} over {} (timeout {} ms)", now_ms(), remote.to_string(),
                 net::to_string(remote.family()), net::to_ms(timeout_));
    socket_ = std::move(*stack_.open_stream(remote.family()));
    socket_->connect(remote, timeout_, [this, remote](std::error_code ec) {
      if (ec) {
        spdlog::info("  [{:>9.3f} ms] {} failed: {}", now_ms(), remote.to_string(), net::error_name(ec));
        next();
        return;
      }
      spdlog::info("  [{:>9.3f} ms] connected to {}", now_ms(), remote.to_string());
      connected_ = remote;
      finish();
    });
  }

  void finish() {
    done_ = true;
    finished_ms_ = now_ms();
  }

  sim::SimWorld& w_;
  net::NetworkStack& stack_;
  net::Duration timeout_;
  std::unique_ptr<net::PendingOperation> op_;
  std::vector<net::Endpoint> remotes_;
  std::size_t index_ = 0;
  std::unique_ptr<net::StreamSocket> socket_;
  std::optional<net::Endpoint> connected_;
  bool done_ = false;
  double finished_ms_ = 0;
};

struct Result {
  std::string name;
  std::string outcome;
};

/// Runs every situation in its own world; returns one line of outcome each.
std::vector<Result> run_all(std::uint64_t seed, const std::function<void(sim::SimWorld&)>& observe) {
  std::vector<Result> out;
  for (const auto& s : kSituations) {
    spdlog::info("situation: {}", s.name);
    sim::SimWorld w(seed);
    observe(w);
    build(w, s);
    std::vector<std::unique_ptr<net::Listener>> listeners;
    for (const char* local : {"0.0.0.0:1194", "[::]:1194"}) {
      // IPV6_V6ONLY so that both sockets can hold port 1194.
      listeners.push_back(std::move(*w.stack("server").listen(*net::Endpoint::parse(local), {true, 16})));
    }
    InOrderClient client(w, 10s);
    client.start();
    w.run_until([&] { return client.done(); }, 600s);
    std::string outcome = client.connected()
                              ? "connected over " + std::string(net::to_string(client.connected()->family()))
                              : "no connection";
    char when[64];
    std::snprintf(when, sizeof when, " after %.1f ms", client.finished_ms());
    out.push_back({s.name, outcome + when});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-sim-demo: a dual-stack client in a simulated world, step by step"};
  app.set_version_flag("--version", std::string("duet-sim-demo ") + DUET_VERSION);
  std::uint64_t seed = 1;
  std::string trace_path;
  std::string pcap_path;
  bool check = false;
  std::string level = "info";
  app.add_option("--seed", seed, "seed of the simulated world")->capture_default_str();
  app.add_option("--trace", trace_path, "write every packet and socket event as JSON lines");
  app.add_option("--pcap", pcap_path, "write the packets of the last situation as pcap");
  app.add_flag("--check-determinism", check, "run twice and compare the traces byte for byte");
  app.add_option("--log-level", level, "trace, debug, info, warn, error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_default_logger(spdlog::stdout_color_mt("demo"));
  spdlog::set_pattern("%v");
  spdlog::set_level(spdlog::level::from_str(level));

  std::ofstream trace_file;
  if (!trace_path.empty()) {
    trace_file.open(trace_path);
    if (!trace_file) {
      spdlog::error("cannot write {}", trace_path);
      return 2;
    }
  }
  std::vector<std::string> first_run;
  const auto wall_start = std::chrono::steady_clock::now();
  auto results = run_all(seed, [&](sim::SimWorld& w) {
    w.set_trace([&](std::string_view line) {
      first_run.emplace_back(line);
      if (trace_file) trace_file << line << '\n';
    });
    if (!pcap_path.empty()) w.open_pcap(pcap_path);
  });
  const double wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_start).count();

  spdlog::info("");
  spdlog::info("summary (seed {}, tries addresses in glibc order, 10 s per attempt):", seed);
  for (const auto& r : results) spdlog::info("  {:<58} {}", r.name, r.outcome);
  spdlog::info("{} situations, {} trace lines, {:.1f} ms of wall time", results.size(), first_run.size(), wall_ms);

  if (check) {
    spdlog::set_level(spdlog::level::warn);
    std::vector<std::string> second_run;
    run_all(seed,
            [&](sim::SimWorld& w) { w.set_trace([&](std::string_view line) { second_run.emplace_back(line); }); });
    spdlog::set_level(spdlog::level::from_str(level));
    for (std::size_t i = 0; i < std::max(first_run.size(), second_run.size()); ++i) {
      const std::string a = i < first_run.size() ? first_run[i] : "(end)";
      const std::string b = i < second_run.size() ? second_run[i] : "(end)";
      if (a != b) {
        spdlog::error("nondeterminism: traces differ first at line {}:\n  {}\n  {}", i + 1, a, b);
        return 3;
      }
    }
    spdlog::info("determinism: two runs with seed {} gave identical traces ({} lines)", seed, first_run.size());
  }
  return 0;
}
