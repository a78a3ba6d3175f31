#include "duet/posix/posix_stack.hpp"

#include <ifaddrs.h>
#include <sys/random.h>
#include <net/if.h>

#include <array>
#include <boost/asio.hpp>
#include <deque>

#include "duet/net/error.hpp"
#include "duet/net/resolve_literal.hpp"

namespace duet::posix {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using net::Address;
using net::Endpoint;
using net::Family;
using net::Result;

namespace {

// Kernel errors keep their errno value; Asio's own conditions get the nearest POSIX one.
std::error_code to_std(const boost::system::error_code& ec) {
  if (!ec) return {};
  if (ec == asio::error::operation_aborted) return net::errc(std::errc::operation_canceled);
  if (ec.category() == boost::system::system_category() ||
      ec.category() == boost::system::generic_category()) {
    return {ec.value(), std::generic_category()};
  }
  if (ec == asio::error::eof) return net::errc(std::errc::connection_reset);
  return net::errc(std::errc::io_error);
}

asio::ip::address to_asio(const Address& a) {
  if (a.is_v4()) return asio::ip::address_v4(a.v4_value());
  return asio::ip::address_v6(a.bytes(), a.scope_id());
}

Address from_asio(const asio::ip::address& a) {
  if (a.is_v4()) return Address::v4(a.to_v4().to_uint());
  auto v6 = a.to_v6();
  return Address::v6(v6.to_bytes(), static_cast<std::uint32_t>(v6.scope_id()));
}

template <typename Proto>
typename Proto::endpoint to_asio(const Endpoint& e) {
  return {to_asio(e.address), e.port};
}

template <typename AsioEndpoint>
Endpoint from_asio(const AsioEndpoint& e) {
  return {from_asio(e.address()), e.port()};
}

template <typename Proto>
Proto protocol(Family f) {
  return f == Family::v4 ? Proto::v4() : Proto::v6();
}

// ---------------------------------------------------------------------------------------
// Clock and timers

class PosixClock final : public net::Clock {
public:
  explicit PosixClock(asio::io_context& io) : io_(io), epoch_(std::chrono::steady_clock::now()) {}

  net::TimePoint now() const override {
    return net::TimePoint(
        std::chrono::duration_cast<net::Duration>(std::chrono::steady_clock::now() - epoch_));
  }

  std::unique_ptr<net::Timer> make_timer() override;

  void post(std::function<void()> fn) override { asio::post(io_, std::move(fn)); }

  std::chrono::system_clock::time_point wall_now() const override { return std::chrono::system_clock::now(); }

private:
  asio::io_context& io_;
  std::chrono::steady_clock::time_point epoch_;
};

class PosixTimer final : public net::Timer {
public:
  explicit PosixTimer(asio::io_context& io) : state_(std::make_shared<State>(io)) {}
  ~PosixTimer() override { cancel(); }

  void start(net::Duration delay, std::function<void()> handler) override {
    state_->handler = std::move(handler);
    const auto generation = ++state_->generation;
    state_->armed = true;
    state_->timer.expires_after(delay);
    state_->timer.async_wait(
        [weak = std::weak_ptr<State>(state_), generation](const boost::system::error_code& ec) {
          auto s = weak.lock();
          // A handler queued before cancel() still arrives with success: the generation
          // tells it apart from the current arming.
          if (!s || ec || !s->armed || s->generation != generation) return;
          s->armed = false;
          auto h = std::move(s->handler);
          h();
        });
  }

  void cancel() override {
    state_->armed = false;
    ++state_->generation;
    state_->handler = nullptr;
    state_->timer.cancel();
  }

  bool pending() const override { return state_->armed; }

private:
  struct State {
    explicit State(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::function<void()> handler;
    std::uint64_t generation = 0;
    bool armed = false;
  };
  std::shared_ptr<State> state_;
};

std::unique_ptr<net::Timer> PosixClock::make_timer() { return std::make_unique<PosixTimer>(io_); }

// ---------------------------------------------------------------------------------------
// Resolver

class PosixResolve final : public net::PendingOperation {
public:
  explicit PosixResolve(asio::io_context& io) : state_(std::make_shared<State>(io)) {}
  ~PosixResolve() override {
    state_->handler = nullptr;
    state_->resolver.cancel();
  }

  void start(const std::string& host, const std::string& service, const net::ResolveHints& hints,
             net::ResolveHandler handler) {
    state_->handler = std::move(handler);
    auto flags = udp::resolver::numeric_service;
    if (hints.passive) flags |= udp::resolver::passive;
    auto done = [weak = std::weak_ptr<State>(state_)](const boost::system::error_code& ec,
                                                      const auto& results) {
      auto s = weak.lock();
      if (!s || !s->handler || ec == asio::error::operation_aborted) return;
      auto h = std::move(s->handler);
      if (ec) {
        h(map_error(ec));
        return;
      }
      std::vector<Endpoint> out;
      for (const auto& entry : results) out.push_back(from_asio(entry.endpoint()));
      h(std::move(out));
    };
    // The socket type only chooses which entries glibc returns; addresses are the same.
    if (hints.family) {
      state_->resolver.async_resolve(protocol<udp>(*hints.family), host, service, flags, done);
    } else {
      state_->resolver.async_resolve(host, service, flags, done);
    }
  }

private:
  static std::error_code map_error(const boost::system::error_code& ec) {
    using net::ResolveError;
    if (ec == asio::error::host_not_found) return make_error_code(ResolveError::no_such_name);
    if (ec == asio::error::host_not_found_try_again) {
      return make_error_code(ResolveError::temporary_failure);
    }
    if (ec == asio::error::no_data) return make_error_code(ResolveError::no_data);
    if (ec == asio::error::service_not_found) return make_error_code(ResolveError::bad_service);
    if (ec == asio::error::address_family_not_supported) {
      return make_error_code(ResolveError::bad_hints);
    }
    return make_error_code(ResolveError::temporary_failure);
  }

  struct State {
    explicit State(asio::io_context& io) : resolver(io) {}
    udp::resolver resolver;
    net::ResolveHandler handler;
  };
  std::shared_ptr<State> state_;
};

// ---------------------------------------------------------------------------------------
// UDP

class PosixDatagramSocket final : public net::DatagramSocket {
public:
  PosixDatagramSocket(asio::io_context& io, Family family)
      : family_(family), state_(std::make_shared<State>(io)) {}
  ~PosixDatagramSocket() override { close(); }

  std::error_code open() {
    boost::system::error_code ec;
    state_->socket.open(protocol<udp>(family_), ec);
    if (!ec) state_->socket.non_blocking(true, ec);
    return to_std(ec);
  }

  Family family() const override { return family_; }

  std::error_code set_v6only(bool on) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    if (family_ == Family::v4) return net::errc(std::errc::no_protocol_option);
    boost::system::error_code ec;
    state_->socket.set_option(asio::ip::v6_only(on), ec);
    return to_std(ec);
  }

  std::error_code bind(const Endpoint& local) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    if (local.family() != family_) return net::errc(std::errc::address_family_not_supported);
    boost::system::error_code ec;
    state_->socket.bind(to_asio<udp>(local), ec);
    return to_std(ec);
  }

  std::error_code connect(const Endpoint& remote) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    boost::system::error_code ec;
    state_->socket.connect(to_asio<udp>(remote), ec);
    return to_std(ec);
  }

  Result<Endpoint> local_endpoint() const override {
    boost::system::error_code ec;
    auto ep = state_->socket.local_endpoint(ec);
    if (ec) return to_std(ec);
    return from_asio(ep);
  }

  std::error_code send_to(const Endpoint& remote, std::span<const std::uint8_t> data) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    boost::system::error_code ec;
    state_->socket.send_to(asio::buffer(data.data(), data.size()), to_asio<udp>(remote), 0, ec);
    return to_std(ec);
  }

  std::error_code send(std::span<const std::uint8_t> data) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    boost::system::error_code ec;
    state_->socket.send(asio::buffer(data.data(), data.size()), 0, ec);
    return to_std(ec);
  }

  void receive(net::ReceiveHandler handler) override {
    auto s = state_;
    if (!s->socket.is_open()) {
      asio::post(s->socket.get_executor(), [h = std::move(handler)] {
        h(net::errc(std::errc::bad_file_descriptor), Endpoint{}, {});
      });
      return;
    }
    s->handler = std::move(handler);
    s->socket.async_receive_from(
        asio::buffer(s->buffer), s->from,
        [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec, std::size_t n) {
          auto st = weak.lock();
          if (!st || !st->handler || ec == asio::error::operation_aborted) return;
          auto h = std::move(st->handler);
          if (ec) {
            h(to_std(ec), Endpoint{}, {});
            return;
          }
          h({}, from_asio(st->from), std::span<const std::uint8_t>(st->buffer.data(), n));
        });
  }

  void close() override {
    state_->handler = nullptr;
    boost::system::error_code ignored;
    state_->socket.close(ignored);
  }

private:
  struct State {
    explicit State(asio::io_context& io) : socket(io) {}
    udp::socket socket;
    net::ReceiveHandler handler;
    udp::endpoint from;
    std::array<std::uint8_t, 65536> buffer{};
  };
  Family family_;
  std::shared_ptr<State> state_;
};

// ---------------------------------------------------------------------------------------
// TCP

class PosixStreamSocket final : public net::StreamSocket {
public:
  PosixStreamSocket(asio::io_context& io, Family family)
      : family_(family), state_(std::make_shared<State>(io)) {}
  PosixStreamSocket(tcp::socket&& accepted, Family family)
      : family_(family), state_(std::make_shared<State>(std::move(accepted))) {}
  ~PosixStreamSocket() override { close(); }

  std::error_code open() {
    boost::system::error_code ec;
    state_->socket.open(protocol<tcp>(family_), ec);
    return to_std(ec);
  }

  Family family() const override { return family_; }

  std::error_code bind(const Endpoint& local) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    if (local.family() != family_) return net::errc(std::errc::address_family_not_supported);
    boost::system::error_code ec;
    state_->socket.bind(to_asio<tcp>(local), ec);
    return to_std(ec);
  }

  void connect(const Endpoint& remote, net::Duration timeout,
               net::ConnectHandler handler) override {
    auto s = state_;
    if (!s->socket.is_open()) {
      post_error(std::move(handler), std::errc::bad_file_descriptor);
      return;
    }
    s->connect_handler = std::move(handler);
    s->timed_out = false;
    s->timer.expires_after(timeout);
    s->timer.async_wait([weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec) {
      auto st = weak.lock();
      if (!st || ec || !st->connect_handler) return;
      st->timed_out = true;
      boost::system::error_code ignored;
      st->socket.cancel(ignored);
    });
    s->socket.async_connect(to_asio<tcp>(remote),
                            [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec) {
                              auto st = weak.lock();
                              if (!st || !st->connect_handler) return;
                              st->timer.cancel();
                              auto h = std::move(st->connect_handler);
                              if (st->timed_out) {
                                h(net::errc(std::errc::timed_out));
                              } else {
                                h(to_std(ec));
                              }
                            });
  }

  void read_some(net::ReadHandler handler) override {
    auto s = state_;
    if (!s->socket.is_open()) {
      asio::post(s->socket.get_executor(),
                 [h = std::move(handler)] { h(net::errc(std::errc::bad_file_descriptor), {}); });
      return;
    }
    s->read_handler = std::move(handler);
    s->socket.async_read_some(
        asio::buffer(s->read_buffer),
        [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec, std::size_t n) {
          auto st = weak.lock();
          if (!st || !st->read_handler) return;
          auto h = std::move(st->read_handler);
          if (ec == asio::error::eof) {
            h({}, {});
          } else if (ec) {
            h(to_std(ec), {});
          } else {
            h({}, std::span<const std::uint8_t>(st->read_buffer.data(), n));
          }
        });
  }

  void write(std::span<const std::uint8_t> data, net::WriteHandler handler) override {
    if (!state_->socket.is_open()) {
      post_error(std::move(handler), std::errc::bad_file_descriptor);
      return;
    }
    state_->writes.push_back(
        {std::vector<std::uint8_t>(data.begin(), data.end()), std::move(handler)});
    state_->queued += data.size();
    if (state_->writes.size() == 1) write_next(state_);
  }

  std::size_t queued() const override { return state_->queued; }

  std::error_code shutdown_send() override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    state_->shutdown_requested = true;
    if (state_->writes.empty()) return do_shutdown(*state_);
    return {};
  }

  void close() override {
    drop_handlers();
    boost::system::error_code ignored;
    state_->socket.close(ignored);
  }

  void reset() override {
    drop_handlers();
    boost::system::error_code ignored;
    if (state_->socket.is_open()) state_->socket.set_option(tcp::socket::linger(true, 0), ignored);
    state_->socket.close(ignored);
  }

  Result<Endpoint> local_endpoint() const override {
    boost::system::error_code ec;
    auto ep = state_->socket.local_endpoint(ec);
    if (ec) return to_std(ec);
    return from_asio(ep);
  }

  Result<Endpoint> remote_endpoint() const override {
    boost::system::error_code ec;
    auto ep = state_->socket.remote_endpoint(ec);
    if (ec) return to_std(ec);
    return from_asio(ep);
  }

private:
  struct Write {
    std::vector<std::uint8_t> data;
    net::WriteHandler handler;
  };
  struct State {
    explicit State(asio::io_context& io) : socket(io), timer(io) {}
    explicit State(tcp::socket&& s) : socket(std::move(s)), timer(socket.get_executor()) {}
    tcp::socket socket;
    asio::steady_timer timer;
    net::ConnectHandler connect_handler;
    net::ReadHandler read_handler;
    std::deque<Write> writes;
    std::size_t queued = 0;  ///< bytes in `writes`
    std::array<std::uint8_t, 65536> read_buffer{};
    bool timed_out = false;
    bool shutdown_requested = false;
  };

  template <typename Handler>
  void post_error(Handler handler, std::errc e) {
    asio::post(state_->socket.get_executor(), [h = std::move(handler), e] { h(net::errc(e)); });
  }

  static std::error_code do_shutdown(State& s) {
    boost::system::error_code ec;
    s.socket.shutdown(tcp::socket::shutdown_send, ec);
    return to_std(ec);
  }

  static void write_next(const std::shared_ptr<State>& s) {
    auto& front = s->writes.front();
    asio::async_write(
        s->socket, asio::buffer(front.data),
        [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec, std::size_t) {
          auto st = weak.lock();
          if (!st || st->writes.empty()) return;
          auto h = std::move(st->writes.front().handler);
          st->queued -= st->writes.front().data.size();
          st->writes.pop_front();
          if (!st->writes.empty() && !ec) {
            write_next(st);
          } else if (st->writes.empty() && st->shutdown_requested) {
            do_shutdown(*st);
          }
          if (h) h(to_std(ec));
        });
  }

  void drop_handlers() {
    state_->connect_handler = nullptr;
    state_->read_handler = nullptr;
    state_->writes.clear();
    state_->queued = 0;
    state_->timer.cancel();
  }

  Family family_;
  std::shared_ptr<State> state_;
};

class PosixListener final : public net::Listener {
public:
  PosixListener(asio::io_context& io, Family family)
      : io_(io), family_(family), state_(std::make_shared<State>(io)) {}
  ~PosixListener() override { close(); }

  std::error_code open(const Endpoint& local, const net::ListenOptions& options) {
    boost::system::error_code ec;
    auto& a = state_->acceptor;
    a.open(protocol<tcp>(family_), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && family_ == Family::v6 && options.v6only) {
      a.set_option(asio::ip::v6_only(*options.v6only), ec);
    }
    if (!ec) a.bind(to_asio<tcp>(local), ec);
    if (!ec) a.listen(options.backlog, ec);
    return to_std(ec);
  }

  void accept(net::AcceptHandler handler) override {
    auto s = state_;
    if (!s->acceptor.is_open()) {
      asio::post(
          io_, [h = std::move(handler)] { h(net::errc(std::errc::bad_file_descriptor), nullptr); });
      return;
    }
    s->handler = std::move(handler);
    s->acceptor.async_accept([weak = std::weak_ptr<State>(s), family = family_](
                                 const boost::system::error_code& ec, tcp::socket peer) {
      auto st = weak.lock();
      if (!st || !st->handler) return;
      auto h = std::move(st->handler);
      if (ec) {
        h(to_std(ec), nullptr);
        return;
      }
      h({}, std::make_unique<PosixStreamSocket>(std::move(peer), family));
    });
  }

  Result<Endpoint> local_endpoint() const override {
    boost::system::error_code ec;
    auto ep = state_->acceptor.local_endpoint(ec);
    if (ec) return to_std(ec);
    return from_asio(ep);
  }

  void close() override {
    state_->handler = nullptr;
    boost::system::error_code ignored;
    state_->acceptor.close(ignored);
  }

private:
  struct State {
    explicit State(asio::io_context& io) : acceptor(io) {}
    tcp::acceptor acceptor;
    net::AcceptHandler handler;
  };
  asio::io_context& io_;
  Family family_;
  std::shared_ptr<State> state_;
};

int mask_length(const sockaddr* mask) {
  if (mask == nullptr) return 0;
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
  if (mask->sa_family == AF_INET) {
    p = reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    n = 4;
  } else {
    p = reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    n = 16;
  }
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) bits += __builtin_popcount(p[i]);
  return bits;
}

}  // namespace

struct PosixStack::Impl {
  explicit Impl(asio::io_context& io) : io(io), clock(io) {}
  asio::io_context& io;
  PosixClock clock;
};

PosixStack::PosixStack(asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}
PosixStack::~PosixStack() = default;

net::Clock& PosixStack::clock() { return impl_->clock; }

std::unique_ptr<net::PendingOperation> PosixStack::resolve(const std::string& host,
                                                           const std::string& service,
                                                           const net::ResolveHints& hints,
                                                           net::ResolveHandler handler) {
  auto op = std::make_unique<PosixResolve>(impl_->io);
  if (auto literal = net::resolve_literal(host, service, hints)) {
    // Same answer as getaddrinfo, but without a trip through its thread.
    auto alive = std::make_shared<bool>(true);
    struct Literal final : net::PendingOperation {
      std::shared_ptr<bool> alive;
      ~Literal() override { *alive = false; }
    };
    auto handle = std::make_unique<Literal>();
    handle->alive = alive;
    asio::post(impl_->io, [alive, h = std::move(handler), r = std::move(*literal)]() mutable {
      if (*alive) h(std::move(r));
    });
    return handle;
  }
  op->start(host, service, hints, std::move(handler));
  return op;
}

Result<std::vector<net::InterfaceAddress>> PosixStack::interface_addresses() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::error_code(errno, std::generic_category());
  std::vector<net::InterfaceAddress> out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    net::InterfaceAddress ia;
    ia.interface = i->ifa_name;
    ia.up = (i->ifa_flags & IFF_UP) != 0;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      ia.prefix.address = Address::v4(ntohl(sin->sin_addr.s_addr));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      Address::Bytes b{};
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      ia.prefix.address = Address::v6(b, sin6->sin6_scope_id);
    } else {
      continue;
    }
    ia.prefix.length = static_cast<std::uint8_t>(mask_length(i->ifa_netmask));
    out.push_back(std::move(ia));
  }
  freeifaddrs(list);
  return out;
}

Result<std::unique_ptr<net::DatagramSocket>> PosixStack::open_datagram(Family family) {
  auto s = std::make_unique<PosixDatagramSocket>(impl_->io, family);
  if (auto ec = s->open()) return ec;
  return std::unique_ptr<net::DatagramSocket>(std::move(s));
}

Result<std::unique_ptr<net::StreamSocket>> PosixStack::open_stream(Family family) {
  auto s = std::make_unique<PosixStreamSocket>(impl_->io, family);
  if (auto ec = s->open()) return ec;
  return std::unique_ptr<net::StreamSocket>(std::move(s));
}

Result<std::unique_ptr<net::Listener>> PosixStack::listen(const Endpoint& local,
                                                          const net::ListenOptions& options) {
  auto l = std::make_unique<PosixListener>(impl_->io, local.family());
  if (auto ec = l->open(local, options)) return ec;
  return std::unique_ptr<net::Listener>(std::move(l));
}

}  // namespace duet::posix

namespace duet::posix {

std::uint64_t PosixStack::random() {
  std::uint64_t v = 0;
  // getrandom() on 8 bytes does not fail or block once the kernel's pool is ready.
  while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
  }
  return v;
}

}  // namespace duet::posix
