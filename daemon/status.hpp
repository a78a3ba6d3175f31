// What duetctl status shows, and the status file holds: the interface, its listening
// sockets, the data path's offloads and batching, and every peer with its endpoint, last
// handshake and bytes, as JSON and as text like `wg show`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "duet/node/node.hpp"
#include "duet/posix/posix_stack.hpp"

namespace duet::daemon {

/// `udp`: the kernel stack's datagram counters (absent: no data-path section).
nlohmann::ordered_json status_json(const node::Status& s, const posix::UdpCounters* udp);
std::string status_text(const nlohmann::ordered_json& status);

}  // namespace duet::daemon
