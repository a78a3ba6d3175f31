// NetworkStack on the kernel: real sockets, timers and getaddrinfo, on one Boost.Asio
// io_context that the caller runs. Only this folder (and the daemon) knows Asio.
#pragma once

#include <memory>

#include "duet/net/network_stack.hpp"

namespace boost::asio {
class io_context;
}

namespace duet::posix {

class PosixStack final : public net::NetworkStack {
public:
  /// The stack schedules everything on `io` and never runs it itself.
  explicit PosixStack(boost::asio::io_context& io);
  ~PosixStack() override;
  PosixStack(const PosixStack&) = delete;
  PosixStack& operator=(const PosixStack&) = delete;

  net::Clock& clock() override;
  std::unique_ptr<net::PendingOperation> resolve(const std::string& host,
                                                 const std::string& service,
                                                 const net::ResolveHints& hints,
                                                 net::ResolveHandler handler) override;
  net::Result<std::vector<net::InterfaceAddress>> interface_addresses() override;
  net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram(net::Family family) override;
  net::Result<std::unique_ptr<net::StreamSocket>> open_stream(net::Family family) override;
  net::Result<std::unique_ptr<net::Listener>> listen(const net::Endpoint& local,
                                                     const net::ListenOptions& options) override;
  std::uint64_t random() override;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::posix
