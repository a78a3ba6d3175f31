#include "command_line.hpp"

#include <stdexcept>

namespace duet::daemon {

const char* const kUsage =
    "usage: duetd [--events FILE] [--start-at UNIX_MS] --config FILE [--directive args...]\n"
    "       duetd [-f|--foreground] IFNAME   (as wireguard-go: configure it with wg, wg-quick)\n"
    "       duetd --test-config [--json] [--no-resolve] [FILE] [--directive args...]\n"
    "       duetd genkey | duetd pubkey < KEY | duetd --version | duetd --help\n"
    "Options may come in any order; every other --directive is configuration (see duet.conf).\n";

Invocation parse_command_line(const std::vector<std::string>& args) {
  Invocation out;
  if (args.empty()) {
    out.kind = Invocation::Kind::help;
    out.error = "no configuration";
    return out;
  }
  if (args.size() == 1 && (args[0] == "genkey" || args[0] == "pubkey")) {
    out.kind = args[0] == "genkey" ? Invocation::Kind::genkey : Invocation::Kind::pubkey;
    return out;
  }
  // The WireGuard launch: an interface name and perhaps -f, nothing else.
  std::vector<std::string> rest;
  bool foreground = false;
  for (const auto& a : args) {
    if (a == "-f" || a == "--foreground")
      foreground = true;
    else
      rest.push_back(a);
  }
  if (rest.size() == 1 && !rest[0].empty() && rest[0][0] != '-') {
    out.kind = Invocation::Kind::interface;
    out.interface = rest[0];
    out.foreground = foreground;
    if (out.interface.size() >= 16 || out.interface.find('/') != std::string::npos) {
      out.error = "'" + out.interface + "' is not an interface name (at most 15 characters, no '/')";
    }
    return out;
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out.kind = Invocation::Kind::help;
    } else if (a == "--version") {
      out.kind = Invocation::Kind::version;
    } else if (a == "--test-config") {
      out.kind = Invocation::Kind::test_config;
    } else if (a == "--events" || a == "--start-at") {
      if (i + 1 >= args.size()) {
        out.error = a + " needs a value";
        return out;
      }
      const std::string& v = args[++i];
      if (a == "--events") {
        out.events_file = v;
      } else {
        try {
          std::size_t used = 0;
          out.start_at = std::stoll(v, &used);
          if (used != v.size()) throw std::invalid_argument(v);
        } catch (const std::exception&) {
          out.error = "--start-at wants milliseconds since 1970, not '" + v + "'";
          return out;
        }
      }
    } else {
      out.config.push_back(a);
    }
  }
  return out;
}

}  // namespace duet::daemon
