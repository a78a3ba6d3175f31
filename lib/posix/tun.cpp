#include "duet/posix/tun.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <cstring>

namespace duet::posix {

struct Tun::Impl {
  Impl(boost::asio::io_context& io, int fd) : stream(io, fd) {}
  boost::asio::posix::stream_descriptor stream;
  std::array<std::uint8_t, 65536> buffer{};
  std::function<void(std::span<const std::uint8_t>)> on_packet;
};

Tun::Tun(std::unique_ptr<Impl> impl, std::string name) : impl_(std::move(impl)), name_(std::move(name)) {}
Tun::~Tun() = default;

net::Result<std::unique_ptr<Tun>> Tun::open(boost::asio::io_context& io, const std::string& name) {
  if (name.size() >= IFNAMSIZ) return std::make_error_code(std::errc::invalid_argument);
  const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::error_code(errno, std::generic_category());
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    const int e = errno;
    ::close(fd);
    return std::error_code(e, std::generic_category());
  }
  return std::unique_ptr<Tun>(new Tun(std::make_unique<Impl>(io, fd), ifr.ifr_name));
}

void Tun::start_reading(std::function<void(std::span<const std::uint8_t>)> on_packet) {
  impl_->on_packet = std::move(on_packet);
  impl_->stream.async_read_some(boost::asio::buffer(impl_->buffer),
                                [this](const boost::system::error_code& ec, std::size_t n) {
                                  if (ec == boost::asio::error::operation_aborted) return;
                                  if (!ec && n > 0) impl_->on_packet(std::span<const std::uint8_t>(impl_->buffer.data(), n));
                                  start_reading(std::move(impl_->on_packet));
                                });
}

void Tun::write(std::span<const std::uint8_t> packet) {
  (void)::write(impl_->stream.native_handle(), packet.data(), packet.size());
}

}  // namespace duet::posix
