#include "duet/config/diagnostic.hpp"

#include <algorithm>

namespace duet::config {

std::string SourceLocation::to_string() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line);
  if (column > 0) s += ":" + std::to_string(column);
  return s;
}

std::string_view to_string(Severity s) {
  switch (s) {
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::error:
      return "error";
  }
  return "?";
}

std::string Diagnostic::to_string() const {
  std::string out = where.to_string();
  if (!out.empty()) out += ": ";
  out += std::string(config::to_string(severity)) + ": " + message;
  if (where.line > 0 && !where.text.empty()) {
    out += "\n    " + where.text + "\n    ";
    // The quoted text may be cut short; the caret never goes past it.
    const std::size_t caret = std::min<std::size_t>(where.column > 0 ? where.column - 1 : 0, where.text.size());
    for (std::size_t i = 0; i < caret; ++i) out += where.text[i] == '\t' ? '\t' : ' ';
    out += "^";
  }
  return out;
}

void Diagnostics::error(const SourceLocation& where, std::string message) {
  all_.push_back({Severity::error, where, std::move(message)});
}
void Diagnostics::warning(const SourceLocation& where, std::string message) {
  all_.push_back({Severity::warning, where, std::move(message)});
}
void Diagnostics::info(const SourceLocation& where, std::string message) {
  all_.push_back({Severity::info, where, std::move(message)});
}
bool Diagnostics::has_errors() const {
  for (const auto& d : all_) {
    if (d.severity == Severity::error) return true;
  }
  return false;
}
void Diagnostics::append(const Diagnostics& other) { all_.insert(all_.end(), other.all_.begin(), other.all_.end()); }

}  // namespace duet::config
