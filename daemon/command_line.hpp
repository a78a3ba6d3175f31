// duetd's command line: its own flags may come anywhere (before, between or after the
// configuration's `--directive args`); everything else is configuration, read in order.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace duet::daemon {

struct Invocation {
  enum class Kind { run, interface, test_config, genkey, pubkey, help, version } kind = Kind::run;
  std::string interface;              ///< `duetd [-f] IFNAME`: a device configured at run time with `wg`
  bool foreground = false;            ///< -f/--foreground: stay in the foreground (IFNAME launch)
  std::string events_file;            ///< --events FILE: every engine event as a JSON line
  std::optional<long long> start_at;  ///< --start-at UNIX_MS: start the engine then
  std::vector<std::string> config;    ///< the rest: --config FILE, --directive args...
  std::string error;                  ///< a usage error (exit 2)
};

Invocation parse_command_line(const std::vector<std::string>& args);

extern const char* const kUsage;

}  // namespace duet::daemon
