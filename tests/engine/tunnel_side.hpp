// Shared by the tunnel tests: an IPv4/UDP packet to route, and one side of a tunnel (a
// Device with its TUN recorded, and the engine's server or client over it) on a simulated
// host.
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "duet/config/loader.hpp"
#include "duet/sim/world.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/server.hpp"
#include "duet/tunnel/device.hpp"

namespace duet::test {

/// A stranger beside the router of build_three_hosts(): host `name` on the router's eth2
/// (198.18.9.1/24) with addresses 198.18.9.2 onwards, `addresses` of them, routed through
/// the router: an attacker flooding the server, or a too-eager handshaker.
inline void add_stranger(sim::SimWorld& w, const std::string& name, int addresses) {
  w.add_host(name);
  w.connect(name, "eth0", "router", "eth2");
  w.add_address("router", "eth2", "198.18.9.1/24");
  for (int i = 2; i < 2 + addresses; ++i) w.add_address(name, "eth0", "198.18.9." + std::to_string(i) + "/24");
  w.add_route(name, "default", sim::RouteVerdict::forward, "eth0");
}

inline tunnel::Bytes ipv4_udp(const char* src, const char* dst, std::uint8_t tag) {
  tunnel::Bytes p(28, 0);
  p[0] = 0x45;
  p[3] = 28;
  p[8] = 64;
  p[9] = 17;
  const auto s = *net::Address::parse(src), d = *net::Address::parse(dst);
  std::memcpy(&p[12], s.bytes().data(), 4);
  std::memcpy(&p[16], d.bytes().data(), 4);
  p[27] = tag;
  return p;
}

struct Side {
  Side(sim::SimWorld& w, const std::string& host, const std::string& cfg_text, tunnel::Identity me,
       std::vector<tunnel::PeerConfig> peers, bool client_side,
       tunnel::Device::RandomSource random = tunnel::random_bytes, tunnel::DeviceLimits limits = {})
      : loaded(config::load_text(cfg_text, host + ".conf")),
        device(me, std::move(peers), w.stack(host).clock(),
               [this](std::span<const std::uint8_t> p) { tun.emplace_back(p.begin(), p.end()); }, std::move(random),
               limits),
        sessions(device, client_side ? std::optional<std::size_t>(0) : std::nullopt),
        sockets(w.stack(host)) {
    EXPECT_TRUE(loaded.ok());
    if (!loaded.config.listens.empty()) {
      server = std::make_unique<transport::Server>(w.stack(host), loaded.config, sessions, nullptr);
      server->start([](bool) {});
    }
    if (client_side) {
      client = std::make_unique<transport::Client>(w.stack(host), sockets, loaded.config, sessions, nullptr);
      client->start();
    }
  }
  config::LoadResult loaded;
  std::vector<tunnel::Bytes> tun;
  tunnel::Device device;
  tunnel::DeviceSessions sessions;
  transport::StackSockets sockets;
  std::unique_ptr<transport::Server> server;
  std::unique_ptr<transport::Client> client;
};

}  // namespace duet::test
