// A reload: what may change while running (peers, their allowed IPs, listen blocks,
// connections) is applied, keeping every session whose part did not change; what cannot
// (the key, the device, its addresses, offloads) is reported for a restart.
#include "duet/node/node.hpp"

namespace duet::node {

namespace {

/// What decides whether a reload must rebuild the listeners...
std::string listens_key(const config::Config& c) {
  std::string k = std::string(config::to_string(c.mode)) + ",mark" + std::to_string(c.fwmark);
  for (const auto& l : c.listens) {
    k += "|" + std::string(config::to_string(l.proto)) + "," + std::string(config::to_string(l.family)) + "," +
         std::to_string(l.port);
    for (const auto& a : l.locals) k += "," + a;
  }
  return k;
}

/// ...and whether it must rebuild the outgoing connections.
std::string connections_key(const config::Config& c) {
  std::string k = std::string(config::to_string(c.mode)) + (c.remote_random ? "r" : "");
  for (const auto& x : c.connections) {
    k += "|" + std::string(config::to_string(x.proto)) + "," + std::string(config::to_string(x.family)) + "," +
         std::to_string(x.lport) + "," + std::to_string(static_cast<int>(x.bind)) + "," +
         std::to_string(x.connect_timeout.count()) + "," + std::to_string(x.happy_eyeballs_delay.count()) + "," +
         std::to_string(x.keepalive_interval.count()) + "," + std::to_string(x.keepalive_timeout.count());
    for (const auto& r : x.remotes) {
      k += "," + r.host + ":" + std::to_string(r.port) + "/" + std::string(config::to_string(r.proto));
    }
    for (const auto& a : x.locals) k += ",l" + a;
  }
  return k;
}

}  // namespace

ReloadOutcome Node::reload(const config::Config& next_config) {
  ReloadOutcome out;
  const config::Config& now = *current_;
  std::vector<std::string> fixed;
  if (next_config.private_key != now.private_key) fixed.emplace_back("private-key");
  if (next_config.dev != now.dev) fixed.emplace_back("dev");
  if (next_config.ifconfig != now.ifconfig) fixed.emplace_back("ifconfig");
  if (!options_.runtime_configured && next_config.peers.empty() == has_peers_)
    fixed.emplace_back("the peer list's presence");
  if (!(next_config.offload == now.offload)) fixed.emplace_back("offload");
  if (next_config.tun_mtu != now.tun_mtu) fixed.emplace_back("tun-mtu");
  if (next_config.sndbuf != now.sndbuf) fixed.emplace_back("sndbuf");
  if (next_config.rcvbuf != now.rcvbuf) fixed.emplace_back("rcvbuf");
  for (const auto& f : fixed) out.restart_needed += (out.restart_needed.empty() ? "" : ", ") + f;
  if (!fixed.empty()) return out;

  if (device_) {
    out.peers = device_->update_peers(peer_configs(next_config));
    device_->set_max_clients(next_config.max_clients);
  }
  auto next = keep(next_config);
  out.listeners_reopened = listens_key(*next) != listens_key(*server_config_);
  const bool connections_changed = connections_key(*next) != connections_key(*client_config_);
  current_ = next;
  // p2p attempts share the listening sockets: new listeners mean new attempts. The client
  // goes before the server it borrows sockets from.
  out.reconnected = connections_changed || out.listeners_reopened;
  if (out.reconnected) client_.reset();
  // What is kept keeps the configuration it was built from.
  if (out.listeners_reopened) {
    server_config_ = next;
    start_server();
  }
  if (out.reconnected) {
    client_config_ = next;
    start_client();
  }
  out.applied = true;
  return out;
}

}  // namespace duet::node
