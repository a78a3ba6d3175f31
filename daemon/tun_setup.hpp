// The TUN device's place in the host: its addresses, MTU and link state, and the routes
// `route-allowed-ips` puts into it, set with iproute2 (`ip`), every command logged.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "duet/config/config.hpp"

namespace duet::daemon {

/// Runs a command without a shell and waits; logs it first. True when it exited 0.
bool run_command(spdlog::logger& log, std::vector<std::string> argv);

/// Adds `ifconfig` addresses to `dev`, sets its MTU and brings it up; false (logged) when
/// the link cannot be brought up.
bool configure_device(spdlog::logger& log, const std::string& dev, const config::Config& cfg);

/// The prefixes `route-allowed-ips` routes into the TUN: every peer's allowed IPs, except
/// the subnets the device's own addresses already give it.
std::set<std::string> allowed_ip_routes(const config::Config& cfg);

/// Makes the TUN's routes go from `before` to `after` (start-up: `before` empty; a reload).
void sync_routes(spdlog::logger& log, const std::string& dev, const std::set<std::string>& before,
                 const std::set<std::string>& after);

}  // namespace duet::daemon
