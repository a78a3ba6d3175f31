// A Linux TUN device (/dev/net/tun, IFF_TUN | IFF_NO_PI) on the daemon's io_context:
// whole IP packets in and out. Addresses and MTU are set with iproute2 (`ip`), whose
// commands the daemon logs.
//
// With offloads (the default) the device is opened with IFF_VNET_HDR and TUNSETOFFLOAD:
// the kernel hands out TCP/UDP super-packets of up to 64 KiB with their checksums left to
// us, which are cut here into the packets a peer expects (posix/offload.hpp); and the
// packets written in one turn of the event loop are merged, per TCP flow, into
// super-packets again. One system call then moves tens of packets each way. A kernel
// that refuses an offload gets the next best thing (TSO without USO, or plain packets);
// `offload_state()` says what is in use. The engine never sees any of it: it reads and
// writes ordinary IP packets through the net::Tun seam.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "duet/net/result.hpp"
#include "duet/net/tun.hpp"

namespace boost::asio {
class io_context;
}

namespace duet::posix {

struct TunOffloads {
  bool vnet_header = false;  ///< IFF_VNET_HDR: packets carry a virtio_net_hdr
  bool checksum = false;     ///< TUN_F_CSUM: checksums are finished here
  bool tso = false;          ///< TUN_F_TSO4|6: TCP super-packets read, and written (merged)
  bool uso = false;          ///< TUN_F_USO4|6: UDP super-packets read
  std::string why_not;       ///< why offloads are off or partial, when they are
  /// "tso, uso, checksum" / "off (…)": for the log and `duetctl status`.
  [[nodiscard]] std::string describe() const;
};

class LinuxTun final : public net::Tun {
public:
  /// Creates (or attaches to) the interface `name`; EPERM without CAP_NET_ADMIN. With
  /// `offload` the device asks the kernel for every offload it knows and keeps those granted.
  static net::Result<std::unique_ptr<LinuxTun>> open(boost::asio::io_context& io, const std::string& name,
                                                     bool offload = true);
  ~LinuxTun() override;
  LinuxTun(const LinuxTun&) = delete;
  LinuxTun& operator=(const LinuxTun&) = delete;

  [[nodiscard]] const std::string& name() const override { return name_; }
  [[nodiscard]] const TunOffloads& offload_state() const;
  [[nodiscard]] std::string offloads() const override;
  [[nodiscard]] const net::TunCounters& counters() const override;
  /// Calls `on_packet` for every packet the kernel routes into the device.
  void start_reading(net::PacketHandler on_packet) override;
  /// Each read's packets together: a super-packet's segments are cut side by side and
  /// handed over in one call.
  void start_reading_batches(net::PacketBatchHandler on_batch) override;
  void pause_reading(bool paused) override;
  /// Called once if the device stops working (EBADFD: the interface was deleted, `ip
  /// link del`); reading stops then.
  void on_gone(std::function<void(std::error_code)> handler);
  /// Hands one packet to the kernel: at once without offloads, else at the end of this
  /// turn of the event loop, merged with the other segments of its TCP flow (dropped,
  /// like a full queue, if the kernel would block).
  void write(std::span<const std::uint8_t> packet) override;

private:
  struct Impl;
  explicit LinuxTun(std::shared_ptr<Impl> impl, std::string name);
  static void arm(const std::shared_ptr<Impl>& impl);
  std::shared_ptr<Impl> impl_;
  std::string name_;
};

}  // namespace duet::posix
