// The configuration check shared by `duet-config check` and `duetd --test-config`:
// loads a configuration, resolves what it names on this host, prints the effective
// options and the socket plan with every warning and error. Returns 0 fine, 1 errors,
// 2 usage.
#pragma once

#include <string>
#include <vector>

namespace duet::daemon {

/// `args`: [--json] [--no-resolve] [FILE] [--directive args...]
int config_check(std::vector<std::string> args);

}  // namespace duet::daemon
