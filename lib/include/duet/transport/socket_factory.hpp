// Where the engine gets its sockets: the stack itself, or a plugin (a proxy) that
// supplies a stream or datagram socket for a remote instead.
#pragma once

#include <memory>

#include "duet/net/network_stack.hpp"

namespace duet::transport {

class SocketFactory {
public:
  virtual ~SocketFactory() = default;
  /// A UDP socket of `family` for talking to `remote`.
  virtual net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram(net::Family family,
                                                                         const net::Endpoint& remote) = 0;
  /// A TCP socket of `family`, not yet connected, for reaching `remote`.
  virtual net::Result<std::unique_ptr<net::StreamSocket>> open_stream(net::Family family,
                                                                     const net::Endpoint& remote) = 0;
};

/// The default: sockets straight from the NetworkStack.
class StackSockets final : public SocketFactory {
public:
  explicit StackSockets(net::NetworkStack& stack) : stack_(stack) {}
  net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram(net::Family family,
                                                                 const net::Endpoint&) override {
    return stack_.open_datagram(family);
  }
  net::Result<std::unique_ptr<net::StreamSocket>> open_stream(net::Family family,
                                                             const net::Endpoint&) override {
    return stack_.open_stream(family);
  }

private:
  net::NetworkStack& stack_;
};

}  // namespace duet::transport
