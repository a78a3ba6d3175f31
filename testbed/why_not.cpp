#include "testbed.hpp"

namespace duet::testbed {

std::string simulator_only(const sim::Scenario& s) {
  if (!s.simulator_only.empty()) return s.simulator_only;
  // Links: every property is the link emulator's (link_emulator.cpp).
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
    if (h.settings.tcp_syn_retries != 6 || h.settings.bindv6only ||
        h.settings.icmp_ratelimit_v4 != std::chrono::seconds(1) ||
        h.settings.icmp_ratelimit_v6 != std::chrono::milliseconds(100) || h.settings.keep_addr_on_down ||
        h.settings.ephemeral_low != 32768 || h.settings.ephemeral_high != 60999) {
      return "host settings beyond forwarding and disable_ipv6 are not applied yet";
    }
  }
  return "";
}

}  // namespace duet::testbed
