// Loading a configuration: files (with "config FILE" includes), then the command line,
// into a validated Config, or diagnostics that name file, line and column.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/config/diagnostic.hpp"

namespace duet::config {

struct LoadResult {
  Config config;
  Diagnostics diagnostics;
  [[nodiscard]] bool ok() const { return !diagnostics.has_errors(); }
};

/// Reads command-line arguments (e.g. {"--config", "server.conf", "--verb", "4"});
/// "--config FILE" reads a file at that point; later single-valued options win.
LoadResult load_command_line(const std::vector<std::string>& args);

/// Reads configuration text as if it were the file `name`, then `args` after it.
LoadResult load_text(std::string_view text, const std::string& name, const std::vector<std::string>& args = {});

/// Every directive name the loader knows (for suggestions and documentation).
std::vector<std::string> known_directives();

/// The closest known directive to `name`, or "" when nothing is close.
std::string suggest_directive(const std::string& name);

}  // namespace duet::config
