#include "status.hpp"

#include <cmath>
#include <cstdio>

namespace duet::daemon {

nlohmann::ordered_json status_json(const node::Status& s, const posix::PosixStack* stack) {
  using json = nlohmann::ordered_json;
  json j;
  j["interface"] = s.interface;
  j["public_key"] = s.public_key ? json(config::key_to_base64(*s.public_key)) : json(nullptr);
  j["mode"] = std::string(config::to_string(s.mode));
  j["listening"] = s.listening;
  if (s.connected) j["connected"] = *s.connected;
  if (s.path) {
    json pj;
    pj["remote"] = s.path->remote.to_string();
    pj["transport"] = std::string(config::to_string(s.path->transport));
    pj["family"] = std::string(net::to_string(s.path->remote.family()));
    pj["rtt_ms"] = s.path->smoothed_rtt.count() == 0 ? json(nullptr)
                                                     : json(std::round(net::to_ms(s.path->smoothed_rtt) * 10) / 10);
    pj["paths_declared_dead"] = s.path->declared_dead;
    pj["moves_back"] = s.path->moves_back;
    pj["standby"] = s.path->standby ? json(s.path->standby->to_string()) : json(nullptr);
    pj["standby_checked_s_ago"] =
        s.path->standby ? json(std::llround(net::to_ms(s.path->standby_age) / 1000)) : json(nullptr);
    pj["standby_moves"] = s.path->standby_moves;
    j["path"] = pj;
  }
  j["peers"] = json::array();
  for (const auto& p : s.peers) {
    json pj;
    pj["public_key"] = config::key_to_base64(p.public_key);
    pj["allowed_ips"] = json::array();
    for (const auto& a : p.allowed_ips) pj["allowed_ips"].push_back(a.to_string());
    if (p.endpoint) {
      pj["endpoint"] = p.endpoint->to_string();
      pj["transport"] = std::string(config::to_string(p.transport));
      pj["family"] = std::string(net::to_string(p.endpoint->family()));
    } else {
      pj["endpoint"] = nullptr;
    }
    pj["latest_handshake_seconds_ago"] =
        p.since_handshake ? json(std::chrono::duration_cast<std::chrono::seconds>(*p.since_handshake).count())
                          : json(nullptr);
    pj["rx_bytes"] = p.rx_bytes;
    pj["tx_bytes"] = p.tx_bytes;
    j["peers"].push_back(pj);
  }
  if (stack != nullptr) {
    const posix::UdpCounters* udp = &stack->udp_counters();
    const posix::TcpCounters& tcp = stack->tcp_counters();
    auto percent = [](std::uint64_t a, std::uint64_t b) {
      return b == 0 ? json(nullptr)
                    : json(std::round(1000.0 * static_cast<double>(std::min(a, b)) / static_cast<double>(b)) / 10.0);
    };
    auto ratio = [](std::uint64_t a, std::uint64_t b) {
      return b == 0 ? json(nullptr) : json(std::round(10.0 * static_cast<double>(a) / static_cast<double>(b)) / 10.0);
    };
    json d;
    d["tun_offload"] = s.tun_offloads;
    d["udp_gso"] = udp->gso;
    d["udp_gro"] = udp->gro;
    d["packets_per_tun_read"] = ratio(s.tun_counters.packets_read, s.tun_counters.reads);
    d["packets_per_tun_write"] = ratio(s.tun_counters.packets_written, s.tun_counters.writes);
    d["datagrams_per_send_call"] = ratio(udp->datagrams_sent, udp->send_calls);
    d["datagrams_per_receive_call"] = ratio(udp->datagrams_received, udp->receive_calls);
    // Sealed straight into the socket's queue, not copied there (handshakes and path
    // checks are the rest).
    d["datagrams_in_place_percent"] = percent(udp->datagrams_in_place, udp->datagrams_sent);
    d["stream_writes_in_place_percent"] = percent(tcp.writes_in_place, tcp.writes);
    d["tun_dropped"] = s.tun_counters.dropped;
    d["udp_send_dropped"] = udp->send_dropped;
    d["udp_source_fallbacks"] = udp->source_fallbacks;
    d["tun_read_pauses"] = s.tun_counters.pauses;
    d["streams_congested"] = s.streams_congested;
    d["stuck_stream_overrides"] = s.stuck_overrides;
    d["stream_drops"] = s.stream_drops;
    d["congested_unpaused"] = s.congested_unpaused;
    d["tun_looks"] = s.tun_looks;
    d["crypto_threads"] = s.crypto_threads;
    d["sealed_on_threads"] = s.sealed_on_threads;
    d["opened_on_threads"] = s.opened_on_threads;
    j["data_path"] = d;
  }
  j["peers_configured"] = s.peers_configured;
  j["peers_live"] = s.peers_live;
  j["handshakes"] = s.handshakes;
  j["handshakes_per_second"] = s.handshakes_per_second;
  j["refused_max_clients"] = s.refused_max_clients;
  j["cookie_replies_sent"] = s.cookie_replies_sent;
  j["handshakes_rate_limited"] = s.handshakes_rate_limited;
  j["last_error"] = s.last_error.empty() ? json(nullptr) : json(s.last_error);
  return j;
}

namespace {
std::string bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}
}  // namespace

std::string status_text(const nlohmann::ordered_json& j) {
  std::string out = "interface: " + j["interface"].get<std::string>() + "\n";
  if (!j["public_key"].is_null()) out += "  public key: " + j["public_key"].get<std::string>() + "\n";
  out += "  mode: " + j["mode"].get<std::string>() + "\n";
  if (!j["listening"].empty()) {
    std::string l;
    for (const auto& x : j["listening"]) l += (l.empty() ? "" : ", ") + x.get<std::string>();
    out += "  listening: " + l + "\n";
  }
  if (j.contains("path")) {
    const auto& p = j["path"];
    char rtt[32] = "not measured yet";
    if (!p["rtt_ms"].is_null()) std::snprintf(rtt, sizeof rtt, "rtt %.1f ms", p["rtt_ms"].get<double>());
    out += "  path: " + p["remote"].get<std::string>() + "/" + p["transport"].get<std::string>() + " (" +
           p["family"].get<std::string>() + "), " + rtt + "; " +
           std::to_string(p["paths_declared_dead"].get<std::uint64_t>()) + " silent paths left, " +
           std::to_string(p["moves_back"].get<std::uint64_t>()) + " moves back\n";
    if (p.contains("standby") && !p["standby"].is_null()) {
      out += "  standby: " + p["standby"].get<std::string>() + ", answered a path check " +
             std::to_string(p["standby_checked_s_ago"].get<long long>()) + " s ago; " +
             std::to_string(p.value("standby_moves", 0)) + " failovers straight to a standby\n";
    }
  } else if (j.contains("connected")) {
    out += "  path: not connected\n";
  }
  if (j.contains("data_path")) {
    const auto& d = j["data_path"];
    auto num = [](const nlohmann::ordered_json& v) {
      if (v.is_null()) return std::string("-");
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f", v.get<double>());
      return std::string(buf);
    };
    out += "  offloads: tun " + d["tun_offload"].get<std::string>() + "; udp gso " + d["udp_gso"].get<std::string>() +
           "; udp gro " + d["udp_gro"].get<std::string>() + "\n";
    out += "  batching: " + num(d["packets_per_tun_read"]) + " packets per TUN read, " +
           num(d["packets_per_tun_write"]) + " per TUN write; " + num(d["datagrams_per_send_call"]) +
           " datagrams per send call, " + num(d["datagrams_per_receive_call"]) + " per receive call\n";
    out += "  written in place: " + num(d["datagrams_in_place_percent"]) + " % of datagrams, " +
           num(d["stream_writes_in_place_percent"]) + " % of TCP messages (not copied into the socket's queue)\n";
    if (d.value("crypto_threads", 0) > 0) {
      out += "  crypto: " + std::to_string(d["crypto_threads"].get<std::uint64_t>()) +
             " threads beside the event loop; " + std::to_string(d["sealed_on_threads"].get<std::uint64_t>()) +
             " data messages sealed and " + std::to_string(d["opened_on_threads"].get<std::uint64_t>()) +
             " opened there\n";
    }
    if (d.value("tun_read_pauses", 0) > 0) {
      out += "  backpressure: TUN reads paused " + std::to_string(d["tun_read_pauses"].get<std::uint64_t>()) +
             " times for a full TCP stream or UDP socket; " + std::to_string(d.value("stuck_stream_overrides", 0)) +
             " times resumed past one that did not drain\n";
    }
    if (d.value("congested_unpaused", 0) > 0 || d.value("stream_drops", 0) > 0) {
      out += "  per peer: " + std::to_string(d.value("congested_unpaused", 0)) +
             " times a peer's stream filled while others took traffic (the TUN kept being read; " +
             std::to_string(d.value("stream_drops", 0)) + " messages dropped for full streams), " +
             std::to_string(d.value("tun_looks", 0)) + " looks at a paused TUN for other peers\n";
    }
    if (d.value("udp_send_dropped", 0) > 0) {
      out += "  udp: " + std::to_string(d["udp_send_dropped"].get<std::uint64_t>()) +
             " datagrams dropped (the kernel refused them, or more waited than the socket's queue holds)\n";
    }
  }
  {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.1f", j.value("handshakes_per_second", 0.0));
    out += "  peers: " + std::to_string(j.value("peers_configured", 0)) + " configured, " +
           std::to_string(j.value("peers_live", 0)) + " with live keys; handshakes: " + rate + "/s (last 10 s), " +
           std::to_string(j.value("handshakes", 0)) + " in all\n";
  }
  if (j.value("refused_max_clients", 0) > 0) {
    out += "  refused: " + std::to_string(j["refused_max_clients"].get<std::uint64_t>()) +
           " handshakes (max-clients reached)\n";
  }
  if (j.value("cookie_replies_sent", 0) > 0 || j.value("handshakes_rate_limited", 0) > 0) {
    out += "  under load: " + std::to_string(j["cookie_replies_sent"].get<std::uint64_t>()) + " cookie replies sent, " +
           std::to_string(j["handshakes_rate_limited"].get<std::uint64_t>()) +
           " handshakes refused by the per-source limit\n";
  }
  if (!j["last_error"].is_null()) out += "  last error: " + j["last_error"].get<std::string>() + "\n";
  if (j.value("peers_omitted", false)) {
    out += "  (more than " + std::to_string(kListedPeers) +
           " peers: duetctl status --all lists them, --peer KEY shows one)\n";
  }
  for (const auto& p : j["peers"]) {
    out += "\npeer: " + p["public_key"].get<std::string>() + "\n";
    if (!p["endpoint"].is_null()) {
      out += "  endpoint: " + p["endpoint"].get<std::string>() + " (" + p["transport"].get<std::string>() + ", " +
             p["family"].get<std::string>() + ")\n";
    }
    std::string a;
    for (const auto& x : p["allowed_ips"]) a += (a.empty() ? "" : ", ") + x.get<std::string>();
    out += "  allowed ips: " + a + "\n";
    if (!p["latest_handshake_seconds_ago"].is_null()) {
      out += "  latest handshake: " + std::to_string(p["latest_handshake_seconds_ago"].get<long long>()) +
             " seconds ago\n";
    }
    out += "  transfer: " + bytes(p["rx_bytes"].get<std::uint64_t>()) + " received, " +
           bytes(p["tx_bytes"].get<std::uint64_t>()) + " sent\n";
  }
  return out;
}

std::string answer(const std::string& request, const node::Node& node, const posix::PosixStack* stack) {
  node::PeerSelection which;
  if (request == "status") {
    which.all = true;
  } else if (request == "summary") {
    which.all = node.status({.all = false}).peers_configured <= kListedPeers;
  } else if (request.rfind("peer ", 0) == 0) {
    which.all = false;
    which.key = config::key_from_base64(request.substr(5));
    if (!which.key) return nlohmann::ordered_json{{"error", "'" + request.substr(5) + "' is not a public key"}}.dump();
  } else {
    return nlohmann::ordered_json{
        {"error", "unknown request '" + request.substr(0, 40) + "' (status, summary, peer KEY)"}}
        .dump();
  }
  auto s = node.status(which);
  if (which.key && s.peers.empty()) {
    return nlohmann::ordered_json{{"error", "no peer " + request.substr(5) + " on " + s.interface}}.dump();
  }
  auto j = status_json(s, stack);
  if (!which.all && !which.key) j["peers_omitted"] = true;
  return j.dump();
}

}  // namespace duet::daemon
