#include "reporting.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace duet::daemon {

EventLog::EventLog(const std::string& path) : out_(path, std::ios::app) {}

void EventLog::write(const transport::Event& e) {
  // Microseconds too: the testbed compares times of a few ms with the simulator's, and two
  // whole-millisecond stamps put up to 1 ms of rounding into each difference.
  const auto unix_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  nlohmann::json j = {{"unix_ms", unix_us / 1000},
                      {"kind", std::string(transport::to_string(e.kind))},
                      {"elapsed_ms", net::to_ms(e.elapsed)},
                      {"detail", e.detail},
                      {"text", e.describe()}};
  j["unix_us"] = unix_us;
  if (e.endpoint) j["endpoint"] = e.endpoint->to_string();
  if (e.transport) j["transport"] = std::string(config::to_string(*e.transport));
  out_ << j.dump() << "\n" << std::flush;
}

StatusFile::StatusFile(net::Clock& clock, std::string path, net::Duration interval, std::function<std::string()> text)
    : path_(std::move(path)), interval_(interval), text_(std::move(text)), timer_(clock.make_timer()) {
  write();
}

StatusFile::~StatusFile() { timer_->cancel(); }

void StatusFile::write() {
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text_();
    out.close();
    if (!out || std::rename(tmp.c_str(), path_.c_str()) != 0) {
      if (!failed_) spdlog::warn("cannot write the status file {}", path_);
      failed_ = true;
    } else {
      failed_ = false;
    }
  }
  timer_->start(interval_, [this] { write(); });
}

}  // namespace duet::daemon
