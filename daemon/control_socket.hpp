// duetctl's control socket: a Unix stream socket (root or the daemon's group only, 0660)
// that answers one request line ("status", "summary", "peer KEY") with JSON.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <spdlog/logger.h>
#include <boost/asio/io_context.hpp>

namespace duet::daemon {

class ControlSocket {
public:
  /// Listens at `path` (replacing a stale socket file); `answer` makes the reply to a
  /// request line (without its newline). A socket that cannot be made is a warning: the
  /// daemon runs without it.
  using Answer = std::function<std::string(const std::string& request)>;
  ControlSocket(boost::asio::io_context& io, spdlog::logger& log, std::string path, int group, Answer answer);
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace duet::daemon
