// duet-config check: see config_check.hpp.
#include <cstdio>

#include "config_check.hpp"

#ifndef DUET_VERSION
#define DUET_VERSION "0"
#endif

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--version") {
    std::printf("duet-config %s\n", DUET_VERSION);
    return 0;
  }
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(
        "usage: duet-config check [--json] [--no-resolve] [FILE] [--directive args...]\n"
        "  Checks a configuration and prints what it would do on this host (see duet-config(1)).\n",
        stdout);
    return 0;
  }
  if (args.empty() || args[0] != "check") {
    std::fputs("usage: duet-config check [--json] [--no-resolve] [FILE] [--directive args...]\n", stderr);
    return 2;
  }
  args.erase(args.begin());
  return duet::daemon::config_check(args);
}
