// The sockets a proxy plugin supplies, as PluginSockets builds them, and the handshake
// loop they share. Not a public header.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "duet/plugin/host.hpp"

namespace duet::plugin::detail {

/// Sends whatever the plugin has to say to the proxy.
void send_output(net::StreamSocket& s, Handshake& hs);

/// The plugin's side of a handshake on a stream to the proxy: feed it what the proxy says
/// and send what it answers until it is done (`done` gets the bytes after the proxy's
/// reply) or fails (`failed` gets the error and the plugin's words; a read error comes
/// with no words). ProxyStream's stream and ProxyDatagram's control stream both use it.
using HandshakeDone = std::function<void(std::span<const std::uint8_t> rest)>;
using HandshakeFailed = std::function<void(std::error_code, const std::string& why)>;
void run_handshake(net::StreamSocket& s, Handshake& hs, HandshakeDone done, HandshakeFailed failed);

/// A stream to the proxy that becomes a stream to the remote (proxy_stream.cpp).
std::unique_ptr<net::StreamSocket> make_proxy_stream(net::Clock& clock, std::unique_ptr<net::StreamSocket> inner,
                                                     std::unique_ptr<Handshake> hs, std::string name);
/// A datagram socket through the proxy's relay (proxy_datagram.cpp).
std::unique_ptr<net::DatagramSocket> make_proxy_datagram(net::NetworkStack& stack,
                                                         std::unique_ptr<net::DatagramSocket> udp,
                                                         std::unique_ptr<Handshake> hs, std::string name);

}  // namespace duet::plugin::detail
