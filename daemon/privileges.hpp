// What duetd does with the operating system around it: dropping root once the TUN and
// sockets are open, and telling systemd it is ready.
#pragma once

#include <string>

namespace duet::daemon {

struct Identity {
  unsigned uid = 0, gid = 0;
};

/// Looks up `user` and `group` (either may be empty); false with `error` if one is unknown.
bool lookup_identity(const std::string& user, const std::string& group, Identity& out, std::string& error);

/// Drops supplementary groups, then the group, then the user; false with `error` on failure.
bool drop_privileges(const Identity& to, std::string& error);

/// sd_notify: "READY=1\nSTATUS=..." when run under systemd (NOTIFY_SOCKET set); returns
/// whether a notification was sent.
bool notify_ready(const std::string& status);
bool notify_status(const std::string& status);

}  // namespace duet::daemon
