// A Linux TUN device (/dev/net/tun, IFF_TUN | IFF_NO_PI) on the daemon's io_context:
// whole IP packets in and out. Addresses and MTU are set with iproute2 (`ip`), whose
// commands the daemon logs.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "duet/net/result.hpp"

namespace boost::asio {
class io_context;
}

namespace duet::posix {

class Tun {
public:
  /// Creates (or attaches to) the interface `name`; EPERM without CAP_NET_ADMIN.
  static net::Result<std::unique_ptr<Tun>> open(boost::asio::io_context& io, const std::string& name);
  ~Tun();
  Tun(const Tun&) = delete;
  Tun& operator=(const Tun&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }
  /// Calls `on_packet` for every packet the kernel routes into the device.
  void start_reading(std::function<void(std::span<const std::uint8_t>)> on_packet);
  /// Hands one packet to the kernel (dropped, like a full queue, if it would block).
  void write(std::span<const std::uint8_t> packet);

private:
  struct Impl;
  explicit Tun(std::unique_ptr<Impl> impl, std::string name);
  std::unique_ptr<Impl> impl_;
  std::string name_;
};

}  // namespace duet::posix
