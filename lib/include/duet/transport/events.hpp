// Every step a user would want to see, as a structured event: logged through spdlog at
// a level the user picks, and handed to the scenario runner.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <system_error>

#include "duet/config/config.hpp"
#include "duet/net/address.hpp"
#include "duet/net/clock.hpp"

namespace spdlog {
class logger;
}

namespace duet::transport {

enum class EventKind {
  resolving,            ///< detail: the name
  resolved,             ///< detail: the addresses in the order they will be tried
  resolve_failed,       ///< error
  bind_ok,              ///< endpoint, transport, detail "IPV6_V6ONLY" when set
  bind_failed,          ///< endpoint, transport, error
  skipped,              ///< detail: why a planned socket is not made (family absent...)
  listening,            ///< detail: how many sockets
  startup_failed,       ///< detail: why nothing can run
  attempt_started,      ///< endpoint, transport
  attempt_failed,       ///< endpoint, transport, error
  connected,            ///< endpoint, transport, elapsed since the round began
  bind_remote_warning,  ///< detail: the words of policy::check_bind_remote
  bind_remote_error,    ///< detail
  round_failed,         ///< every address of every connection failed; detail: next retry
  disconnected,         ///< endpoint, error or detail (keepalive timeout, EOF...)
  reconnecting,         ///< detail
  peer_accepted,        ///< endpoint, transport: a new peer completed its handshake
  framing_error,        ///< endpoint, detail: why a TCP connection was closed
  probing,              ///< endpoint, transport, detail: the active path went quiet after we sent
  path_check,           ///< endpoint, transport; error when the path left behind still fails
  standby,              ///< endpoint, transport, detail: a standby path became known good, or stopped being
};

std::string_view to_string(EventKind k);

struct Event {
  net::TimePoint time{};
  EventKind kind = EventKind::resolving;
  std::optional<net::Endpoint> endpoint;
  std::optional<config::Transport> transport;
  std::error_code error;
  net::Duration elapsed{0};
  std::string detail;

  /// One line for people: "attempt to [fd00::1]:1194/udp failed: ETIMEDOUT".
  [[nodiscard]] std::string describe() const;
};

using EventSink = std::function<void(const Event&)>;

/// How much an event matters, decided here once for the daemon's log, `duetctl`'s last
/// error and the scenario runner's "logs warning": steps are debug, outcomes info, a
/// failed address or a lost connection a warning, nothing able to run an error.
enum class EventLevel { debug, info, warning, error };
EventLevel level_of(EventKind k);
std::string_view to_string(EventLevel l);

/// Logs an event on `logger` at level_of(kind).
void log_event(spdlog::logger& logger, const Event& e);

}  // namespace duet::transport
