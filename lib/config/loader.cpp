// Loading a configuration: the first file (and its includes), then the command line read
// after it, into one validated Config with every diagnostic.
#include "duet/config/loader.hpp"

#include <filesystem>

#include "loader_state.hpp"

namespace duet::config {

namespace {

using detail::Loader;
using detail::Raw;

LoadResult finish(Loader& loader, const std::vector<Directive>& first, const std::string& first_name,
                  const std::vector<Directive>& command_line) {
  Raw top;
  std::vector<Raw> connections, listens;
  std::vector<std::string> stack;
  if (!first_name.empty()) {
    std::error_code ec;
    stack.push_back(std::filesystem::weakly_canonical(first_name, ec).string());
  }
  loader.read_directives(first, top, connections, listens, stack);
  stack.clear();
  loader.read_directives(command_line, top, connections, listens, stack);
  LoadResult result;
  result.config = loader.build(top, connections, listens);
  result.diagnostics = loader.diag;
  return result;
}

}  // namespace

LoadResult load_text(std::string_view text, const std::string& name, const std::vector<std::string>& args) {
  Loader loader;
  loader.files.push_back(name);
  const auto ds = lex(text, name, loader.diag);
  const auto cl = lex_command_line(args, loader.diag);
  return finish(loader, ds, name, cl);
}

LoadResult load_command_line(const std::vector<std::string>& args) {
  Loader loader;
  const auto cl = lex_command_line(args, loader.diag);
  return finish(loader, {}, "", cl);
}

}  // namespace duet::config
