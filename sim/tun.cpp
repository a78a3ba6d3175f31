#include "duet/sim/tun.hpp"

#include <algorithm>

#include "duet/net/ip_header.hpp"
#include "duet/net/ping.hpp"

namespace duet::sim {

SimTun::SimTun(net::Clock& clock, std::string name, std::vector<net::Address> addresses)
    : clock_(clock), name_(std::move(name)), addresses_(std::move(addresses)) {}

SimTun::~SimTun() { *alive_ = false; }

void SimTun::start_reading(net::PacketHandler on_packet) { reader_ = std::move(on_packet); }

void SimTun::pause_reading(bool paused) {
  if (paused == paused_) return;
  paused_ = paused;
  if (paused) {
    ++counters_.pauses;
    return;
  }
  schedule_drain();
}

void SimTun::schedule_drain() {
  if (waiting_.empty() || draining_) return;
  draining_ = true;
  clock_.post([this, alive = alive_] {
    if (!*alive) return;
    draining_ = false;
    while (!paused_ && !waiting_.empty() && reader_) {
      const auto packet = std::move(waiting_.front());
      waiting_.pop_front();
      deliver(packet);
    }
  });
}

bool SimTun::inject(std::span<const std::uint8_t> packet) {
  if (!reader_) return false;
  if (paused_ || !waiting_.empty()) {
    if (waiting_.size() >= kQueueLength) {
      ++counters_.dropped;
      return false;
    }
    waiting_.emplace_back(packet.begin(), packet.end());
    if (!paused_) schedule_drain();  // the queue drains first, in order
    return true;
  }
  deliver(packet);
  return true;
}

void SimTun::deliver(std::span<const std::uint8_t> packet) {
  ++counters_.reads;
  ++counters_.packets_read;
  reader_(packet);
}

void SimTun::write(std::span<const std::uint8_t> packet) {
  ++counters_.writes;
  ++counters_.packets_written;
  written_.emplace_back(packet.begin(), packet.end());
  const auto h = net::parse_ip_header(packet);
  // ICMPv4 (protocol 1): count echo replies (type 0), answer echo requests (type 8) to us.
  if (!h || h->version != 4 || h->protocol != 1 || packet.size() < h->header_length + 8) return;
  const std::size_t icmp = h->header_length;
  if (packet[icmp] == 0) {
    ++echo_replies_[h->source];
  } else if (packet[icmp] == 8 && std::find(addresses_.begin(), addresses_.end(), h->destination) != addresses_.end()) {
    auto reply = net::ipv4_icmp_echo(0, h->destination, h->source,
                                     static_cast<std::uint16_t>((packet[icmp + 4] << 8) | packet[icmp + 5]),
                                     static_cast<std::uint16_t>((packet[icmp + 6] << 8) | packet[icmp + 7]));
    clock_.post([this, alive = alive_, reply = std::move(reply)] {
      if (*alive) inject(reply);
    });
  }
}

}  // namespace duet::sim
