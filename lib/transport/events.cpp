#include "duet/transport/events.hpp"

#include <spdlog/spdlog.h>

#include "duet/net/error.hpp"

namespace duet::transport {

std::string_view to_string(EventKind k) {
  switch (k) {
    case EventKind::resolving:
      return "resolving";
    case EventKind::resolved:
      return "resolved";
    case EventKind::resolve_failed:
      return "resolve-failed";
    case EventKind::bind_ok:
      return "bind-ok";
    case EventKind::bind_failed:
      return "bind-failed";
    case EventKind::skipped:
      return "skipped";
    case EventKind::listening:
      return "listening";
    case EventKind::startup_failed:
      return "startup-failed";
    case EventKind::attempt_started:
      return "attempt-started";
    case EventKind::attempt_failed:
      return "attempt-failed";
    case EventKind::connected:
      return "connected";
    case EventKind::bind_remote_warning:
      return "bind-remote-warning";
    case EventKind::bind_remote_error:
      return "bind-remote-error";
    case EventKind::round_failed:
      return "round-failed";
    case EventKind::disconnected:
      return "disconnected";
    case EventKind::reconnecting:
      return "reconnecting";
    case EventKind::peer_accepted:
      return "peer-accepted";
    case EventKind::framing_error:
      return "framing-error";
    case EventKind::probing:
      return "probing";
    case EventKind::path_check:
      return "path-check";
    case EventKind::standby:
      return "standby";
  }
  return "?";
}

std::string Event::describe() const {
  std::string where;
  if (endpoint) where = endpoint->to_string();
  if (transport) where += "/" + std::string(config::to_string(*transport));
  const std::string err = error ? net::error_name(error) : "";
  switch (kind) {
    case EventKind::resolving:
      return "resolving " + detail;
    case EventKind::resolved:
      return "resolved " + detail;
    case EventKind::resolve_failed:
      return "cannot resolve " + detail + ": " + error.message();
    case EventKind::bind_ok:
      return "bound " + where + (detail.empty() ? "" : " " + detail);
    case EventKind::bind_failed:
      return "cannot bind " + where + ": " + err;
    case EventKind::skipped:
      return detail;
    case EventKind::listening:
      return "listening on " + detail;
    case EventKind::startup_failed:
      return "cannot start: " + detail;
    case EventKind::attempt_started:
      return "trying " + where + (detail.empty() ? "" : " " + detail);
    case EventKind::attempt_failed:
      return "attempt to " + where + " failed: " +
             (err.empty()      ? detail
              : detail.empty() ? err
                               : err + " (" + detail + ")");
    case EventKind::connected:
      return "connected to " + where + " over " + std::string(net::to_string(endpoint->family())) + " after " +
             std::to_string(static_cast<long long>(net::to_ms(elapsed))) + " ms" +
             (detail.empty() ? "" : " (" + detail + ")");
    case EventKind::bind_remote_warning:
    case EventKind::bind_remote_error:
      return detail;
    case EventKind::round_failed:
      return "every address failed; " + detail;
    case EventKind::disconnected:
      return "lost " + where + ": " + (err.empty() ? detail : err);
    case EventKind::reconnecting:
      return "reconnecting: " + detail;
    case EventKind::peer_accepted:
      return "peer " + where + " connected";
    case EventKind::framing_error:
      return "closed " + where + ": " + detail;
    case EventKind::probing:
      return where + ": " + detail;
    case EventKind::path_check:
      return error ? "path left behind " + where + " still fails: " + (err.empty() ? detail : err)
                   : detail + ": " + where;
    case EventKind::standby:
      return "standby " + where + ": " + (err.empty() ? detail : detail + " (" + err + ")");
  }
  return detail;
}

EventLevel level_of(EventKind k) {
  switch (k) {
    case EventKind::resolving:
    case EventKind::attempt_started:
    case EventKind::bind_ok:
    case EventKind::probing:
    case EventKind::path_check:
    case EventKind::standby:
      return EventLevel::debug;
    case EventKind::attempt_failed:
    case EventKind::bind_remote_warning:
    case EventKind::disconnected:
    case EventKind::round_failed:
    case EventKind::framing_error:
    case EventKind::resolve_failed:
      return EventLevel::warning;
    case EventKind::bind_failed:
    case EventKind::bind_remote_error:
    case EventKind::startup_failed:
      return EventLevel::error;
    default:
      return EventLevel::info;
  }
}

std::string_view to_string(EventLevel l) {
  switch (l) {
    case EventLevel::debug:
      return "debug";
    case EventLevel::info:
      return "info";
    case EventLevel::warning:
      return "warning";
    case EventLevel::error:
      return "error";
  }
  return "?";
}

void log_event(spdlog::logger& logger, const Event& e) {
  static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::debug, spdlog::level::info,
                                                          spdlog::level::warn, spdlog::level::err};
  const auto level = kLevels[static_cast<int>(level_of(e.kind))];
  if (logger.should_log(level)) logger.log(level, "{}", e.describe());  // no text made for nothing
}

}  // namespace duet::transport
