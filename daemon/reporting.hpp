// What duetd writes for others to read while it runs: every engine event as a JSON line
// (--events FILE, for the namespace testbed, which judges scenario sentences from them as
// the simulator does) and the status file (`status FILE [SECONDS]`, rewritten whole every
// SECONDS, as OpenVPN's is).
#pragma once

#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "duet/net/clock.hpp"
#include "duet/transport/events.hpp"

namespace duet::daemon {

class EventLog {
public:
  /// Appends to `path`; ok() is false when it cannot be written.
  explicit EventLog(const std::string& path);
  [[nodiscard]] bool ok() const { return static_cast<bool>(out_); }
  void write(const transport::Event& e);

private:
  std::ofstream out_;
};

class StatusFile {
public:
  /// Writes `text()` to `path` now and every `interval` (through a temporary file, so a
  /// reader never sees half of it); logs a failure once.
  StatusFile(net::Clock& clock, std::string path, net::Duration interval, std::function<std::string()> text);
  ~StatusFile();

private:
  void write();
  std::string path_;
  net::Duration interval_;
  std::function<std::string()> text_;
  std::unique_ptr<net::Timer> timer_;
  bool failed_ = false;
};

}  // namespace duet::daemon
