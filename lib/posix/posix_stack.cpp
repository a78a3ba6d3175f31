// PosixStack: the kernel's network behind the NetworkStack seam, one concern per file —
// clock.cpp (time and timers), resolver.cpp (getaddrinfo side by side, destination
// order), udp.cpp (batched datagrams, GSO/GRO), tcp.cpp (streams and listeners),
// interfaces.cpp (getifaddrs). This file ties them to one io_context.
#include "duet/posix/posix_stack.hpp"

#include <sys/random.h>

#include "asio_glue.hpp"

namespace duet::posix {

using namespace detail;

struct PosixStack::Impl {
  Impl(asio::io_context& io, StackOptions o) : io(io), clock(make_clock(io)), options(o) { loop->io = &io; }
  ~Impl() {
    const std::lock_guard lock(loop->mutex);
    loop->io = nullptr;
    loop->busy.reset();
  }
  asio::io_context& io;
  std::unique_ptr<net::Clock> clock;
  StackOptions options;
  std::shared_ptr<UdpCounters> udp = std::make_shared<UdpCounters>();
  std::shared_ptr<TcpCounters> tcp = std::make_shared<TcpCounters>();
  std::shared_ptr<LoopLink> loop = std::make_shared<LoopLink>();
};

PosixStack::PosixStack(asio::io_context& io, StackOptions options) : impl_(std::make_unique<Impl>(io, options)) {}
PosixStack::~PosixStack() = default;

const UdpCounters& PosixStack::udp_counters() const { return *impl_->udp; }
const TcpCounters& PosixStack::tcp_counters() const { return *impl_->tcp; }

net::Clock& PosixStack::clock() { return *impl_->clock; }

std::unique_ptr<net::PendingOperation> PosixStack::resolve(const std::string& host, const std::string& service,
                                                           const net::ResolveHints& hints,
                                                           net::ResolveHandler handler) {
  return detail::resolve(impl_->loop, host, service, hints, std::move(handler));
}

std::vector<net::Endpoint> PosixStack::sort_destinations(const std::string&, std::vector<net::Endpoint> destinations) {
  return detail::sort_destinations(std::move(destinations));
}

net::Result<std::vector<net::InterfaceAddress>> PosixStack::interface_addresses() {
  return detail::interface_addresses();
}

net::Result<std::unique_ptr<net::DatagramSocket>> PosixStack::open_datagram(net::Family family) {
  return detail::open_datagram(impl_->io, family, impl_->options, impl_->udp);
}

net::Result<std::unique_ptr<net::StreamSocket>> PosixStack::open_stream(net::Family family) {
  return detail::open_stream(impl_->io, family, impl_->tcp);
}

net::Result<std::unique_ptr<net::Listener>> PosixStack::listen(const net::Endpoint& local,
                                                               const net::ListenOptions& options) {
  return detail::listen(impl_->io, local, options, impl_->tcp);
}

std::uint64_t PosixStack::random() {
  std::uint64_t v = 0;
  // getrandom() on 8 bytes does not fail or block once the kernel's pool is ready.
  while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
  }
  return v;
}

void PosixStack::random_fill(std::span<std::uint8_t> out) {
  // Up to 256 bytes come whole from one call; longer spans (or a signal) may come in parts.
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n > 0) done += static_cast<std::size_t>(n);
  }
}

}  // namespace duet::posix
