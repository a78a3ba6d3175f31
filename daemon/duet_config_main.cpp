// duet-config check: see config_check.hpp.
#include <cstdio>

#include "config_check.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] != "check") {
    std::fputs("usage: duet-config check [--json] [--no-resolve] [FILE] [--directive args...]\n", stderr);
    return 2;
  }
  args.erase(args.begin());
  return duet::daemon::config_check(args);
}
