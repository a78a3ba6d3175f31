// Test support: drive one host's NetworkStack on either stack with the same code, so a
// conformance case is written once and run on the kernel and in the simulator.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "duet/net/error.hpp"
#include "duet/net/network_stack.hpp"
#include "duet/posix/posix_stack.hpp"
#include "duet/sim/world.hpp"

namespace duet::test {

using namespace std::chrono_literals;
using net::Duration;

class Driver {
public:
  virtual ~Driver() = default;
  virtual net::NetworkStack& stack() = 0;
  /// Runs the event loop until `done()` or `limit` has passed; returns done().
  virtual bool run_until(const std::function<bool()>& done, Duration limit) = 0;
  void run_for(Duration d) {
    run_until([] { return false; }, d);
  }
  [[nodiscard]] Duration now() { return stack().clock().now().time_since_epoch(); }
};

/// One host of a simulated world (the world is owned elsewhere).
class SimDriver final : public Driver {
public:
  SimDriver(sim::SimWorld& world, std::string host) : world_(world), host_(std::move(host)) {}
  net::NetworkStack& stack() override { return world_.stack(host_); }
  bool run_until(const std::function<bool()>& done, Duration limit) override { return world_.run_until(done, limit); }

private:
  sim::SimWorld& world_;
  std::string host_;
};

/// The kernel, in whatever network namespace the thread is in when the driver is made.
class PosixDriver final : public Driver {
public:
  explicit PosixDriver(posix::StackOptions options = {}) : stack_(io_, options) {}
  net::NetworkStack& stack() override { return stack_; }
  posix::PosixStack& posix_stack() { return stack_; }
  bool run_until(const std::function<bool()>& done, Duration limit) override {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      const auto left = end - std::chrono::steady_clock::now();
      if (left <= Duration{0}) return done();
      io_.restart();
      io_.run_one_for(std::min<std::chrono::steady_clock::duration>(left, 20ms));
    }
    return true;
  }

private:
  boost::asio::io_context io_;
  posix::PosixStack stack_;
};

/// What a probe saw, and when (elapsed time on the stack's clock).
struct Outcome {
  std::error_code error;
  Duration elapsed{0};
  bool completed = false;  ///< false: nothing happened before the probe gave up
  [[nodiscard]] std::string errno_name() const { return completed ? net::error_name(error) : "silence"; }
};

/// TCP connect with a caller timeout.
inline Outcome tcp_connect(Driver& d, const net::Endpoint& to, Duration timeout) {
  Outcome o;
  auto s = d.stack().open_stream(to.family());
  if (!s) return Outcome{s.error(), {}, true};
  const auto start = d.now();
  (*s)->connect(to, timeout, [&](std::error_code ec) {
    o.error = ec;
    o.completed = true;
  });
  d.run_until([&] { return o.completed; }, timeout + 2s);
  o.elapsed = d.now() - start;
  return o;
}

/// Connected UDP: send one datagram and wait for a reply or an error.
struct UdpProbe {
  std::error_code connect_error;
  std::error_code send_error;
  Outcome receive;
  std::error_code second_send_error;
};

inline UdpProbe udp_probe(Driver& d, const net::Endpoint& to, Duration wait) {
  UdpProbe p;
  auto s = d.stack().open_datagram(to.family());
  if (!s) {
    p.connect_error = s.error();
    return p;
  }
  p.connect_error = (*s)->connect(to);
  if (p.connect_error) return p;
  const std::uint8_t x[] = {'x'};
  const auto start = d.now();
  p.send_error = (*s)->send(x);
  (*s)->receive([&](std::error_code ec, const net::Endpoint&, std::span<const std::uint8_t>) {
    p.receive.error = ec;
    p.receive.completed = true;
  });
  d.run_until([&] { return p.receive.completed; }, wait);
  p.receive.elapsed = d.now() - start;
  p.second_send_error = (*s)->send(x);
  return p;
}

}  // namespace duet::test
