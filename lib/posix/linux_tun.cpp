#include "duet/posix/linux_tun.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "asio_glue.hpp"
#include "duet/posix/offload.hpp"

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

namespace duet::posix {

namespace {
constexpr std::size_t kMaxPacket = 65535;
/// Super-packets read per wake-up before the loop goes on with other work.
constexpr int kReadsPerWakeup = 16;
/// Packets merged in one turn before they are written anyway.
constexpr std::size_t kMaxPendingWrites = 512;
constexpr std::size_t kMaxPendingBytes = 1 << 20;
}  // namespace

std::string TunOffloads::describe() const {
  if (!vnet_header) return "off" + (why_not.empty() ? std::string() : " (" + why_not + ")");
  std::string s;
  auto add = [&s](bool on, const char* what) {
    if (on) s += (s.empty() ? "" : ", ") + std::string(what);
  };
  add(tso, "tso");
  add(uso, "uso");
  add(checksum, "checksum");
  if (s.empty()) s = "vnet header only";
  if (!why_not.empty()) s += " (" + why_not + ")";
  return s;
}

struct LinuxTun::Impl {
  Impl(boost::asio::io_context& io, int fd) : stream(io, fd) {}
  boost::asio::posix::stream_descriptor stream;
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(offload::VnetHeader::kSize + kMaxPacket);
  std::function<void(std::span<const std::uint8_t>)> on_packet;
  net::PacketBatchHandler on_batch;  ///< instead of on_packet (start_reading_batches)
  offload::SegmentBatch batch;       ///< one read's packets
  TunOffloads offloads;
  net::TunCounters counters;
  offload::Coalescer coalescer;
  bool flush_posted = false;
  bool paused = false, armed = false;
  // The recurring operations' memory (see HandlerMemory): nothing allocated per read or write.
  std::shared_ptr<detail::HandlerMemory> read_memory = std::make_shared<detail::HandlerMemory>(),
                                         flush_memory = std::make_shared<detail::HandlerMemory>();
  std::function<void(std::error_code)> on_gone;

  int fd() { return stream.native_handle(); }

  /// Reads what is there; an error other than "nothing more" (EBADFD once the interface
  /// was deleted) when the device is gone.
  std::error_code read_ready() {
    for (int i = 0; i < kReadsPerWakeup && !paused; ++i) {
      const ssize_t n = ::read(fd(), buffer.data(), buffer.size());
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return {errno, std::generic_category()};
      if (n <= 0) return {};  // drained
      ++counters.reads;
      std::span<std::uint8_t> packet(buffer.data(), static_cast<std::size_t>(n));
      batch.packets.clear();
      if (!offloads.vnet_header) {
        batch.packets.push_back(packet);
      } else if (packet.size() >= offload::VnetHeader::kSize) {
        const auto h = offload::VnetHeader::parse(packet.first<offload::VnetHeader::kSize>());
        if (!offload::segment_into(h, packet.subspan(offload::VnetHeader::kSize), batch)) ++counters.dropped;
      }
      hand_over();
    }
    return {};
  }

  /// The read's packets to the reader: all at once, or one by one.
  void hand_over() {
    counters.packets_read += batch.packets.size();
    if (batch.packets.empty()) return;
    if (on_batch) {
      on_batch(batch.packets);
      return;
    }
    for (const auto p : batch.packets) on_packet(p);
  }

  /// One packet to the kernel behind its virtio header.
  void write_with_header(const offload::VnetHeader& h, std::span<const std::uint8_t> p) {
    std::uint8_t header[offload::VnetHeader::kSize];
    h.write(std::span<std::uint8_t, offload::VnetHeader::kSize>(header));
    iovec iov[2] = {{header, sizeof header}, {const_cast<std::uint8_t*>(p.data()), p.size()}};
    ++counters.writes;
    if (::writev(fd(), iov, 2) < 0) ++counters.dropped;
  }

  void flush() {
    flush_posted = false;
    coalescer.flush([this](const offload::VnetHeader& h, std::span<const std::uint8_t> p) { write_with_header(h, p); });
  }
};

LinuxTun::LinuxTun(std::shared_ptr<Impl> impl, std::string name) : impl_(std::move(impl)), name_(std::move(name)) {}
LinuxTun::~LinuxTun() = default;

const TunOffloads& LinuxTun::offload_state() const { return impl_->offloads; }
std::string LinuxTun::offloads() const { return impl_->offloads.describe(); }
const net::TunCounters& LinuxTun::counters() const { return impl_->counters; }

net::Result<std::unique_ptr<LinuxTun>> LinuxTun::open(boost::asio::io_context& io, const std::string& name,
                                                      bool offload) {
  if (name.size() >= IFNAMSIZ) return std::make_error_code(std::errc::invalid_argument);
  const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::error_code(errno, std::generic_category());
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  TunOffloads got;
  int rc = ::ioctl(fd, TUNSETIFF, &ifr);
  if (rc != 0 && offload && errno == EINVAL) {
    // A kernel (or an existing persistent device) without virtio headers: plain packets.
    got.why_not = "IFF_VNET_HDR refused";
    offload = false;
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    rc = ::ioctl(fd, TUNSETIFF, &ifr);
  }
  if (rc != 0) {
    const int e = errno;
    ::close(fd);
    return std::error_code(e, std::generic_category());
  }
  if (!offload) {
    if (got.why_not.empty()) got.why_not = "turned off by 'offload'";
  } else {
    got.vnet_header = true;
    // The most first; a kernel older than 6.2 knows no USO and refuses the whole set.
    const unsigned tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (::ioctl(fd, TUNSETOFFLOAD, tso | TUN_F_USO4 | TUN_F_USO6) == 0) {
      got.checksum = got.tso = got.uso = true;
    } else if (::ioctl(fd, TUNSETOFFLOAD, tso) == 0) {
      got.checksum = got.tso = true;
      got.why_not = "the kernel has no USO";
    } else if (::ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM) == 0) {
      got.checksum = true;
      got.why_not = std::string("TSO refused: ") + std::strerror(errno);
    } else {
      got.why_not = std::string("TUNSETOFFLOAD refused: ") + std::strerror(errno);
    }
  }
  auto impl = std::make_shared<Impl>(io, fd);
  impl->offloads = got;
  return std::unique_ptr<LinuxTun>(new LinuxTun(std::move(impl), ifr.ifr_name));
}

void LinuxTun::start_reading(net::PacketHandler on_packet) {
  impl_->on_packet = std::move(on_packet);
  impl_->on_batch = nullptr;
  arm(impl_);
}

void LinuxTun::start_reading_batches(net::PacketBatchHandler on_batch) {
  impl_->on_batch = std::move(on_batch);
  impl_->on_packet = nullptr;
  arm(impl_);
}

void LinuxTun::arm(const std::shared_ptr<Impl>& impl) {
  if (impl->armed || impl->paused) return;
  impl->armed = true;
  impl->stream.async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      detail::with_memory(impl->read_memory, [weak = std::weak_ptr<Impl>(impl)](const boost::system::error_code& ec) {
        auto i = weak.lock();
        if (!i) return;
        i->armed = false;
        if (ec == boost::asio::error::operation_aborted) return;
        if (const auto gone = i->read_ready()) {
          if (i->on_gone) i->on_gone(gone);  // reading stops
          return;
        }
        arm(i);
      }));
}

void LinuxTun::pause_reading(bool paused) {
  if (paused == impl_->paused) return;
  impl_->paused = paused;
  if (paused) {
    ++impl_->counters.pauses;
  } else if (impl_->on_packet || impl_->on_batch) {
    arm(impl_);
  }
}

void LinuxTun::on_gone(std::function<void(std::error_code)> handler) { impl_->on_gone = std::move(handler); }

void LinuxTun::write(std::span<const std::uint8_t> packet) {
  Impl& i = *impl_;
  ++i.counters.packets_written;
  if (!i.offloads.vnet_header) {
    ++i.counters.writes;
    if (::write(i.fd(), packet.data(), packet.size()) < 0) ++i.counters.dropped;
    return;
  }
  if (!i.offloads.tso) {  // a header is needed, but nothing is merged
    i.write_with_header(offload::VnetHeader{}, packet);
    return;
  }
  i.coalescer.add(packet);
  if (i.coalescer.pending() >= kMaxPendingWrites || i.coalescer.pending_bytes() >= kMaxPendingBytes) {
    i.flush();
  } else if (!i.flush_posted) {
    i.flush_posted = true;
    detail::post_with_memory(i.stream, i.flush_memory, [weak = std::weak_ptr<Impl>(impl_)] {
      if (auto impl = weak.lock(); impl && impl->flush_posted) impl->flush();
    });
  }
}

}  // namespace duet::posix
