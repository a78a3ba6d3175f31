// Builds the world a scenario describes, starts its duet instances on their hosts with
// the real engine (lib/transport), plays the fault timeline, and checks the sentences.
#include "duet/sim/runner.hpp"

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

/// What "X logs info|warning|error" matches: the engine's own level of each event (debug
/// steps count as info here, since a scenario has no debug sentences).
config::Severity severity_of(EventKind k) {
  switch (transport::level_of(k)) {
    case transport::EventLevel::error: return config::Severity::error;
    case transport::EventLevel::warning: return config::Severity::warning;
    default: return config::Severity::info;
  }
}

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
const std::regex kPings(R"re(^(\S+) pings (\S+)$)re");

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
      if (!std::regex_match(x.text, m, kPings)) continue;
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

  // --- expectations --------------------------------------------------------------------

  const transport::Event* first(const Instance& in, EventKind k, net::TimePoint after = {}) const {
    for (const auto& e : in.events) {
      if (e.kind == k && e.time >= after) return &e;
    }
    return nullptr;
  }

  static std::string ms(net::Duration d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f ms", net::to_ms(d));
    return buf;
  }

  static bool family_is(const transport::Event& e, const std::string& fam) {
    return fam.empty() || (fam == "IPv4") == e.endpoint->address.is_v4();
  }
  static bool transport_is(const transport::Event& e, const std::string& t) {
    return t.empty() || t == config::to_string(*e.transport);
  }

  std::string connected_summary(const Instance& in) const {
    const auto* c = first(in, EventKind::connected);
    if (!c) {
      std::string last;
      for (const auto& e : in.events) {
        if (e.kind == EventKind::attempt_failed || e.kind == EventKind::round_failed || e.kind == EventKind::resolve_failed ||
            e.kind == EventKind::bind_remote_error) {
          last = e.describe();
        }
      }
      return "never connected" + (last.empty() ? std::string() : " (last: " + last + ")");
    }
    return "connected to " + c->endpoint->to_string() + "/" + std::string(config::to_string(*c->transport)) + " after " +
           ms(c->time - in.started_at);
  }

  void judge() {
    static const std::regex connects_within(R"re(^(\S+) connects within (\S+?)(?: over (IPv4|IPv6))?(?: via (udp|tcp))?$)re");
    static const std::regex connects_after(R"re(^(\S+) connects after at least (\S+?)(?: over (IPv4|IPv6))?$)re");
    static const std::regex connects(R"re(^(\S+) connects(?: over (IPv4|IPv6))?(?: via (udp|tcp))?$)re");
    static const std::regex no_connect(R"re(^(\S+) does not connect$)re");
    static const std::regex ends_connected(R"re(^(\S+) ends connected(?: over (IPv4|IPv6))?$)re");
    static const std::regex listens(R"re(^(\S+) listens on exactly (.+)$)re");
    static const std::regex fails(R"re(^(\S+) fails to start with "(.*)"$)re");
    static const std::regex starts(R"re(^(\S+) starts$)re");
    static const std::regex logs(R"re(^(\S+) logs (info|warning|error) "(.*)"$)re");
    static const std::regex logs_no(R"re(^(\S+) logs no (warnings|errors)$)re");
    static const std::regex never_tries(R"re(^(\S+) never tries (\S+)$)re");
    static const std::regex reconnects(R"re(^(\S+) reconnects within (\S+?) after (\S+?)(?: over (IPv4|IPv6))?$)re");
    static const std::regex binds_nothing(R"re(^(\S+) binds nothing$)re");
    static const std::regex binds_only(R"re(^(\S+) binds only (IPv4|IPv6)$)re");
    static const std::regex receives(R"re(^(\S+) receives (\d+) messages?$)re");
    static const std::regex accepts(R"re(^(\S+) accepts (\d+) peers?$)re");

    for (const auto& x : s_.expectations) {
      ExpectationResult r{x, false, ""};
      std::smatch m;
      const std::string& t = x.text;
      auto need_instance = [&](const std::string& name) -> Instance* {
        Instance* in = instance(name);
        if (!in) invalid(x.line, "expectation names unknown instance '" + name + "': " + t);
        return in;
      };
      auto need_duration = [&](const std::string& text) -> std::optional<net::Duration> {
        auto d = parse_duration(text);
        if (!d) invalid(x.line, "'" + text + "' is not a duration in: " + t);
        return d;
      };
      if (std::regex_match(t, m, connects_within)) {
        Instance* in = need_instance(m[1]);
        auto d = need_duration(m[2]);
        if (!in || !d) continue;
        const auto* c = first(*in, EventKind::connected);
        r.passed = c && c->time - in->started_at <= *d && family_is(*c, m[3]) && transport_is(*c, m[4]);
        r.detail = connected_summary(*in);
      } else if (std::regex_match(t, m, connects_after)) {
        Instance* in = need_instance(m[1]);
        auto d = need_duration(m[2]);
        if (!in || !d) continue;
        const auto* c = first(*in, EventKind::connected);
        r.passed = c && c->time - in->started_at >= *d && family_is(*c, m[3]);
        r.detail = connected_summary(*in);
      } else if (std::regex_match(t, m, connects)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        const auto* c = first(*in, EventKind::connected);
        r.passed = c && family_is(*c, m[2]) && transport_is(*c, m[3]);
        r.detail = connected_summary(*in);
      } else if (std::regex_match(t, m, no_connect)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        r.passed = first(*in, EventKind::connected) == nullptr;
        r.detail = connected_summary(*in);
      } else if (std::regex_match(t, m, ends_connected)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        const bool up = in->client && in->client->connected();
        r.passed = up && (m[2].str().empty() || (m[2] == "IPv4") == in->client->remote()->address.is_v4());
        r.detail = up ? "connected to " + in->client->remote()->to_string() : "not connected at the end";
      } else if (std::regex_match(t, m, listens)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        std::istringstream words(m[2].str());
        std::multiset<std::string> want, got(in->listening.begin(), in->listening.end());
        for (std::string w; words >> w;) want.insert(w);
        r.passed = want == got;
        for (const auto& g : in->listening) r.detail += (r.detail.empty() ? "listening on " : " ") + g;
        if (r.detail.empty()) r.detail = "listening on nothing";
      } else if (std::regex_match(t, m, fails)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        std::string all;
        for (const auto& d : in->loaded.diagnostics.all()) {
          if (d.severity == config::Severity::error) all += d.message + "\n";
        }
        for (const auto& e : in->events) {
          if (e.kind == EventKind::startup_failed) all += e.describe() + "\n";
        }
        r.passed = in->startup_failed && all.find(m[2].str()) != std::string::npos;
        r.detail = in->startup_failed ? "failed with: " + all : "started fine";
      } else if (std::regex_match(t, m, starts)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        r.passed = in->started && !in->startup_failed;
        r.detail = in->startup_failed ? "failed to start" : "started";
      } else if (std::regex_match(t, m, logs) || std::regex_match(t, m, logs_no)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        const bool none = m.size() == 3;
        const std::string level = none ? (m[2] == "warnings" ? "warning" : "error") : m[2].str();
        const auto sev = level == "error" ? config::Severity::error
                         : level == "warning" ? config::Severity::warning
                                              : config::Severity::info;
        std::vector<std::string> lines;
        for (const auto& d : in->loaded.diagnostics.all()) {
          if (d.severity == sev) lines.push_back(d.message);
        }
        for (const auto& e : in->events) {
          if (severity_of(e.kind) == sev) lines.push_back(e.describe());
        }
        if (none) {
          r.passed = lines.empty();
          r.detail = lines.empty() ? "" : "logged: " + lines.front();
        } else {
          const std::string want = m[3];
          r.passed = std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(want) != std::string::npos; });
          r.detail = lines.empty() ? "nothing at that level" : std::to_string(lines.size()) + " lines, e.g. " + lines.front();
        }
      } else if (std::regex_match(t, m, never_tries)) {
        Instance* in = need_instance(m[1]);
        auto addr = net::Address::parse(m[2].str());
        if (!addr) invalid(x.line, "'" + m[2].str() + "' is not an address in: " + t);
        if (!in || !addr) continue;
        r.passed = true;
        for (const auto& e : in->events) {
          if (e.kind == EventKind::attempt_started && e.endpoint->address == *addr) {
            r.passed = false;
            r.detail = "tried " + e.endpoint->to_string();
          }
        }
      } else if (std::regex_match(t, m, reconnects)) {
        Instance* in = need_instance(m[1]);
        auto d = need_duration(m[2]);
        auto after = need_duration(m[3]);
        if (!in || !d || !after) continue;
        const net::TimePoint fault_at(*after);
        const auto* before = first(*in, EventKind::connected);
        const auto* again = first(*in, EventKind::connected, fault_at + std::chrono::nanoseconds(1));
        r.passed = before && before->time <= fault_at && again && again->time - fault_at <= *d && family_is(*again, m[4]);
        r.detail = !before ? "never connected before the fault"
                   : !again ? "no new connection after the fault"
                            : "reconnected to " + again->endpoint->to_string() + " " + ms(again->time - fault_at) + " after";
      } else if (std::regex_match(t, m, kPings)) {
        Instance* in = need_instance(m[1]);
        auto to = net::Address::parse(m[2].str());
        if (!in || !to) continue;
        const int answered = in->tunnel ? in->tunnel->echo_replies[*to] : 0;
        r.passed = answered > 0;
        r.detail = std::to_string(answered) + " of " + std::to_string(in->pings_sent) + " pings answered" +
                   (in->tunnel ? "" : " (no tunnel: the instance has no private-key)");
      } else if (std::regex_match(t, m, binds_nothing) || std::regex_match(t, m, binds_only)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        const bool nothing = m.size() == 2;
        std::set<std::string> families;
        for (const auto& e : in->events) {
          if (e.kind == EventKind::bind_ok) {
            families.insert(std::string(net::to_string(e.endpoint->family())));
            r.detail += (r.detail.empty() ? "bound " : ", ") + e.endpoint->to_string();
          }
        }
        r.passed = nothing ? families.empty() : families == std::set<std::string>{m[2].str()};
        if (r.detail.empty()) r.detail = "bound nothing";
      } else if (std::regex_match(t, m, receives)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        r.passed = in->sessions->stats.data_received == std::stoull(m[2]);
        r.detail = "received " + std::to_string(in->sessions->stats.data_received);
      } else if (std::regex_match(t, m, accepts)) {
        Instance* in = need_instance(m[1]);
        if (!in) continue;
        const std::size_t peers = in->server ? in->server->peers() : 0;
        r.passed = peers == std::stoull(m[2]);
        r.detail = "accepted " + std::to_string(peers);
      } else {
        invalid(x.line, "cannot understand the expectation \"" + t + "\" (see sim/scenarios/README.md)");
        continue;
      }
      result_.expectations.push_back(std::move(r));
    }
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
