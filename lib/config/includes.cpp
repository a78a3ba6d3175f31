// Reading directives in order: <connection> and <listen> blocks into their own scopes,
// "config FILE" includes (relative to the including file, at most 16 deep, no cycles, at
// most 1 MiB each), everything else into the top level.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "loader_state.hpp"

namespace duet::config::detail {

void Loader::read_directives(const std::vector<Directive>& ds, Raw& top, std::vector<Raw>& connections,
                             std::vector<Raw>& listens, std::vector<std::string>& include_stack) {
  for (const auto& d : ds) {
    if (d.is_block) {
      if (d.name == "connection" || d.name == "listen") {
        Raw block;
        block.where = d.where;
        const Context ctx = d.name == "connection" ? kConnection : kListen;
        for (const auto& inner : d.block) apply(inner, block, ctx);
        (ctx == kConnection ? connections : listens).push_back(std::move(block));
      } else {
        diag.error(d.where, "unknown block <" + d.name + "> (known: <connection>, <listen>)");
      }
      continue;
    }
    if (d.name == "config") {
      include(d, top, connections, listens, include_stack);
      continue;
    }
    apply(d, top, kTop);
  }
}

void Loader::include(const Directive& d, Raw& top, std::vector<Raw>& connections, std::vector<Raw>& listens,
                     std::vector<std::string>& include_stack) {
  if (d.args.size() != 1) {
    diag.error(d.where, "usage: config FILE");
    return;
  }
  std::filesystem::path path = d.args[0].text;
  // Relative includes are relative to the including file.
  if (path.is_relative() && !include_stack.empty()) {
    path = std::filesystem::path(include_stack.back()).parent_path() / path;
  }
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(path, ec).string();
  if (std::find(include_stack.begin(), include_stack.end(), canonical) != include_stack.end()) {
    diag.error(
        at_arg(d, 0), "'" + d.args[0].text + "' is already being read (config cycle: " + [&] {
          std::string chain;
          for (const auto& f : include_stack) chain += f + " -> ";
          return chain + canonical;
        }() + ")");
    return;
  }
  if (include_stack.size() >= kMaxIncludeDepth) {
    diag.error(at_arg(d, 0), "config files nested deeper than " + std::to_string(kMaxIncludeDepth));
    return;
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    diag.error(at_arg(d, 0), "cannot read config file '" + path.string() +
                                 "': " + (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
    return;
  }
  if (std::filesystem::file_size(path, ec) > kMaxFileSize) {
    diag.error(at_arg(d, 0), "config file '" + path.string() + "' is larger than 1 MiB");
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  if (!in && !in.eof()) {
    diag.error(at_arg(d, 0), "cannot read config file '" + path.string() + "'");
    return;
  }
  files.push_back(path.string());
  include_stack.push_back(canonical);
  const auto ds = lex(buf.str(), path.string(), diag);
  read_directives(ds, top, connections, listens, include_stack);
  include_stack.pop_back();
}

}  // namespace duet::config::detail
