// What the PosixStack's files share: conversions between Asio's types and duet's, and
// the factories each file provides to posix_stack.cpp. Not a public header.
#pragma once

#include <utility>  // before Asio 1.74, whose awaitable.hpp uses std::exchange unannounced

#include <boost/asio.hpp>
#include <memory>
#include <mutex>
#include <optional>

#include "duet/net/error.hpp"
#include "duet/posix/posix_stack.hpp"

namespace duet::posix::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using net::Address;
using net::Endpoint;
using net::Family;
using net::Result;

inline std::error_code to_std(const boost::system::error_code& ec) {
  if (!ec) return {};
  if (ec == asio::error::operation_aborted) return net::errc(std::errc::operation_canceled);
  if (ec.category() == boost::system::system_category() || ec.category() == boost::system::generic_category()) {
    return {ec.value(), std::generic_category()};
  }
  if (ec == asio::error::eof) return net::errc(std::errc::connection_reset);
  return net::errc(std::errc::io_error);
}

inline asio::ip::address to_asio(const Address& a) {
  if (a.is_v4()) return asio::ip::address_v4(a.v4_value());
  return asio::ip::address_v6(a.bytes(), a.scope_id());
}

inline Address from_asio(const asio::ip::address& a) {
  if (a.is_v4()) return Address::v4(a.to_v4().to_uint());
  auto v6 = a.to_v6();
  return Address::v6(v6.to_bytes(), static_cast<std::uint32_t>(v6.scope_id()));
}

template <typename Proto>
typename Proto::endpoint to_asio(const Endpoint& e) {
  return {to_asio(e.address), e.port};
}

template <typename AsioEndpoint>
Endpoint from_asio(const AsioEndpoint& e) {
  return {from_asio(e.address()), e.port()};
}

template <typename Proto>
Proto protocol(Family f) {
  return f == Family::v4 ? Proto::v4() : Proto::v6();
}

/// The stack's event loop as threads see it: null once the stack is gone.
struct LoopLink {
  std::mutex mutex;
  asio::io_context* io = nullptr;
  // Questions still on their threads keep the loop's run() from returning for want of
  // work, as a socket's pending receive does (loop thread only; let go with the stack).
  int questions = 0;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> busy;
};

// --- what each file makes --------------------------------------------------------------
std::unique_ptr<net::Clock> make_clock(asio::io_context& io);  // clock.cpp
std::unique_ptr<net::PendingOperation> resolve(const std::shared_ptr<LoopLink>& loop, const std::string& host,
                                               const std::string& service, const net::ResolveHints& hints,
                                               net::ResolveHandler handler);  // resolver.cpp
std::vector<Endpoint> sort_destinations(std::vector<Endpoint> destinations);  // resolver.cpp
Result<std::vector<net::InterfaceAddress>> interface_addresses();             // interfaces.cpp
Result<std::unique_ptr<net::DatagramSocket>> open_datagram(asio::io_context& io, Family family, StackOptions options,
                                                           std::shared_ptr<UdpCounters> counters);  // udp.cpp
Result<std::unique_ptr<net::StreamSocket>> open_stream(asio::io_context& io, Family family);        // tcp.cpp
Result<std::unique_ptr<net::Listener>> listen(asio::io_context& io, const Endpoint& local,
                                              const net::ListenOptions& options);  // tcp.cpp

}  // namespace duet::posix::detail
