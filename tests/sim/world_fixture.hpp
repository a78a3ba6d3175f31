// A dual-stack three-host world for simulator tests:
//
//   client eth0 ── eth0 router eth1 ── eth0 server
//   198.18.1.2      198.18.1.1  198.18.2.1     198.18.2.2
//   fd00:1::2       fd00:1::1   fd00:2::1      fd00:2::2
#pragma once

#include <gtest/gtest.h>

#include <optional>

#include "../support/driver.hpp"

namespace duet::test {

/// `link` for both links, or `server_link` for the router's link to the server.
inline void build_three_hosts(sim::SimWorld& w, sim::LinkProperties link = {},
                              std::optional<sim::LinkProperties> server_link = std::nullopt) {
  sim::HostSettings router;
  router.forwarding = true;
  w.add_host("client");
  w.add_host("router", router);
  w.add_host("server");
  w.connect("client", "eth0", "router", "eth0", link);
  w.connect("router", "eth1", "server", "eth0", server_link.value_or(link));
  w.add_address("client", "eth0", "198.18.1.2/24");
  w.add_address("client", "eth0", "fd00:1::2/64");
  w.add_address("router", "eth0", "198.18.1.1/24");
  w.add_address("router", "eth0", "fd00:1::1/64");
  w.add_address("router", "eth1", "198.18.2.1/24");
  w.add_address("router", "eth1", "fd00:2::1/64");
  w.add_address("server", "eth0", "198.18.2.2/24");
  w.add_address("server", "eth0", "fd00:2::2/64");
  for (const char* h : {"client", "server"}) {
    w.add_route(h, "default", sim::RouteVerdict::forward, "eth0");
    w.add_route(h, "default6", sim::RouteVerdict::forward, "eth0");
  }
}

inline net::Endpoint ep(const char* text) { return *net::Endpoint::parse(text); }

/// A UDP socket on `host` bound to `local` that echoes every datagram back.
class UdpEcho {
public:
  UdpEcho(sim::SimWorld& w, const std::string& host, const net::Endpoint& local) {
    socket_ = std::move(*w.stack(host).open_datagram(local.family()));
    if (local.family() == net::Family::v6) {
      EXPECT_FALSE(socket_->set_v6only(false));
    }
    EXPECT_FALSE(socket_->bind(local));
    arm();
  }
  int received = 0;

private:
  void arm() {
    socket_->receive([this](std::error_code ec, const net::Endpoint& from, std::span<const std::uint8_t> data) {
      if (!ec) {
        ++received;
        (void)socket_->send_to(from, data);
      }
      arm();
    });
  }
  std::unique_ptr<net::DatagramSocket> socket_;
};

/// Collects datagrams arriving on a socket, in order, with their arrival times.
class UdpSink {
public:
  UdpSink(sim::SimWorld& w, std::unique_ptr<net::DatagramSocket> s) : w_(w), socket_(std::move(s)) { arm(); }
  net::DatagramSocket& socket() { return *socket_; }
  std::vector<std::vector<std::uint8_t>> datagrams;
  std::vector<net::TimePoint> times;
  std::vector<std::error_code> errors;

private:
  void arm() {
    socket_->receive([this](std::error_code ec, const net::Endpoint&, std::span<const std::uint8_t> d) {
      if (ec) {
        errors.push_back(ec);
      } else {
        datagrams.emplace_back(d.begin(), d.end());
        times.push_back(w_.now());
      }
      arm();
    });
  }
  sim::SimWorld& w_;
  std::unique_ptr<net::DatagramSocket> socket_;
};

}  // namespace duet::test
