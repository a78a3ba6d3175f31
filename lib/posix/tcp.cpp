// TCP streams and listeners on the kernel. A stream gathers what was written in a turn
// into one write system call.
#include <array>
#include <deque>

#include "asio_glue.hpp"

namespace duet::posix::detail {

namespace {

class PosixStreamSocket final : public net::StreamSocket {
public:
  PosixStreamSocket(asio::io_context& io, Family family) : family_(family), state_(std::make_shared<State>(io)) {}
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

  void connect(const Endpoint& remote, net::Duration timeout, net::ConnectHandler handler) override {
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
    s->socket.async_read_some(asio::buffer(s->read_buffer),
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
    state_->writes.push_back({std::vector<std::uint8_t>(data.begin(), data.end()), std::move(handler)});
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

  /// Writes everything queued so far in one gathered write (up to 64 messages): a tunnel
  /// queues many small framed messages per turn, and one system call should take them.
  static void write_next(const std::shared_ptr<State>& s) {
    constexpr std::size_t kGather = 64;
    std::vector<asio::const_buffer> buffers;
    const std::size_t n = std::min(s->writes.size(), kGather);
    buffers.reserve(n);
    for (std::size_t i = 0; i < n; ++i) buffers.push_back(asio::buffer(s->writes[i].data));
    asio::async_write(s->socket, buffers,
                      [weak = std::weak_ptr<State>(s), n](const boost::system::error_code& ec, std::size_t) {
                        auto st = weak.lock();
                        if (!st || st->writes.size() < n) return;  // dropped by close() or reset()
                        std::vector<net::WriteHandler> done;
                        done.reserve(n);
                        for (std::size_t i = 0; i < n; ++i) {
                          done.push_back(std::move(st->writes.front().handler));
                          st->queued -= st->writes.front().data.size();
                          st->writes.pop_front();
                        }
                        if (!st->writes.empty() && !ec) {
                          write_next(st);
                        } else if (st->writes.empty() && st->shutdown_requested) {
                          do_shutdown(*st);
                        }
                        for (auto& h : done) {
                          if (h) h(to_std(ec));
                        }
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
  PosixListener(asio::io_context& io, Family family) : io_(io), family_(family), state_(std::make_shared<State>(io)) {}
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
      asio::post(io_, [h = std::move(handler)] { h(net::errc(std::errc::bad_file_descriptor), nullptr); });
      return;
    }
    s->handler = std::move(handler);
    s->acceptor.async_accept(
        [weak = std::weak_ptr<State>(s), family = family_](const boost::system::error_code& ec, tcp::socket peer) {
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

}  // namespace

Result<std::unique_ptr<net::StreamSocket>> open_stream(asio::io_context& io, Family family) {
  auto s = std::make_unique<PosixStreamSocket>(io, family);
  if (auto ec = s->open()) return ec;
  return std::unique_ptr<net::StreamSocket>(std::move(s));
}

Result<std::unique_ptr<net::Listener>> listen(asio::io_context& io, const Endpoint& local,
                                              const net::ListenOptions& options) {
  auto l = std::make_unique<PosixListener>(io, local.family());
  if (auto ec = l->open(local, options)) return ec;
  return std::unique_ptr<net::Listener>(std::move(l));
}

}  // namespace duet::posix::detail
