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
nlohmann::ordered_json status_json(const node::Status& s, const posix::PosixStack* stack);
std::string status_text(const nlohmann::ordered_json& status);

/// Servers with more peers than this show a summary unless every peer is asked for.
constexpr std::size_t kListedPeers = 20;

/// The control socket's answer to a request line: "status" (every peer), "summary" (the
/// peers only when there are few), "peer KEY" (one); {"error": ...} for anything else.
std::string answer(const std::string& request, const node::Node& node, const posix::PosixStack* stack);

}  // namespace duet::daemon
