// Where the engine gets its sockets: the stack itself, or a plugin (a proxy) that
// supplies a stream or datagram socket for a remote instead.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "duet/config/config.hpp"
#include "duet/net/error.hpp"
#include "duet/net/network_stack.hpp"

namespace duet::transport {

/// A proxy between the engine and its remotes: the engine resolves and races this
/// instead of the remote, and asks for sockets with open_*_via.
struct Via {
  std::string host;  ///< a name or a literal
  std::uint16_t port = 0;
  std::string name;  ///< what it is, for log lines ("http-proxy")
};

class SocketFactory {
public:
  virtual ~SocketFactory() = default;
  /// The proxy for `transport`, if remotes are reached through one.
  [[nodiscard]] virtual std::optional<Via> via(config::Transport) const { return std::nullopt; }
  /// A stream that, once connect()ed to one of the proxy's addresses, reaches host:port.
  virtual net::Result<std::unique_ptr<net::StreamSocket>> open_stream_via(net::Family, const std::string&,
                                                                          std::uint16_t) {
    return net::errc(std::errc::operation_not_supported);
  }
  /// A datagram socket that, once connect()ed to one of the proxy's addresses, reaches
  /// host:port through the proxy's relay.
  virtual net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram_via(net::Family, const std::string&,
                                                                              std::uint16_t) {
    return net::errc(std::errc::operation_not_supported);
  }
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
  net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram(net::Family family, const net::Endpoint&) override {
    return stack_.open_datagram(family);
  }
  net::Result<std::unique_ptr<net::StreamSocket>> open_stream(net::Family family, const net::Endpoint&) override {
    return stack_.open_stream(family);
  }

private:
  net::NetworkStack& stack_;
};

}  // namespace duet::transport
