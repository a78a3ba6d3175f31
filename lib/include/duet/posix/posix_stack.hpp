// NetworkStack on the kernel: real sockets, timers and getaddrinfo, on one Boost.Asio
// io_context that the caller runs. Only this folder (and the daemon's OS glue) knows Asio.
#pragma once

#include <memory>
#include <string>

#include "duet/net/network_stack.hpp"
#include "duet/posix/loop.hpp"

namespace boost::asio {
class io_context;
}

namespace duet::posix {

/// The kernel's UDP offloads a PosixStack may use on its datagram sockets, and their buffers.
struct StackOptions {
  bool udp_gso = true;               ///< UDP_SEGMENT: equal-sized datagrams to one peer in one send
  bool udp_gro = true;               ///< UDP_GRO: datagrams of one peer received together
  int udp_send_buffer = 4 << 20;     ///< SO_SNDBUF of UDP sockets (the kernel doubles it)
  int udp_receive_buffer = 4 << 20;  ///< SO_RCVBUF of UDP sockets
};

/// What the stack's datagram sockets did: which offloads are in use, and how many
/// datagrams each system call moved (for `duetctl status` and the benchmark).
struct UdpCounters {
  std::string gso = "unused (no UDP socket)";  ///< UDP_SEGMENT in use, in words ("on", "off (why)")
  std::string gro = "unused (no UDP socket)";  ///< UDP_GRO in use, in words
  std::uint64_t send_calls = 0;                ///< sendmsg/sendmmsg system calls
  std::uint64_t datagrams_sent = 0;            ///< datagrams they carried
  std::uint64_t receive_calls = 0;             ///< recvmsg/recvmmsg system calls
  std::uint64_t datagrams_received = 0;        ///< datagrams they brought
  std::uint64_t send_dropped = 0;              ///< queued datagrams the kernel refused (counted, not reported)
  std::uint64_t source_fallbacks = 0;          ///< sends from a source address the host no longer had
  std::uint64_t datagrams_in_place = 0;        ///< queued datagrams written in place by their sender (not copied)
};

/// What the stack's TCP sockets did, for the status (all sockets of one stack together).
struct TcpCounters {
  std::uint64_t writes = 0;           ///< messages queued for writing (write, write_parts, write_filled)
  std::uint64_t writes_in_place = 0;  ///< of those, written in place by their sender (not copied)
};

/// The NetworkStack of this host's kernel: sockets, timers and getaddrinfo through
/// Boost.Asio, on an event loop the caller runs on one thread.
class PosixStack final : public net::NetworkStack {
public:
  /// The stack schedules everything on `io` and never runs it itself.
  explicit PosixStack(boost::asio::io_context& io, StackOptions options = {});
  /// The same on a Loop (no Asio in the caller's code).
  explicit PosixStack(Loop& loop, StackOptions options = {}) : PosixStack(loop.context(), options) {}
  ~PosixStack() override;
  PosixStack(const PosixStack&) = delete;
  PosixStack& operator=(const PosixStack&) = delete;

  net::Clock& clock() override;
  std::unique_ptr<net::PendingOperation> resolve(const std::string& host, const std::string& service,
                                                 const net::ResolveHints& hints, net::ResolveHandler handler) override;
  /// glibc's order for these destinations on this host (see NetworkStack::sort_destinations).
  std::vector<net::Endpoint> sort_destinations(const std::string& name,
                                               std::vector<net::Endpoint> destinations) override;
  net::Result<std::vector<net::InterfaceAddress>> interface_addresses() override;
  net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram(net::Family family) override;
  net::Result<std::unique_ptr<net::StreamSocket>> open_stream(net::Family family) override;
  net::Result<std::unique_ptr<net::Listener>> listen(const net::Endpoint& local,
                                                     const net::ListenOptions& options) override;
  std::uint64_t random() override;
  void random_fill(std::span<std::uint8_t> out) override;

  /// What the stack's datagram sockets did so far.
  [[nodiscard]] const UdpCounters& udp_counters() const;
  /// What its TCP sockets did so far.
  [[nodiscard]] const TcpCounters& tcp_counters() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::posix
