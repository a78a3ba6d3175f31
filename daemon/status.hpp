// What duetctl status shows: the interface, its listening sockets, and every peer with
// its endpoint, last handshake, bytes and the last error, as JSON and as text like `wg show`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "duet/config/config.hpp"
#include "duet/posix/posix_stack.hpp"
#include "duet/posix/tun.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/server.hpp"
#include "duet/tunnel/device.hpp"

namespace duet::daemon {

struct StatusSources {
  const config::Config& config;
  const std::string& device_name;
  const tunnel::Device& device;
  const transport::Server* server;
  const transport::Client* client;
  net::TimePoint now;
  const std::string& last_error;
  /// The packet path: which offloads are in use and how well batching works.
  const posix::TunOffloads* tun_offloads = nullptr;
  const posix::TunCounters* tun_counters = nullptr;
  const posix::UdpCounters* udp = nullptr;
};

nlohmann::ordered_json status_json(const StatusSources& s);
std::string status_text(const nlohmann::ordered_json& status);

}  // namespace duet::daemon
