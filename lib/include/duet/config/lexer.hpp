// OpenVPN-style configuration text to directives: one directive per line, words split
// at white space, "double" and 'single' quotes, backslash escapes inside double quotes,
// comments from '#' or ';' at the start of a word, and <name> ... </name> blocks.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duet/config/diagnostic.hpp"

namespace duet::config {

struct Word {
  std::string text;
  int column = 0;
  int line = 0;  ///< 0: the directive's line; on the command line, the word's own position
};

struct Directive {
  std::string name;        ///< first word, without a leading "--"
  std::vector<Word> args;  ///< the rest
  SourceLocation where;    ///< of the name
  /// For a block (<connection>, <listen>): the directives inside, in order.
  std::vector<Directive> block;
  bool is_block = false;
  /// Raw text of a block that is not made of directives (inline files, later keys).
  std::string body;
};

/// Splits `text` (named `file` in diagnostics) into directives. Errors (an unterminated
/// quote or block, a stray </name>, nested blocks) go to `diag`; parsing goes on after them.
std::vector<Directive> lex(std::string_view text, const std::string& file, Diagnostics& diag);

/// Command-line arguments ("--remote", "vpn.test", "1194", "--ipv6") as directives: each
/// "--name" starts one, the words up to the next "--name" are its arguments.
std::vector<Directive> lex_command_line(const std::vector<std::string>& args, Diagnostics& diag);

/// Directive names whose blocks hold directives (the rest keep their body as text).
bool is_directive_block(std::string_view name);

}  // namespace duet::config
