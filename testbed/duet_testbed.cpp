// duet-testbed: the helper behind testbed/run. It reads a scenario file with the
// simulator's own loader and
//   plan  prints the bash that builds the scenario on network namespaces (hosts, veth
//         links, addresses, routes and their verdicts, /etc/netns hosts files), starts one
//         duetd per instance (with generated keys, peers and a TUN address), plays the fault
//         timeline, pings where the scenario pings, and stops everything at the end;
//   judge reads what the daemons did (duetd --events) and judges the scenario's sentences
//         with the simulator's judge, runs the simulator on the same file, and prints both
//         side by side (with --json, one JSON object).
//   dns   serves the scenario's DNS answers in a namespace (the plan starts one per host).
// A scenario the kernel cannot replay faithfully (link loss, jitter or bandwidth without
// netem, partitions, an answer order glibc would change, probe-session data) is reported
// as simulator-only with the reason.
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <thread>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "duet/config/loader.hpp"
#include "duet/sim/judge.hpp"
#include "duet/sim/runner.hpp"
#include "duet/sim/scenario.hpp"

using namespace duet;
using json = nlohmann::json;

namespace {

constexpr const char* kUsage =
    "usage: duet-testbed plan SCENARIO PREFIX DIR DUETD\n"
    "       duet-testbed judge SCENARIO DIR START_UNIX_MS [--json]\n"
    "       duet-testbed why-not SCENARIO   (empty output: the testbed can run it)\n"
    "       duet-testbed report RUN.jsonl     (bench/FIDELITY.md from testbed/run --json)\n"
    "       duet-testbed dns SCENARIO         (the scenario's DNS answers on 127.0.0.1:53)\n";

/// Why the kernel testbed cannot replay `s` faithfully; empty if it can.
std::string simulator_only(const sim::Scenario& s) {
  if (!s.simulator_only.empty()) return s.simulator_only;
  for (const auto& l : s.links) {
    const auto& p = l.properties;
    if (p.loss_probability > 0 || p.duplicate_probability > 0 || p.reorder_probability > 0 || p.jitter.count() > 0 ||
        p.bandwidth_bits_per_second > 0 || p.mtu != 1500) {
      return "link loss, jitter, reordering, bandwidth or MTU need an emulator (this kernel has no netem)";
    }
  }
  for (const auto& [name, a] : s.dns) {
    bool used = false;  // a shared topology may define names this scenario never asks for
    for (const auto& in : s.instances) used = used || in.config.find(name) != std::string::npos;
    // The testbed's DNS server gives every kind of answer, but glibc sorts what it gets:
    // a raw order survives only if it is already glibc's (IPv6 before IPv4 here).
    bool v4_seen = false, v6_after_v4 = false;
    for (const auto& r : a.records) {
      v6_after_v4 = v6_after_v4 || (v4_seen && r.is_v6());
      v4_seen = v4_seen || r.is_v4();
    }
    if (used && a.raw_order && v6_after_v4) {
      return "DNS answer for " + name + " puts IPv4 before IPv6 and glibc would reorder it (the simulator's raw_order)";
    }
  }
  for (const auto& f : s.faults) {
    if (f.action == "partition" || f.action == "heal") return "partitions are not replayed on namespaces yet";
  }
  for (const auto& h : s.hosts) {
    if (h.settings.tcp_syn_retries != 6 || h.settings.bindv6only || h.settings.icmp_ratelimit_v4 != std::chrono::seconds(1) ||
        h.settings.icmp_ratelimit_v6 != std::chrono::milliseconds(100) || h.settings.keep_addr_on_down ||
        h.settings.ephemeral_low != 32768 || h.settings.ephemeral_high != 60999) {
      return "host settings beyond forwarding and disable_ipv6 are not applied yet";
    }
  }
  return "";
}

std::string q(const std::string& s) {  // single-quoted for bash
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Names {
  std::string prefix;
  std::string ns(const std::string& host) const { return prefix + "_" + host; }
};

/// The address of the host at the other end of host:iface in the family of `want`
/// (for routes "dev IFACE": a veth is not point-to-point, so the kernel needs a gateway).
std::optional<std::string> peer_address(const sim::Scenario& s, const std::string& host, const std::string& iface, bool v6) {
  for (const auto& l : s.links) {
    std::string other, other_if;
    if (l.host_a == host && l.if_a == iface) other = l.host_b, other_if = l.if_b;
    else if (l.host_b == host && l.if_b == iface) other = l.host_a, other_if = l.if_a;
    else continue;
    for (const auto& h : s.hosts) {
      if (h.name != other) continue;
      for (const auto& [i, prefix] : h.addresses) {
        auto p = net::Prefix::parse(prefix);
        if (i == other_if && p && p->address.is_v6() == v6) return p->address.to_string();
      }
    }
  }
  return std::nullopt;
}

/// `ip` arguments ("[-6] route add ...") for a scenario route ("default dev eth0", "blackhole X", ...).
std::optional<std::string> route_args(const sim::Scenario& s, const std::string& host, const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  if (w.size() == 2 && (w[0] == "blackhole" || w[0] == "unreachable" || w[0] == "prohibit")) {
    const bool v6 = w[1] == "default6" || w[1].find(':') != std::string::npos;
    return std::string(v6 ? "-6 route add " : "route add ") + w[0] + " " + (w[1] == "default6" ? "default" : w[1]);
  }
  if (w.size() == 3 && w[1] == "dev") {
    const bool v6 = w[0] == "default6" || w[0].find(':') != std::string::npos;
    const std::string dst = w[0] == "default6" ? "default" : w[0];
    auto via = peer_address(s, host, w[2], v6);
    return std::string(v6 ? "-6 route add " : "route add ") + dst + (via ? " via " + *via : "") + " dev " + w[2];
  }
  return std::nullopt;
}

/// This program's own path (the plan runs it again as the namespaces' DNS server).
std::string self_path() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "duet-testbed";
}

/// A DNS server on 127.0.0.1:53 of the namespace it runs in, answering A and AAAA
/// questions as the scenario's [dns] says; other names get NXDOMAIN.
int dns_server(const sim::Scenario& s) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(53);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("duet-testbed dns: bind 127.0.0.1:53");
    return 1;
  }
  for (;;) {
    std::uint8_t q[512];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const ssize_t n = recvfrom(fd, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 17) continue;
    // One question: labels, then type and class.
    std::string name;
    std::size_t at = 12;
    while (at < static_cast<std::size_t>(n) && q[at] != 0 && q[at] < 64) {
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + at + 1), std::min<std::size_t>(q[at], static_cast<std::size_t>(n) - at - 1));
      at += 1 + q[at];
    }
    if (at + 5 > static_cast<std::size_t>(n)) continue;
    const std::uint16_t type = static_cast<std::uint16_t>((q[at + 1] << 8) | q[at + 2]);
    const std::size_t question_end = at + 5;
    const auto it = s.dns.find(name);
    std::uint8_t rcode = 3;  // NXDOMAIN
    std::vector<net::Address> answers;
    net::Duration delay{0};
    if (it != s.dns.end()) {
      const auto& d = it->second;
      delay = d.delay;
      if (d.kind == sim::DnsAnswer::Kind::timeout) continue;  // silence
      rcode = d.kind == sim::DnsAnswer::Kind::servfail ? 2 : d.kind == sim::DnsAnswer::Kind::nxdomain ? 3 : 0;
      for (const auto& r : d.records) {
        if ((type == 1 && r.is_v4()) || (type == 28 && r.is_v6())) answers.push_back(r);
      }
    }
    std::vector<std::uint8_t> out(q, q + question_end);
    out[2] = static_cast<std::uint8_t>(0x80 | (q[2] & 0x01));  // QR, RD copied
    out[3] = static_cast<std::uint8_t>(0x80 | rcode);          // RA
    out[4] = 0, out[5] = 1, out[6] = 0, out[7] = static_cast<std::uint8_t>(answers.size());
    out[8] = out[9] = out[10] = out[11] = 0;
    for (const auto& r : answers) {
      const std::size_t sz = r.is_v4() ? 4 : 16;
      const std::uint8_t rr[] = {0xc0, 0x0c, 0, static_cast<std::uint8_t>(type), 0, 1, 0, 0, 0, 60, 0, static_cast<std::uint8_t>(sz)};
      out.insert(out.end(), rr, rr + sizeof rr);
      out.insert(out.end(), r.bytes().begin(), r.bytes().begin() + static_cast<std::ptrdiff_t>(sz));
    }
    std::thread([fd, out, from, delay] {
      std::this_thread::sleep_for(delay);
      (void)sendto(fd, out.data(), out.size(), 0, reinterpret_cast<const sockaddr*>(&from), sizeof from);
    }).detach();
  }
}

constexpr net::Duration kLaunchEarly = std::chrono::milliseconds(700);

int plan(const sim::Scenario& s, const std::string& prefix, const std::string& dir, const std::string& duetd) {
  const Names n{prefix};
  std::ostringstream o;
  o << "# generated by duet-testbed from " << s.file << "\nset -u\nD=" << q(dir) << "\nDUETD=" << q(duetd)
    << "\nTESTBED=" << q(self_path()) << "\n";
  o << "pids=()\nrun() { \"$@\" || echo \"testbed: failed: $*\" >&2; }\n";
  for (const auto& h : s.hosts) {
    o << "run ip netns add " << n.ns(h.name) << "\nrun ip -n " << n.ns(h.name) << " link set lo up\n";
    // No duplicate address detection: link-local addresses would stay tentative for a
    // second or two, and IPv6 would not work at all until then.
    o << "run ip netns exec " << n.ns(h.name)
      << " sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0\n";
    if (h.settings.forwarding) {
      // default.* too: interfaces moved in later take their IPv6 settings from it.
      o << "run ip netns exec " << n.ns(h.name)
        << " sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.default.forwarding=1 net.ipv6.conf.all.forwarding=1\n";
    }
    if (h.settings.disable_ipv6) o << "run ip netns exec " << n.ns(h.name) << " sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1\n";
  }
  int li = 0;
  for (const auto& l : s.links) {
    const std::string a = prefix + "l" + std::to_string(li) + "a", b = prefix + "l" + std::to_string(li) + "b";
    ++li;
    o << "run ip link add " << a << " type veth peer name " << b << "\n";
    o << "run ip link set " << a << " netns " << n.ns(l.host_a) << "\nrun ip link set " << b << " netns " << n.ns(l.host_b) << "\n";
    o << "run ip -n " << n.ns(l.host_a) << " link set " << a << " name " << l.if_a << " up\n";
    o << "run ip -n " << n.ns(l.host_b) << " link set " << b << " name " << l.if_b << " up\n";
  }
  for (const auto& h : s.hosts) {
    for (const auto& [iface, prefix_text] : h.addresses) {
      const bool v6 = prefix_text.find(':') != std::string::npos;
      o << "run ip -n " << n.ns(h.name) << " addr add " << prefix_text << " dev " << iface << (v6 ? " nodad" : "") << "\n";
    }
  }
  for (const auto& h : s.hosts) {
    for (const auto& r : h.routes) {
      auto args = route_args(s, h.name, r.text);
      if (!args) {
        std::cerr << s.file << ":" << r.line << ": the testbed cannot replay the route '" << r.text << "'\n";
        return 3;
      }
      o << "run ip -n " << n.ns(h.name) << " " << *args << "\n";
    }
  }
  // Name resolution: each namespace asks a DNS server of its own on 127.0.0.1 that gives
  // the scenario's answers (records, NXDOMAIN, SERVFAIL, silence, delays), with glibc's
  // default patience (5 s, 2 tries: the simulator's 10 s). ip netns exec bind-mounts
  // /etc/netns/NAME/{hosts,resolv.conf} over /etc.
  for (const auto& h : s.hosts) {
    o << "mkdir -p /etc/netns/" << n.ns(h.name) << "\nprintf '127.0.0.1 localhost\\n::1 localhost\\n' > /etc/netns/"
      << n.ns(h.name) << "/hosts\n";
    o << "printf 'nameserver 127.0.0.1\\noptions timeout:5 attempts:2\\n' > /etc/netns/" << n.ns(h.name) << "/resolv.conf\n";
    o << "ip netns exec " << n.ns(h.name) << " $TESTBED dns " << q(s.file) << " > \"$D/dns-" << h.name
      << ".log\" 2>&1 & pids+=($!)\n";
  }
  // Instances: keys, and each other as peers (listeners first, so a client's first peer is
  // a server), a TUN address 198.18.250.N, the events file the judge reads.
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < s.instances.size(); ++i) {
    auto r = config::load_text(s.instances[i].config, "x");
    if (!r.config.listens.empty() || r.config.mode == config::Mode::server) order.insert(order.begin(), i);
    else order.push_back(i);
  }
  for (std::size_t i = 0; i < s.instances.size(); ++i) {
    o << "$DUETD genkey > \"$D/" << s.instances[i].name << ".key\"\npub_" << i << "=$($DUETD pubkey < \"$D/"
      << s.instances[i].name << ".key\")\n";
  }
  // A peer that never shows up, so that an instance alone in its scenario has one.
  o << "pub_spare=$($DUETD genkey | $DUETD pubkey)\n";
  for (std::size_t i = 0; i < s.instances.size(); ++i) {
    const auto& in = s.instances[i];
    std::string extra = "\ndev duet" + std::to_string(i) + "\nverb 4\ncontrol-socket $D/" + in.name + ".sock\n";
    if (in.config.find("private-key") == std::string::npos) {
      // The TUN's address must not give the host a family it lacks (a server on an
      // IPv6-only host would otherwise see IPv4 and bind it).
      bool has_v4 = false;
      for (const auto& h : s.hosts) {
        for (const auto& [iface, prefix_text] : h.addresses) has_v4 = has_v4 || (h.name == in.host && prefix_text.find(':') == std::string::npos);
      }
      const std::string n1 = std::to_string(i + 1);
      extra += "private-key $D/" + in.name + ".key\nifconfig " + (has_v4 ? "198.18.250." + n1 + "/24" : "fd00:250::" + n1 + "/64") + "\n";
      for (std::size_t j : order) {
        const std::string nj = std::to_string(j + 1);
        if (j != i) extra += "peer ${pub_" + std::to_string(j) + "} 198.18.250." + nj + "/32,fd00:250::" + nj + "/128\n";
      }
      extra += "peer ${pub_spare} 198.18.251.1/32\n";
    }
    o << "cat > \"$D/" << in.name << ".conf\" <<'CONF'\n" << in.config << "\nCONF\n";
    o << "cat >> \"$D/" << in.name << ".conf\" <<CONF\n" << extra << "CONF\n";
  }
  // The timeline: instance starts, faults and pings, in time order.
  std::multimap<net::Duration, std::string> at;
  for (const auto& f : s.faults) {
    const std::string ns = n.ns(f.host);
    std::string cmd;
    if (f.action == "route") {
      auto args = route_args(s, f.host, f.argument);
      if (!args) return 3;
      cmd = "run ip -n " + ns + " " + *args;
    } else if (f.action == "unroute") {
      cmd = "run ip -n " + ns + " route del " + f.argument;
    } else if (f.action == "down" || f.action == "up") {
      cmd = "run ip -n " + ns + " link set " + f.argument + " " + f.action;
    } else if (f.action == "remove-address" || f.action == "add-address") {
      std::istringstream w(f.argument);
      std::string iface, prefix_text;
      w >> iface >> prefix_text;
      cmd = "run ip -n " + ns + " addr " + (f.action == "add-address" ? "add " : "del ") + prefix_text + " dev " + iface;
    } else if (f.action == "crash") {
      for (const auto& in : s.instances) {
        if (in.host == f.host) cmd += "kill -9 $(cat \"$D/" + in.name + ".pid\") 2>/dev/null; ";
      }
      cmd += ":";
    } else if (f.action == "restart") {
      for (const auto& in : s.instances) {
        if (in.host == f.host) {
          cmd += "ip netns exec " + ns + " $DUETD --events \"$D/" + in.name + ".events\" --config \"$D/" + in.name +
                 ".conf\" >> \"$D/" + in.name + ".log\" 2>&1 & pids+=($!); echo $! > \"$D/" + in.name + ".pid\"; ";
        }
      }
      cmd += ":";
    } else {
      std::cerr << s.file << ":" << f.line << ": the testbed cannot replay the fault '" << f.action << "'\n";
      return 3;
    }
    // A fault at 0 is part of the world the instances start in: apply it first.
    at.emplace(f.at.count() == 0 ? -2 * kLaunchEarly : f.at, cmd);
  }
  // After the faults: a fault at the same time as a start is part of the world it starts in.
  std::map<net::Duration, int> same_time;
  for (const auto& in : s.instances) {
    // Each daemon is launched early and starts its engine at the instance's time
    // (--start-at): the simulator starts engines at once, a daemon first opens its TUN.
    // Instances that start together start in file order, 5 ms apart, as the simulator
    // runs them in file order within an instant (a server's sockets exist before a client
    // that starts with it sends anything).
    const auto engine_at = std::chrono::duration_cast<std::chrono::milliseconds>(in.start).count() + 5 * same_time[in.start]++;
    at.emplace(in.start - kLaunchEarly,
               "ip netns exec " + n.ns(in.host) + " $DUETD --events \"$D/" + in.name + ".events\" --start-at $((t0 + " +
                   std::to_string(engine_at) + ")) --config \"$D/" +
                   in.name + ".conf\" > \"$D/" + in.name + ".log\" 2>&1 & pids+=($!); echo $! > \"$D/" + in.name + ".pid\"");
  }
  for (const auto& x : s.expectations) {
    std::smatch m;
    if (!std::regex_match(x.text, m, sim::pings_sentence())) continue;
    for (const auto& in : s.instances) {
      if (in.name != m[1]) continue;
      for (auto t = in.start + std::chrono::seconds(1); t < s.duration; t += std::chrono::seconds(1)) {
        at.emplace(t, "(ip netns exec " + n.ns(in.host) + " ping -c 1 -W 1 " + m[2].str() + " >/dev/null 2>&1 && echo " +
                          m[2].str() + " >> \"$D/" + in.name + ".pings\"; echo sent >> \"$D/" + in.name + ".pings-sent\") &");
      }
    }
  }
  at.emplace(s.duration, "kill \"${pids[@]}\" 2>/dev/null; wait 2>/dev/null");
  // t0, the scenario's 0, lies kLaunchEarly ahead: daemons starting at 0 get that long to
  // open their TUN before their engines start together.
  o << "t0=$(( $(date +%s%3N) + " << std::chrono::duration_cast<std::chrono::milliseconds>(kLaunchEarly).count()
    << " ))\necho $t0 > \"$D/start\"\n";
  o << "sleep_until() { local now; now=$(date +%s%3N); local d=$(( t0 + $1 - now )); (( d > 0 )) && sleep \"$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))\"; return 0; }\n";
  for (const auto& [t, cmd] : at) {
    o << "sleep_until " << std::chrono::duration_cast<std::chrono::milliseconds>(t).count() << "\n" << cmd << "\n";
  }
  std::cout << o.str();
  return 0;
}

/// What an instance did, from its duetd events file (and pings the script recorded).
sim::Observed observe(const sim::Scenario& s, const sim::ScenarioInstance& in, const std::string& dir, long long start_ms) {
  sim::Observed o;
  o.name = in.name;
  auto loaded = config::load_text(in.config, in.name);
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
    e.time = net::TimePoint(std::chrono::milliseconds(j.value("unix_ms", 0LL) - start_ms));
    // The scenario ends at its duration, as the simulated world does; what the daemons
    // log while being stopped (a peer's EOF, say) is not part of it.
    if (e.time.time_since_epoch() >= s.duration) continue;
    if (j.contains("endpoint")) {
      if (auto ep = net::Endpoint::parse(j["endpoint"].get<std::string>())) e.endpoint = *ep;
    }
    if (j.contains("transport")) e.transport = j["transport"] == "tcp" ? config::Transport::tcp : config::Transport::udp;
    e.detail = j.value("detail", "");
    e.elapsed = std::chrono::duration_cast<net::Duration>(std::chrono::duration<double, std::milli>(j.value("elapsed_ms", 0.0)));
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

int judge(const sim::Scenario& s, const std::string& dir, long long start_ms, bool as_json) {
  std::vector<sim::Observed> seen;
  for (const auto& in : s.instances) seen.push_back(observe(s, in, dir, start_ms));
  std::vector<sim::ExpectationResult> kernel;
  std::vector<sim::ScenarioError> errors;
  sim::judge_expectations(s, seen, kernel, errors);
  const auto simulated = sim::run_scenario(s, {.seed = s.seed});
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
      if (kernel_word == "FAIL") std::printf("                 kernel: %s\n", x["kernel_detail"].get<std::string>().c_str());
    }
    for (const auto& i : out["instances"]) {
      std::printf("  %s: sim %s, %d warnings/errors; kernel %s, %d warnings/errors%s\n", i["name"].get<std::string>().c_str(),
                  i["sim"].get<std::string>().c_str(), i["sim_warnings"].get<int>(), i["kernel"].get<std::string>().c_str(),
                  i["kernel_warnings"].get<int>(),
                  i["first_kernel_warning"].get<std::string>().empty()
                      ? ""
                      : (" (first: " + i["first_kernel_warning"].get<std::string>() + ")").c_str());
    }
    for (const auto& e : errors) std::printf("  error: %s\n", e.to_string().c_str());
  }
  return kernel_ok ? 0 : 1;
}

}  // namespace

/// The fidelity report: per scenario, whether the two worlds agree, and how their
/// timings differ.
int report(const std::string& path) {
  std::ifstream in(path);
  int agree = 0, disagree = 0, only = 0;
  std::string rows;
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("scenario")) continue;
    std::string file = j["scenario"].get<std::string>();
    file = file.substr(file.rfind('/') + 1);
    if (j.contains("simulator_only")) {
      ++only;
      rows += "| " + file + " | – | – | simulator-only | " + j["simulator_only"].get<std::string>() + " |\n";
      continue;
    }
    std::string differ;
    for (const auto& x : j["expectations"]) {
      if (x["kernel"].is_boolean() && x["sim"] != x["kernel"]) {
        differ += "\"" + x["sentence"].get<std::string>() + "\": sim " + (x["sim"].get<bool>() ? "pass" : "fail") + ", kernel " +
                  (x["kernel"].get<bool>() ? "pass" : "fail") + " (" + x["kernel_detail"].get<std::string>() + "); ";
      }
    }
    std::string timing;
    for (const auto& i : j["instances"]) {
      timing += i["name"].get<std::string>() + ": sim " + i["sim"].get<std::string>() + ", kernel " + i["kernel"].get<std::string>() + "; ";
    }
    const bool same = differ.empty();
    (same ? agree : disagree) += 1;
    rows += "| " + file + " | " + (j["sim_passed"].get<bool>() ? "pass" : "FAIL") + " | " +
            (j["kernel_passed"].get<bool>() ? "pass" : "FAIL") + " | " + (same ? "agree" : "**disagree**") + " | " +
            (same ? timing : differ + timing) + " |\n";
  }
  std::cout << "| scenario | sim | kernel | verdict | first connections (time from the instance's start) and differences |\n"
               "|---|---|---|---|---|\n"
            << rows << "\n" << agree << " agree, " << disagree << " disagree, " << only << " simulator-only.\n";
  return 0;
}

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() < 2) {
    std::cerr << kUsage;
    return 2;
  }
  if (a[0] == "report") return report(a[1]);
  std::vector<sim::ScenarioError> errors;
  auto s = sim::load_scenario(a[1], errors);
  if (!s) {
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    return 2;
  }
  if (a[0] == "dns") return dns_server(*s);
  if (a[0] == "why-not") {
    std::cout << simulator_only(*s);
    return 0;
  }
  if (a[0] == "plan" && a.size() == 5) return plan(*s, a[2], a[3], a[4]);
  if (a[0] == "judge" && a.size() >= 4) return judge(*s, a[2], std::stoll(a[3]), a.size() > 4 && a[4] == "--json");
  std::cerr << kUsage;
  return 2;
}
