// Socket state of the simulated transports, owned by their Host (world_impl.hpp).
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "duet/net/network_stack.hpp"
#include "event_queue.hpp"

namespace duet::sim {

using net::Address;
using net::Duration;
using net::Endpoint;
using net::Family;
using net::TimePoint;

/// Who occupies a port, for bind conflicts (IPV6_V6ONLY decides what [::] covers).
struct PortClaim {
  Family family = Family::v4;
  Address address;
  bool v6only = false;
};
bool claims_overlap(const PortClaim& a, const PortClaim& b);

struct Datagram {
  Endpoint from;
  Address to;  ///< the local address it reached, as the socket sees it
  std::vector<std::uint8_t> data;
};

struct UdpSock {
  std::uint64_t id = 0;
  Family family = Family::v4;
  bool v6only = false;
  bool bound = false;
  Address local;  ///< as the socket sees it (v4-mapped on a dual-stack IPv6 socket)
  std::uint16_t port = 0;
  std::optional<Endpoint> remote;
  std::deque<Datagram> rx;
  std::error_code pending_error;
  net::ReceiveHandler handler;       ///< set by receive(), or
  net::ReceiveToHandler handler_to;  ///< by receive_to()
  bool delivery_scheduled = false;

  [[nodiscard]] PortClaim claim() const { return {family, local, v6only}; }
};

constexpr Duration kInitialRto = std::chrono::seconds(1);

enum class TcpState : std::uint8_t { closed, listen, syn_sent, syn_received, established };

struct Segment {
  std::uint32_t seq = 0;
  std::vector<std::uint8_t> data;
  bool syn = false;
  bool fin = false;
  [[nodiscard]] std::uint32_t length() const {
    return static_cast<std::uint32_t>(data.size()) + (syn ? 1 : 0) + (fin ? 1 : 0);
  }
};

struct TcpSock {
  std::uint64_t id = 0;
  Family family = Family::v4;
  bool v6only = false;
  bool claims_port = false;  ///< bound (explicitly or by connect); accepted sockets are not
  Address local;             ///< as the socket sees it (v4-mapped on dual-stack IPv6)
  std::uint16_t port = 0;
  Endpoint remote;     ///< as the socket sees it
  Address wire_local;  ///< packet addresses (never v4-mapped)
  Address wire_remote;
  TcpState state = TcpState::closed;

  // Listening
  int backlog = 128;
  std::deque<std::uint64_t> accept_queue;
  net::AcceptHandler accept_handler;
  std::uint64_t parent = 0;  ///< listener of a not yet accepted connection

  // Connecting
  net::ConnectHandler connect_handler;
  int syn_sent_count = 0;
  Duration syn_rto = kInitialRto;
  TimePoint last_syn{};
  EventId syn_timer = 0;
  EventId user_timer = 0;
  std::error_code soft_error;

  // Sending
  std::uint32_t snd_una = 0;
  std::uint32_t snd_nxt = 0;
  std::deque<Segment> unacked;
  /// Write handlers, completed as the peer acknowledges the write's last byte (the
  /// simulated stack has no send buffer: a write is taken at once, and what waits is
  /// what queued() counts).
  std::deque<std::pair<std::uint32_t, net::WriteHandler>> write_waiters;
  EventId rto_timer = 0;
  Duration rto = kInitialRto;
  int retries = 0;
  bool fin_sent = false;
  std::size_t mss = 1460;

  // Receiving
  std::uint32_t rcv_nxt = 0;
  std::map<std::uint32_t, Segment> out_of_order;
  std::deque<std::uint8_t> rx;
  bool eof = false;
  std::error_code error;
  net::ReadHandler read_handler;
  bool read_scheduled = false;

  bool orphan = false;  ///< closed by the user; lives on until its FIN is acknowledged

  [[nodiscard]] PortClaim claim() const { return {family, local, v6only}; }
};

}  // namespace duet::sim
