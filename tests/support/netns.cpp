#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "topology.hpp"

namespace duet::test {

namespace {

constexpr const char* kPrefix = "duett";  // duet test namespaces: duett<pid>x<n>_<host>

std::string verdict_word(sim::RouteVerdict v) {
  switch (v) {
    case sim::RouteVerdict::blackhole:
      return "blackhole ";
    case sim::RouteVerdict::unreachable:
      return "unreachable ";
    case sim::RouteVerdict::prohibit:
      return "prohibit ";
    case sim::RouteVerdict::forward:
      return "";
  }
  return "";
}

void remove_stale_namespaces() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/var/run/netns", ec)) {
    const std::string name = e.path().filename();
    if (name.rfind(kPrefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + 5, nullptr, 10);
    if (pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0) continue;  // its owner still runs
    std::system(("ip netns del " + name + " 2>/dev/null").c_str());
  }
}

}  // namespace

bool Netns::available(std::string& why) {
  if (geteuid() != 0) {
    why = "needs root to create network namespaces (run the netns tests as root)";
    return false;
  }
  if (std::system("command -v ip >/dev/null 2>&1") != 0) {
    why = "needs iproute2's 'ip' command";
    return false;
  }
  return true;
}

Netns::Netns(const Topology& t) {
  static int counter = 0;
  remove_stale_namespaces();
  prefix_ = std::string(kPrefix) + std::to_string(getpid()) + "x" + std::to_string(++counter) + "_";
  original_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  try {
    for (const auto& h : t.hosts) {
      run("ip netns add " + ns(h.name));
      created_.push_back(ns(h.name));
      run("ip -n " + ns(h.name) + " link set lo up");
      const std::string sysctl = "ip netns exec " + ns(h.name) + " sysctl -qw ";
      run(sysctl + "net.ipv4.tcp_syn_retries=" + std::to_string(h.tcp_syn_retries) +
          " net.ipv4.icmp_ratelimit=" + std::to_string(h.icmp_ratelimit_v4_ms) +
          " net.ipv6.icmp.ratelimit=" + std::to_string(h.icmp_ratelimit_v6_ms));
      if (h.router) run(sysctl + "net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
      if (h.disable_ipv6) {
        run(sysctl +
            "net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 "
            "net.ipv6.conf.lo.disable_ipv6=1");
      }
    }
    int n = 0;
    for (const auto& l : t.links) {
      // Made in our namespace under unique names, then moved and renamed.
      const std::string a = "dt" + std::to_string(getpid() % 100000) + "a" + std::to_string(n);
      const std::string b = "dt" + std::to_string(getpid() % 100000) + "b" + std::to_string(n++);
      run("ip link add " + a + " type veth peer name " + b);
      run("ip link set " + a + " netns " + ns(l.host_a));
      run("ip link set " + b + " netns " + ns(l.host_b));
      run("ip -n " + ns(l.host_a) + " link set " + a + " name " + l.if_a + " up");
      run("ip -n " + ns(l.host_b) + " link set " + b + " name " + l.if_b + " up");
    }
    for (const auto& a : t.addresses) {
      const bool v6 = a.prefix.find(':') != std::string::npos;
      run("ip -n " + ns(a.host) + " addr add " + a.prefix + " dev " + a.interface + (v6 ? " nodad" : ""));
    }
    for (const auto& r : t.routes) {
      std::string prefix = r.prefix;
      std::string family;
      if (prefix == "default6") {
        prefix = "default";
        family = " -6";
      } else if (prefix == "default") {
        family = " -4";
      }
      std::string cmd = "ip -n " + ns(r.host) + family + " route add " + verdict_word(r.verdict) + prefix;
      if (r.verdict == sim::RouteVerdict::forward) {
        if (!r.via.empty()) cmd += " via " + r.via;
        cmd += " dev " + r.interface;
      }
      run(cmd);
    }
  } catch (...) {
    for (const auto& n : created_) std::system(("ip netns del " + n + " 2>/dev/null").c_str());
    throw;
  }
}

Netns::~Netns() {
  leave();
  if (original_ >= 0) close(original_);
  for (const auto& n : created_) std::system(("ip netns del " + n + " 2>/dev/null").c_str());
}

void Netns::run(const std::string& command) {
  if (std::system((command + " 2>&1").c_str()) != 0) {
    throw std::runtime_error("testbed command failed: " + command);
  }
}

void Netns::enter(const std::string& host) {
  const std::string path = "/var/run/netns/" + ns(host);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot enter namespace " + path);
  }
  close(fd);
}

void Netns::exec(const std::string& host, const std::string& command) {
  run("ip netns exec " + ns(host) + " " + command);
}

void Netns::leave() {
  if (original_ >= 0) setns(original_, CLONE_NEWNET);
}

}  // namespace duet::test
