#include "duet/config/lexer.hpp"

namespace duet::config {

namespace {

constexpr std::size_t kMaxLineLength = 4096;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/// Splits one line into words; false (with a diagnostic) on an unterminated quote.
bool split_line(std::string_view line, SourceLocation where, std::vector<Word>& words, Diagnostics& diag) {
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size()) break;
    if (line[i] == '#' || line[i] == ';') break;  // a comment to the end of the line
    Word w;
    w.column = static_cast<int>(i) + 1;
    bool quoted = false;
    while (i < line.size() && !is_space(line[i])) {
      const char c = line[i];
      if (c == '"' || c == '\'') {
        const char quote = c;
        const std::size_t open = i++;
        bool closed = false;
        while (i < line.size()) {
          if (line[i] == quote) {
            closed = true;
            ++i;
            break;
          }
          if (quote == '"' && line[i] == '\\' && i + 1 < line.size()) ++i;
          w.text += line[i++];
        }
        if (!closed) {
          where.column = static_cast<int>(open) + 1;
          diag.error(where, std::string("unterminated ") + (quote == '"' ? "double" : "single") + " quote");
          return false;
        }
        quoted = true;
        continue;
      }
      if (c == '\\' && i + 1 < line.size()) ++i;
      w.text += line[i++];
    }
    (void)quoted;
    words.push_back(std::move(w));
  }
  return true;
}

}  // namespace

bool is_directive_block(std::string_view name) { return name == "connection" || name == "listen"; }

std::vector<Directive> lex(std::string_view text, const std::string& file, Diagnostics& diag) {
  std::vector<Directive> top;
  Directive* open = nullptr;  // the block being filled, if any
  SourceLocation open_at;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    SourceLocation where{file, line_no, 1, std::string(line.substr(0, 200))};
    if (line.size() > kMaxLineLength) {
      diag.error(where, "line longer than " + std::to_string(kMaxLineLength) + " characters");
      if (end == text.size()) break;
      continue;
    }
    if (line.find('\0') != std::string_view::npos) {
      diag.error(where, "NUL byte in configuration text");
      if (end == text.size()) break;
      continue;
    }
    // Block markers: <name> and </name> alone on their line.
    std::size_t first = 0;
    while (first < line.size() && is_space(line[first])) ++first;
    std::string_view trimmed = line.substr(first);
    while (!trimmed.empty() && is_space(trimmed.back())) trimmed.remove_suffix(1);
    where.column = static_cast<int>(first) + 1;
    if (open != nullptr && !is_directive_block(open->name)) {
      if (trimmed == "</" + open->name + ">") {
        open = nullptr;
      } else {
        open->body += std::string(line) + "\n";
      }
      if (end == text.size()) break;
      continue;
    }
    if (trimmed.size() >= 3 && trimmed.front() == '<' && trimmed.back() == '>') {
      const bool closing = trimmed[1] == '/';
      std::string name(trimmed.substr(closing ? 2 : 1, trimmed.size() - (closing ? 3 : 2)));
      if (closing) {
        if (open == nullptr) {
          diag.error(where, "</" + name + "> without a matching <" + name + ">");
        } else if (open->name != name) {
          diag.error(where,
                     "</" + name + "> closes <" + open->name + "> opened at line " + std::to_string(open_at.line));
          open = nullptr;
        } else {
          open = nullptr;
        }
      } else if (open != nullptr) {
        diag.error(where, "<" + name + "> inside <" + open->name + "> (opened at line " + std::to_string(open_at.line) +
                              "): blocks do not nest");
      } else {
        Directive d;
        d.name = name;
        d.is_block = true;
        d.where = where;
        top.push_back(std::move(d));
        open = &top.back();
        open_at = where;
      }
      if (end == text.size()) break;
      continue;
    }
    std::vector<Word> words;
    if (split_line(line, where, words, diag) && !words.empty()) {
      Directive d;
      d.name = words.front().text;
      if (d.name.rfind("--", 0) == 0) d.name.erase(0, 2);  // "--proto udp" in a file is fine
      d.where = where;
      d.where.column = words.front().column;
      d.args.assign(words.begin() + 1, words.end());
      (open != nullptr ? open->block : top).push_back(std::move(d));
    }
    if (end == text.size()) break;
  }
  if (open != nullptr) {
    diag.error(open_at, "<" + open->name + "> is never closed (expected </" + open->name + ">)");
  }
  return top;
}

std::vector<Directive> lex_command_line(const std::vector<std::string>& args, Diagnostics& diag) {
  std::vector<Directive> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    SourceLocation where{"<command line>", static_cast<int>(i) + 1, 1, a};
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      Directive d;
      d.name = a.substr(2);
      d.where = where;
      out.push_back(std::move(d));
    } else if (out.empty()) {
      diag.error(where, "'" + a + "' is not an option (options start with --)");
    } else {
      out.back().args.push_back({a, 1, static_cast<int>(i) + 1});
    }
  }
  return out;
}

}  // namespace duet::config
