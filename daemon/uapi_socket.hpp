// WireGuard's configuration socket: /var/run/wireguard/DEV.sock (root only, 0600, as
// wireguard-go's), where `wg` talks the cross-platform configuration protocol
// (node/uapi.hpp). Connections are served on the daemon's event loop, each bounded in
// size, in count and in time, so a client that sends too much, too little or too slowly
// is cut off and the tunnel's traffic never waits for it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <spdlog/logger.h>
#include <boost/asio/io_context.hpp>

#include "duet/node/uapi.hpp"

namespace duet::daemon {

class UapiSocket {
public:
  /// Runs one complete operation; returns its whole answer.
  using Run = node::uapi::Connection::Run;
  /// Listens at `dir`/`dev`.sock; `error` says why not (the socket of a running daemon,
  /// or a directory that cannot be made).
  UapiSocket(boost::asio::io_context& io, spdlog::logger& log, const std::string& dir, const std::string& dev, Run run,
             std::string& error);
  ~UapiSocket();
  UapiSocket(const UapiSocket&) = delete;
  UapiSocket& operator=(const UapiSocket&) = delete;
  [[nodiscard]] const std::string& path() const;

private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace duet::daemon
