// Builds the world a scenario describes, starts its duet instances on their hosts with
// the real engine (lib/transport), plays the fault timeline, and checks the sentences.
#include "duet/sim/runner.hpp"
#include "duet/sim/judge.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <set>

#include "duet/config/loader.hpp"
#include "duet/net/error.hpp"
#include "duet/net/ip_packet.hpp"
#include "duet/sim/probe_session.hpp"
#include "duet/plugin/host.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/server.hpp"
#include "duet/tunnel/device.hpp"

namespace duet::sim {

using transport::EventKind;

bool RunResult::passed() const {
  return errors.empty() && std::all_of(expectations.begin(), expectations.end(),
                                       [](const ExpectationResult& e) { return e.passed; });
}

namespace {

/// The WireGuard side of an instance whose configuration has a private key: the real data
/// channel with a simulated TUN that answers pings to its own addresses.
struct Tunnel {
  std::unique_ptr<tunnel::Device> device;
  std::unique_ptr<tunnel::DeviceSessions> responders, initiators;
  std::vector<net::Address> addresses;                // ifconfig
  std::map<net::Address, int> echo_replies;           // by source
  std::uint64_t packets_in = 0;
};

/// One duet instance: its configuration and, while its host runs, its engine.
struct Instance {
  const ScenarioInstance* spec = nullptr;
  config::LoadResult loaded;
  std::unique_ptr<ProbeSessionFactory> sessions;
  std::unique_ptr<Tunnel> tunnel;
  std::unique_ptr<transport::SocketFactory> sockets;
  std::unique_ptr<transport::Server> server;
  std::unique_ptr<transport::Client> client;
  std::vector<transport::Event> events;
  std::vector<std::string> listening;  // as last started
  bool started = false;
  bool startup_failed = false;
  net::TimePoint started_at{};
  int sent = 0;
  int pings_sent = 0;
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
    throw SimError("route '" + text + "' is not 'PREFIX dev IF', 'default dev IF', 'default6 dev IF' or "
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
          if (s_.swarm.loss) p.loss_probability = s_.swarm.loss->first + swarm.unit() * (s_.swarm.loss->second - s_.swarm.loss->first);
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
      if (!world_.has_host(spec.host)) invalid(spec.host_line ? spec.host_line : spec.line, "instance '" + spec.name + "' names unknown host '" + spec.host + "'");
      if (!names.insert(spec.name).second) invalid(spec.line, "two instances are named '" + spec.name + "'");
      auto inst = std::make_unique<Instance>();
      inst->spec = &spec;
      inst->loaded = config::load_text(spec.config, s_.file + ":" + spec.name);
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
    std::string plugin_error;
    in.sockets = plugin::sockets_for(in.loaded.config, stack, plugin_error);
    if (!in.sockets) {
      in.events.push_back({.time = world_.now(), .kind = EventKind::startup_failed, .detail = plugin_error});
      in.startup_failed = true;
      return;
    }
    auto sink = [this, &in](const transport::Event& e) {
      in.events.push_back(e);
      world_.annotate(in.spec->host, "duet:" + std::string(transport::to_string(e.kind)), in.spec->name + ": " + e.describe());
      if (o_.log) {
        o_.log->log(severity_of(e.kind) == config::Severity::error     ? spdlog::level::err
                    : severity_of(e.kind) == config::Severity::warning ? spdlog::level::warn
                                                                       : spdlog::level::info,
                    "[{:>10.3f} ms] {}: {}", net::to_ms(e.time.time_since_epoch()), in.spec->name, e.describe());
      }
      if (e.kind == EventKind::startup_failed) in.startup_failed = true;
    };
    const config::Config& cfg = in.loaded.config;
    transport::SessionFactory* responders = in.sessions.get();
    transport::SessionFactory* initiators = in.sessions.get();
    if (!cfg.private_key.empty()) {
      if (!make_tunnel(in, stack)) return;
      responders = in.tunnel->responders.get();
      initiators = in.tunnel->initiators.get();
    }
    if (!cfg.listens.empty()) {
      in.server = std::make_unique<transport::Server>(stack, cfg, *responders, sink);
      in.server->start([&in](bool) {
        in.listening.clear();
        for (const auto& l : in.server->listening()) in.listening.push_back(l.to_string());
      });
    }
    bool has_remote = false;
    for (const auto& c : cfg.connections) has_remote = has_remote || !c.remotes.empty();
    if (has_remote) {
      in.client = std::make_unique<transport::Client>(stack, *in.sockets, cfg, *initiators, sink, in.server.get());
      in.client->start();
    }
  }

  bool make_tunnel(Instance& in, net::NetworkStack& stack) {
    const config::Config& cfg = in.loaded.config;
    auto key = tunnel::key_from_base64(cfg.private_key);
    if (!key) {
      in.startup_failed = true;
      in.events.push_back({.time = world_.now(), .kind = EventKind::startup_failed,
                           .detail = "in a scenario, private-key must be the key itself (base64)"});
      return false;
    }
    std::vector<tunnel::PeerConfig> peers;
    for (const auto& p : cfg.peers) peers.push_back({*tunnel::key_from_base64(p.public_key), {}, p.allowed_ips});
    auto t = std::make_unique<Tunnel>();
    for (const auto& a : cfg.ifconfig) t->addresses.push_back(a.address);
    Tunnel* tp = t.get();
    // The simulated TUN: answer echo requests to our addresses, count echo replies.
    auto to_tun = [this, tp, &stack](std::span<const std::uint8_t> packet) {
      ++tp->packets_in;
      auto h = tunnel::inner_header(packet);
      if (!h || packet.size() < 28 || packet[9] != 1) return;
      if (packet[20] == 0) {
        ++tp->echo_replies[h->source];
      } else if (packet[20] == 8 &&
                 std::find(tp->addresses.begin(), tp->addresses.end(), h->destination) != tp->addresses.end()) {
        auto reply = net::ipv4_icmp_echo(0, h->destination, h->source, static_cast<std::uint16_t>((packet[24] << 8) | packet[25]),
                                          static_cast<std::uint16_t>((packet[26] << 8) | packet[27]));
        stack.clock().post([tp, reply] { tp->device->route(reply); });
      }
      (void)this;
    };
    // Ephemeral keys and indices from the world's seeded generator: runs replay exactly.
    t->device = std::make_unique<tunnel::Device>(tunnel::Identity::from_private(*key), peers, stack.clock(), to_tun,
                                                 [&stack](std::span<std::uint8_t> out) {
                                                   for (auto& b : out) b = static_cast<std::uint8_t>(stack.random());
                                                 });
    t->responders = std::make_unique<tunnel::DeviceSessions>(*t->device, std::nullopt);
    t->initiators = std::make_unique<tunnel::DeviceSessions>(*t->device, peers.empty() ? std::nullopt : std::optional<std::size_t>(0));
    in.tunnel = std::move(t);
    return true;
  }

  /// "X pings A": an echo request from X's first tunnel address every second.
  void schedule_pings(Instance& in, const net::Address& to) {
    for (auto t = in.spec->start + std::chrono::seconds(1); t < s_.duration; t += std::chrono::seconds(1)) {
      world_.at(t, [this, &in, to, seq = static_cast<std::uint16_t>(t.count() / 1'000'000'000)] {
        if (!in.tunnel || in.tunnel->addresses.empty()) return;
        ++in.pings_sent;
        in.tunnel->device->route(net::ipv4_icmp_echo(8, in.tunnel->addresses.front(), to, 0x6475, seq));
      });
    }
  }

  void stop(Instance& in) {
    in.client.reset();
    in.server.reset();
    in.tunnel.reset();
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
      if (in == nullptr) invalid(x.line, "expectation names unknown instance '" + m[1].str() + "': " + x.text);
      else if (!to || !to->is_v4()) invalid(x.line, "'" + m[2].str() + "' is not an IPv4 address in: " + x.text);
      else schedule_pings(*in, *to);
    }
    for (const auto& x : s_.sends) {
      Instance* in = instance(x.instance);
      if (in == nullptr) {
        invalid(x.line, "send names unknown instance '" + x.instance + "'");
        continue;
      }
      world_.at(x.at, [this, in, &x] { send_when_connected(*in, x.count); });
    }
    return result_.errors.empty();
  }

  void send_when_connected(Instance& in, int count) {
    if (in.client && in.client->connected()) {
      for (int i = 0; i < count; ++i) in.client->send(ProbeSession::data(static_cast<std::uint64_t>(in.sent++)));
      return;
    }
    // Not connected (yet): try again shortly, until the scenario ends.
    world_.at(world_.now().time_since_epoch() + std::chrono::milliseconds(10), [this, &in, count] { send_when_connected(in, count); });
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
      if (f.action == "add-address") world_.add_address(f.host, words[0], words[1]);
      else world_.remove_address(f.host, words[0], words[1]);
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
      if (in->client && in->client->connected()) o.connected_at_end = in->client->remote();
      o.data_received = in->sessions->stats.data_received;
      o.peers_accepted = in->server ? in->server->peers() : 0;
      o.has_tunnel = in->tunnel != nullptr;
      if (in->tunnel) o.echo_replies = in->tunnel->echo_replies;
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
