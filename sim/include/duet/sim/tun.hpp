// A simulated TUN device for a node in the simulator: packets the tunnel delivers are
// kept (and counted), echo requests to the device's own addresses are answered the way a
// host's kernel would answer them (through the tunnel again, on the next turn), and a
// test or scenario can hand it packets as if the host routed them into the device.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "duet/net/address.hpp"
#include "duet/net/clock.hpp"
#include "duet/net/tun.hpp"

namespace duet::sim {

class SimTun final : public net::Tun {
public:
  /// `addresses`: the device's own (ifconfig), the ones it answers pings to.
  SimTun(net::Clock& clock, std::string name, std::vector<net::Address> addresses = {});
  ~SimTun() override;

  [[nodiscard]] const std::string& name() const override { return name_; }
  void start_reading(net::PacketHandler on_packet) override;
  /// While paused, injected packets wait in the device's queue (kQueueLength packets, as a
  /// kernel TUN's default txqueuelen; more are dropped and counted), handed out in order
  /// once reading resumes.
  void pause_reading(bool paused) override;
  void write(std::span<const std::uint8_t> packet) override;
  [[nodiscard]] const net::TunCounters& counters() const override { return counters_; }

  static constexpr std::size_t kQueueLength = 500;
  /// A packet the host routes into the device: the reader (the tunnel) takes it now, or
  /// it waits while reading is paused. False when nobody reads yet, or the queue is full.
  bool inject(std::span<const std::uint8_t> packet);
  /// Packets waiting in the device's queue (while reading is paused).
  [[nodiscard]] std::size_t waiting() const { return waiting_.size(); }
  /// Every packet written to the device, in order.
  [[nodiscard]] const std::vector<std::vector<std::uint8_t>>& written() const { return written_; }
  /// Echo replies written to the device, by their source (a ping that came back).
  [[nodiscard]] const std::map<net::Address, int>& echo_replies() const { return echo_replies_; }
  [[nodiscard]] const std::vector<net::Address>& addresses() const { return addresses_; }

private:
  net::Clock& clock_;
  std::string name_;
  std::vector<net::Address> addresses_;
  void schedule_drain();
  /// One packet to the reader, counted as one read.
  void deliver(std::span<const std::uint8_t> packet);
  net::PacketHandler reader_;
  bool paused_ = false, draining_ = false;
  std::deque<std::vector<std::uint8_t>> waiting_;
  std::vector<std::vector<std::uint8_t>> written_;
  std::map<net::Address, int> echo_replies_;
  net::TunCounters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace duet::sim
