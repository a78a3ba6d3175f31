// ProbeSession: the smallest session that lets the engine be exercised end to end until
// the WireGuard-compatible data channel exists. Text messages: "HELLO id" is answered
// "WELCOME id"; "PING n" is answered "PONG n"; "CHECK id" (a path check: the client's
// standby) is answered "CHECKED id" and keeps no state; "DATA n" is counted. Anything
// else is counted as garbage and ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "duet/transport/session.hpp"

namespace duet::sim {

/// What one instance's probe sessions saw, for expectations.
struct ProbeStats {
  std::uint64_t hellos_answered = 0;
  std::uint64_t data_received = 0;
  std::uint64_t garbage = 0;
};

class ProbeSession final : public transport::Session {
public:
  ProbeSession(ProbeStats& stats, std::uint64_t id) : stats_(stats), id_(id) {}
  std::vector<std::uint8_t> hello() override;
  Reply receive(std::span<const std::uint8_t> message) override;
  std::vector<std::uint8_t> keepalive() override;
  std::vector<std::uint8_t> path_check() override;
  /// "DATA n"
  static std::vector<std::uint8_t> data(std::uint64_t n);

private:
  ProbeStats& stats_;
  std::uint64_t id_;
  std::uint64_t pings_ = 0;
};

class ProbeSessionFactory final : public transport::SessionFactory {
public:
  explicit ProbeSessionFactory(std::uint64_t id_base) : next_(id_base) {}
  std::unique_ptr<transport::Session> create(const net::Endpoint&, config::Transport) override {
    return std::make_unique<ProbeSession>(stats, next_++);
  }
  ProbeStats stats;

private:
  std::uint64_t next_;
};

}  // namespace duet::sim
