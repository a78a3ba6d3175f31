// What the configuration loader and the policy say back: errors, warnings and notes,
// each tied to the file, line and column it is about.
#pragma once

#include <string>
#include <vector>

namespace duet::config {

struct SourceLocation {
  std::string file;  ///< path as given, or "<command line>"
  int line = 0;      ///< 1-based; for the command line, the argument's index
  int column = 0;    ///< 1-based
  std::string text;  ///< the whole line, for quoting

  [[nodiscard]] bool known() const { return line > 0; }
  /// "file:line:col"
  [[nodiscard]] std::string to_string() const;
};

enum class Severity { info, warning, error };

struct Diagnostic {
  Severity severity = Severity::error;
  SourceLocation where;
  std::string message;
  /// "file:line:col: error: message" and, when the line is known, the line with a caret.
  [[nodiscard]] std::string to_string() const;
};

class Diagnostics {
public:
  void error(const SourceLocation& where, std::string message);
  void warning(const SourceLocation& where, std::string message);
  void info(const SourceLocation& where, std::string message);
  [[nodiscard]] bool has_errors() const;
  [[nodiscard]] const std::vector<Diagnostic>& all() const { return all_; }
  void append(const Diagnostics& other);

private:
  std::vector<Diagnostic> all_;
};

std::string_view to_string(Severity s);

}  // namespace duet::config
