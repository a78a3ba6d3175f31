#include "tun_setup.hpp"

#include <spawn.h>
#include <sys/wait.h>

extern char** environ;

namespace duet::daemon {

bool run_command(spdlog::logger& log, std::vector<std::string> argv) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  log.info("running: {}", line);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return false;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool configure_device(spdlog::logger& log, const std::string& dev, const config::Config& cfg) {
  for (const auto& a : cfg.ifconfig) {
    if (!run_command(log, {"ip", "address", "add", a.to_string(), "dev", dev}))
      log.warn("could not add {} to {}", a.to_string(), dev);
  }
  if (!run_command(log, {"ip", "link", "set", "dev", dev, "mtu", std::to_string(cfg.tun_mtu), "up"})) {
    log.error("could not bring {} up", dev);
    return false;
  }
  return true;
}

std::set<std::string> allowed_ip_routes(const config::Config& cfg) {
  std::set<std::string> out;
  if (!cfg.route_allowed_ips) return out;
  for (const auto& p : cfg.peers) {
    for (const auto& prefix : p.allowed_ips) {
      bool connected = false;
      for (const auto& a : cfg.ifconfig) connected = connected || a.network() == prefix.network();
      if (!connected) out.insert(prefix.network().to_string());
    }
  }
  return out;
}

void sync_routes(spdlog::logger& log, const std::string& dev, const std::set<std::string>& before,
                 const std::set<std::string>& after) {
  for (const auto& r : before) {
    if (!after.contains(r) && !run_command(log, {"ip", "route", "del", r, "dev", dev}))
      log.warn("could not remove the route to {}", r);
  }
  for (const auto& r : after) {
    if (!before.contains(r) && !run_command(log, {"ip", "route", "replace", r, "dev", dev})) {
      log.warn("could not route {} into {} (after 'user', duetd lacks CAP_NET_ADMIN)", r, dev);
    }
  }
}

}  // namespace duet::daemon
