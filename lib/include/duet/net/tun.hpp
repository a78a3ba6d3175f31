// The other seam beside NetworkStack: where the tunnel's inner IP packets come from and go
// to. LinuxTun (posix/linux_tun.hpp) is a kernel TUN device with its offloads; SimTun
// (sim/tun.hpp) is a simulated one. Same rules as the stack: callbacks on the one event
// loop, no handler after destruction.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace duet::net {

/// Called with one IP packet, valid only during the call.
using PacketHandler = std::function<void(std::span<const std::uint8_t> packet)>;
/// Called with the IP packets of one read (a super-packet cut into its segments, or a
/// single packet), valid only during the call.
using PacketBatchHandler = std::function<void(std::span<const std::span<const std::uint8_t>> packets)>;

/// What a TUN device did, for the status and the benchmark (a simulated one counts
/// packets only).
struct TunCounters {
  std::uint64_t reads = 0;            ///< read system calls
  std::uint64_t packets_read = 0;     ///< packets read, after cutting offloaded super-packets
  std::uint64_t writes = 0;           ///< write system calls
  std::uint64_t packets_written = 0;  ///< packets written, before merging
  std::uint64_t dropped = 0;          ///< malformed super-packets, full queue on write
  std::uint64_t pauses = 0;           ///< times reading was paused for backpressure
};

/// A TUN device: IP packets between the system and the tunnel (the kernel's through
/// posix::LinuxTun, a simulated one in the simulator).
class Tun {
public:
  virtual ~Tun() = default;
  /// The interface's name ("duet0").
  [[nodiscard]] virtual const std::string& name() const = 0;
  /// Calls `on_packet` for every IP packet the system routes into the device; `packet`
  /// is valid only during the call. One reader.
  virtual void start_reading(PacketHandler on_packet) = 0;
  /// start_reading() that hands over each read's packets together, so that the tunnel
  /// takes a turn's packets as one batch (one lookup and one call per run of packets to
  /// one peer, not one per packet). By default each packet is a batch of one.
  virtual void start_reading_batches(PacketBatchHandler on_batch) {
    start_reading([h = std::move(on_batch)](std::span<const std::uint8_t> packet) {
      const std::span<const std::uint8_t> one[1] = {packet};
      h(one);
    });
  }
  /// Stops (true) or resumes (false) handing out packets, for backpressure: what the
  /// system routes into the device meanwhile waits in the device's own queue (the kernel
  /// holds local senders back while their packets wait there, and drops past its queue
  /// length). The rest of a read already begun (one super-packet) may still come. By
  /// default the device cannot pause and keeps reading.
  virtual void pause_reading(bool paused) { (void)paused; }
  /// Hands one IP packet to the system (a device may hold it until the end of this turn
  /// of the loop to write several together).
  virtual void write(std::span<const std::uint8_t> packet) = 0;
  /// Which offloads are in use, in words ("off" when none).
  [[nodiscard]] virtual std::string offloads() const { return "off"; }
  /// What the device did so far.
  [[nodiscard]] virtual const TunCounters& counters() const = 0;
};

}  // namespace duet::net
