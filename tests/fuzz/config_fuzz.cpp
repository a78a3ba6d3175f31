// libFuzzer target: any bytes as a configuration file must give a Config or
// diagnostics (the loader's and the policy review's), never a crash, a hang or a
// diagnostic pointing outside the text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "duet/config/loader.hpp"
#include "duet/policy/review.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // As every user of a configuration loads it: the language, then the policy's review.
  const auto result = duet::policy::reviewed(duet::config::load_text(text, "fuzz.conf"));
  std::size_t lines = 1;
  for (char c : text) lines += c == '\n';
  for (const auto& d : result.diagnostics.all()) {
    if (d.where.file == "fuzz.conf" && (d.where.line < 0 || static_cast<std::size_t>(d.where.line) > lines)) {
      std::abort();  // a location that does not exist in the input
    }
    (void)d.to_string();
  }
  // Whatever loaded must be usable: ports set, connections for clients, listens for servers.
  if (result.ok()) {
    for (const auto& c : result.config.connections) {
      for (const auto& r : c.remotes) {
        if (r.port == 0 || r.host.empty()) std::abort();
      }
    }
    if (result.config.mode == duet::config::Mode::server && result.config.listens.empty()) std::abort();
  }
  return 0;
}
