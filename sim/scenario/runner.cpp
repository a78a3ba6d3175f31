// Builds the world a scenario describes, starts its duet instances on their hosts with
// the daemon's own wiring (node::Node over a SimStack and a SimTun), plays the fault
// timeline, and checks the sentences.
#include "duet/sim/runner.hpp"
#include "duet/sim/judge.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <set>

#include "duet/config/loader.hpp"
#include "duet/net/error.hpp"
#include "duet/net/ping.hpp"
#include "duet/node/node.hpp"
#include "duet/policy/review.hpp"
#include "duet/sim/probe_session.hpp"
#include "duet/sim/tun.hpp"

namespace duet::sim {

using transport::EventKind;

bool RunResult::passed() const {
  return errors.empty() &&
         std::all_of(expectations.begin(), expectations.end(), [](const ExpectationResult& e) { return e.passed; });
}

namespace {

/// One duet instance: its configuration and, while its host runs, its node.
struct Instance {
  const ScenarioInstance* spec = nullptr;
  config::LoadResult loaded;
  std::unique_ptr<ProbeSessionFactory> sessions;  ///< without a private key
  std::unique_ptr<SimTun> tun;                    ///< with one
  std::unique_ptr<node::Node> node;
  std::vector<transport::Event> events;
  std::vector<std::string> listening;  // as last started
  bool started = false;
  bool startup_failed = false;
  net::TimePoint started_at{};
  int sent = 0;
  int pings_sent = 0;
  transport::Client* client() { return node ? node->client() : nullptr; }
};

/// "default dev eth0", "blackhole fd00::/64", "198.18.0.0/24 dev eth1"
void apply_route(SimWorld& w, const std::string& host, const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string x; in >> x;) words.push_back(x);
  auto verdict = [](const std::string& v) -> std::optional<RouteVerdict> {
    if (v == "blackhole") return RouteVerdict::blackhole;
    if (v == "unreachable") return RouteVerdict::unreachable;
    if (v == "prohibit") return RouteVerdict::prohibit;
    return std::nullopt;
  };
  if (words.size() == 2 && verdict(words[0])) {
    w.add_route(host, words[1], *verdict(words[0]));
  } else if (words.size() == 3 && words[1] == "dev") {
    w.add_route(host, words[0], RouteVerdict::forward, words[2]);
  } else {
    throw SimError("route '" + text +
                   "' is not 'PREFIX dev IF', 'default dev IF', 'default6 dev IF' or "
                   "'blackhole|unreachable|prohibit PREFIX'");
  }
}

/// "X pings A": scheduled before the run (the pings must be sent), judged after it.

class Run {
public:
  Run(const Scenario& s, const RunOptions& o) : s_(s), o_(o), world_(o.seed) {}

  RunResult go() {
    const auto wall = std::chrono::steady_clock::now();
    if (o_.trace) world_.set_trace(o_.trace);
    try {
      if (!o_.pcap.empty()) world_.open_pcap(o_.pcap);
    } catch (const SimError& e) {
      result_.errors.push_back({s_.file, 0, e.what()});
      return result_;
    }
    if (build() && schedule()) {
      world_.run_for(s_.duration);
      result_.virtual_time = world_.now().time_since_epoch();
      judge();
      for (const auto& in : instances_) {
        for (const auto& e : in->events) {
          if (e.kind == EventKind::connected) result_.connected_at[in->spec->name].push_back(e.time);
          if (transport::level_of(e.kind) >= transport::EventLevel::warning) {
            result_.warnings[in->spec->name].push_back(e.describe());
          }
        }
      }
    }
    stop_all();
    result_.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall).count();
    return result_;
  }

private:
  void invalid(int line, const std::string& message) { result_.errors.push_back({s_.file, line, message}); }

  bool build() {
    try {
      for (const auto& h : s_.hosts) {
        try {
          world_.add_host(h.name, h.settings);
        } catch (const SimError& e) {
          invalid(h.line, e.what());
        }
      }
      Random swarm(o_.seed ^ 0x5eed5eed5eedull);
      for (const auto& l : s_.links) {
        LinkProperties p = l.properties;
        if (o_.swarm) {
          auto draw = [&](std::pair<net::Duration, net::Duration> r) {
            return r.first + swarm.up_to(r.second - r.first);
          };
          if (s_.swarm.delay) p.one_way_delay = draw(*s_.swarm.delay);
          if (s_.swarm.jitter) p.jitter = draw(*s_.swarm.jitter);
          if (s_.swarm.loss)
            p.loss_probability = s_.swarm.loss->first + swarm.unit() * (s_.swarm.loss->second - s_.swarm.loss->first);
        }
        try {
          world_.connect(l.host_a, l.if_a, l.host_b, l.if_b, p);
        } catch (const SimError& e) {
          invalid(l.line, e.what());
        }
      }
      for (const auto& h : s_.hosts) {
        for (const auto& [iface, prefix] : h.addresses) {
          try {
            world_.add_address(h.name, iface, prefix);
          } catch (const SimError& e) {
            invalid(h.line, e.what());
          }
        }
        for (const auto& r : h.routes) {
          try {
            apply_route(world_, h.name, r.text);
          } catch (const SimError& e) {
            invalid(r.line, e.what());
          }
        }
      }
      for (const auto& [name, answer] : s_.dns) world_.set_dns(name, answer);
    } catch (const SimError& e) {
      invalid(0, e.what());
    }
    std::set<std::string> names;
    std::uint64_t id_base = 1;
    for (const auto& spec : s_.instances) {
      if (!world_.has_host(spec.host))
        invalid(spec.host_line ? spec.host_line : spec.line,
                "instance '" + spec.name + "' names unknown host '" + spec.host + "'");
      if (!names.insert(spec.name).second) invalid(spec.line, "two instances are named '" + spec.name + "'");
      auto inst = std::make_unique<Instance>();
      inst->spec = &spec;
      inst->loaded = policy::reviewed(config::load_text(spec.config, s_.file + ":" + spec.name));
      inst->sessions = std::make_unique<ProbeSessionFactory>(id_base);
      id_base += 1'000'000;
      instances_.push_back(std::move(inst));
    }
    return result_.errors.empty();
  }

  Instance* instance(const std::string& name) {
    for (auto& i : instances_) {
      if (i->spec->name == name) return i.get();
    }
    return nullptr;
  }

  void start(Instance& in) {
    in.started = true;
    in.started_at = world_.now();
    if (!in.loaded.ok()) {
      in.startup_failed = true;
      return;
    }
    net::NetworkStack& stack = world_.stack(in.spec->host);
    const config::Config& cfg = in.loaded.config;
    node::NodeOptions options;
    options.events = [this, &in](const transport::Event& e) {
      in.events.push_back(e);
      world_.annotate(in.spec->host, "duet:" + std::string(transport::to_string(e.kind)),
                      in.spec->name + ": " + e.describe());
      if (o_.log) {
        o_.log->log(severity_of(e.kind) == config::Severity::error     ? spdlog::level::err
                    : severity_of(e.kind) == config::Severity::warning ? spdlog::level::warn
                                                                       : spdlog::level::info,
                    "[{:>10.3f} ms] {}: {}", net::to_ms(e.time.time_since_epoch()), in.spec->name, e.describe());
      }
      if (e.kind == EventKind::startup_failed) in.startup_failed = true;
    };
    options.listening = [&in](bool) {
      in.listening.clear();
      for (const auto& l : in.node->server()->listening()) in.listening.push_back(l.to_string());
    };
    if (cfg.private_key.empty()) {
      options.sessions = in.sessions.get();
    } else {
      std::vector<net::Address> addresses;
      for (const auto& a : cfg.ifconfig) addresses.push_back(a.address);
      in.tun = std::make_unique<SimTun>(stack.clock(), cfg.dev, addresses);
    }
    in.node = std::make_unique<node::Node>(stack, in.tun.get(), cfg, std::move(options));
    std::string why;
    if (!in.node->start(why)) in.startup_failed = true;
  }

  /// "X pings A": an echo request from X's first tunnel address every second.
  void schedule_pings(Instance& in, const net::Address& to) {
    for (auto t = in.spec->start + std::chrono::seconds(1); t < s_.duration; t += std::chrono::seconds(1)) {
      world_.at(t, [&in, to, seq = static_cast<std::uint16_t>(t.count() / 1'000'000'000)] {
        if (!in.tun || !in.node || in.tun->addresses().empty()) return;
        ++in.pings_sent;
        (void)in.tun->inject(net::ipv4_icmp_echo(8, in.tun->addresses().front(), to, 0x6475, seq));
      });
    }
  }

  void stop(Instance& in) {
    in.node.reset();
    in.tun.reset();
  }

  void stop_all() {
    for (auto& i : instances_) stop(*i);
  }

  bool schedule() {
    for (auto& in : instances_) {
      Instance* p = in.get();
      world_.at(in->spec->start, [this, p] { start(*p); });
    }
    for (const auto& f : s_.faults) {
      if (!world_.has_host(f.host)) {
        invalid(f.line, "fault names unknown host '" + f.host + "'");
        continue;
      }
      world_.at(f.at, [this, &f] {
        try {
          fault(f);
        } catch (const SimError& e) {
          invalid(f.line, std::string("fault cannot be applied: ") + e.what());
        }
      });
    }
    for (const auto& x : s_.expectations) {
      std::smatch m;
      if (!std::regex_match(x.text, m, pings_sentence())) continue;
      Instance* in = instance(m[1]);
      auto to = net::Address::parse(m[2].str());
      if (in == nullptr)
        invalid(x.line, "expectation names unknown instance '" + m[1].str() + "': " + x.text);
      else if (!to || !to->is_v4())
        invalid(x.line, "'" + m[2].str() + "' is not an IPv4 address in: " + x.text);
      else
        schedule_pings(*in, *to);
    }
    for (const auto& x : s_.sends) {
      Instance* in = instance(x.instance);
      if (in == nullptr) {
        invalid(x.line, "send names unknown instance '" + x.instance + "'");
        continue;
      }
      const net::Duration end = x.until.value_or(s_.duration);
      for (net::Duration t = x.at; t <= end; t += x.every) {
        world_.at(t, [this, in, &x] { send_when_connected(*in, x.count); });
        if (x.every.count() == 0) break;
      }
    }
    return result_.errors.empty();
  }

  void send_when_connected(Instance& in, int count) {
    if (in.client() && in.client()->connected()) {
      for (int i = 0; i < count; ++i) in.client()->send(ProbeSession::data(static_cast<std::uint64_t>(in.sent++)));
      return;
    }
    // Not connected (yet): try again shortly, until the scenario ends.
    world_.at(world_.now().time_since_epoch() + std::chrono::milliseconds(10),
              [this, &in, count] { send_when_connected(in, count); });
  }

  void fault(const ScenarioFault& f) {
    std::istringstream in(f.argument);
    std::vector<std::string> words;
    for (std::string x; in >> x;) words.push_back(x);
    if (f.action == "route") {
      apply_route(world_, f.host, f.argument);
    } else if (f.action == "unroute") {
      world_.remove_route(f.host, f.argument);
    } else if (f.action == "partition") {
      world_.partition(f.host, f.argument);
    } else if (f.action == "heal") {
      world_.heal(f.host, f.argument);
    } else if (f.action == "down" || f.action == "up") {
      world_.set_interface_up(f.host, f.argument, f.action == "up");
    } else if (f.action == "crash") {
      for (auto& i : instances_) {
        if (i->spec->host == f.host) stop(*i);
      }
      world_.crash(f.host);
    } else if (f.action == "restart") {
      world_.restart(f.host);
      for (auto& i : instances_) {
        if (i->spec->host == f.host && i->started) start(*i);
      }
    } else if (f.action == "remove-address" || f.action == "add-address") {
      if (words.size() != 2) throw SimError(f.action + " takes \"INTERFACE PREFIX\"");
      if (f.action == "add-address")
        world_.add_address(f.host, words[0], words[1]);
      else
        world_.remove_address(f.host, words[0], words[1]);
    }
  }

  // --- expectations: what each instance did, judged by the code the testbed shares ---

  void judge() {
    std::vector<Observed> seen;
    for (const auto& in : instances_) {
      Observed o;
      o.name = in->spec->name;
      o.started = in->started;
      o.startup_failed = in->startup_failed;
      o.started_at = in->started_at;
      o.diagnostics = in->loaded.diagnostics.all();
      for (const auto& e : in->events) o.events.push_back({e, e.describe()});
      o.listening = in->listening;
      if (in->client() && in->client()->connected()) o.connected_at_end = in->client()->remote();
      o.data_received = in->sessions->stats.data_received;
      o.peers_accepted = in->node && in->node->server() ? in->node->server()->peers() : 0;
      o.has_tunnel = in->tun != nullptr && in->node != nullptr;
      if (in->tun) o.echo_replies = in->tun->echo_replies();
      o.pings_sent = in->pings_sent;
      seen.push_back(std::move(o));
    }
    judge_expectations(s_, seen, result_.expectations, result_.errors);
  }

  const Scenario& s_;
  const RunOptions& o_;
  SimWorld world_;
  RunResult result_;
  std::vector<std::unique_ptr<Instance>> instances_;  // after world_: destroyed first
};

}  // namespace

RunResult run_scenario(const Scenario& scenario, const RunOptions& options) { return Run(scenario, options).go(); }

}  // namespace duet::sim
