#include "privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace duet::daemon {

bool lookup_identity(const std::string& user, const std::string& group, Identity& out, std::string& error) {
  out.uid = getuid();
  out.gid = getgid();
  if (!user.empty()) {
    const passwd* pw = getpwnam(user.c_str());
    if (pw == nullptr) {
      error = "unknown user '" + user + "'";
      return false;
    }
    out.uid = pw->pw_uid;
    out.gid = pw->pw_gid;
  }
  if (!group.empty()) {
    const struct group* gr = getgrnam(group.c_str());
    if (gr == nullptr) {
      error = "unknown group '" + group + "'";
      return false;
    }
    out.gid = gr->gr_gid;
  }
  return true;
}

bool drop_privileges(const Identity& to, std::string& error) {
  if (setgroups(0, nullptr) != 0 || setgid(to.gid) != 0 || setuid(to.uid) != 0) {
    error = std::string("cannot drop privileges: ") + std::strerror(errno);
    return false;
  }
  if (to.uid != 0 && setuid(0) == 0) {  // must not be able to get root back
    error = "privileges could be regained after dropping them";
    return false;
  }
  return true;
}

bool notify_ready(const std::string& status) { return sd_notify(0, ("READY=1\nSTATUS=" + status).c_str()) > 0; }

bool notify_status(const std::string& status) { return sd_notify(0, ("STATUS=" + status).c_str()) > 0; }

}  // namespace duet::daemon
