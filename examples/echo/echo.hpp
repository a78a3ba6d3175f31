// A dual-stack UDP echo service written against duet's NetworkStack only: the same code
// runs on the kernel (PosixStack, see main.cpp) and in a simulated world (SimWorld, see
// echo_test.cpp). It is the shape of a program that wants to be tested for what IPv6
// failures do to it before its users find out.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "duet/net/network_stack.hpp"

namespace echo {

using namespace std::chrono_literals;

/// Binds every passive address of a port (0.0.0.0 and [::] side by side, the IPv6 one
/// IPv6-only) and sends every datagram back to where it came from.
class Server {
public:
  explicit Server(duet::net::NetworkStack& stack) : stack_(stack) {}
  /// `ready` gets the endpoints bound, or the error when none could be.
  void start(std::uint16_t port, std::function<void(duet::net::Result<std::vector<duet::net::Endpoint>>)> ready);
  [[nodiscard]] std::uint64_t echoed() const { return echoed_; }

private:
  void serve(duet::net::DatagramSocket& socket);

  duet::net::NetworkStack& stack_;
  std::unique_ptr<duet::net::PendingOperation> resolving_;
  std::vector<std::unique_ptr<duet::net::DatagramSocket>> sockets_;
  std::uint64_t echoed_ = 0;
};

/// What one question to the server came to.
struct Outcome {
  std::error_code error;                           ///< empty when a reply came
  std::optional<duet::net::Endpoint> answered_by;  ///< the address that replied
  std::string reply;
  duet::net::Duration elapsed{};   ///< from ask() to the reply (or to giving up)
  std::vector<std::string> steps;  ///< what was tried and what each try came to
};

/// Resolves the server's name and tries its addresses in the resolver's order, one at a
/// time: a try ends with the reply, an ICMP error reported on the connected socket (at
/// once), or `attempt_timeout` (a silently dropped path). (duet's own client races
/// addresses per RFC 8305 instead: duet::policy::Connector.)
class Client {
public:
  explicit Client(duet::net::NetworkStack& stack, duet::net::Duration attempt_timeout = 250ms)
      : stack_(stack), attempt_timeout_(attempt_timeout) {}
  void ask(const std::string& host, std::uint16_t port, std::string message, std::function<void(Outcome)> done);

private:
  void try_next();
  void finish(std::error_code error);

  duet::net::NetworkStack& stack_;
  duet::net::Duration attempt_timeout_;
  std::unique_ptr<duet::net::PendingOperation> resolving_;
  std::unique_ptr<duet::net::DatagramSocket> socket_;
  std::unique_ptr<duet::net::Timer> timer_;
  std::vector<duet::net::Endpoint> candidates_;
  std::size_t next_ = 0;
  std::string message_;
  duet::net::TimePoint started_{};
  std::error_code last_error_;
  Outcome outcome_;
  std::function<void(Outcome)> done_;
};

}  // namespace echo
