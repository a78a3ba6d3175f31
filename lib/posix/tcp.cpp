// TCP streams and listeners on the kernel. A stream appends what is written to one
// buffer while the previous one is in flight, and writes it whole when that completes:
// a turn's framed messages go in one system call, and the two buffers (and the two lists
// of handlers) are reused, so a steady stream allocates nothing per message.
#include <sys/socket.h>
#include <array>

#include <utility>
#include <vector>

#include "asio_glue.hpp"
#include "byte_arena.hpp"

namespace duet::posix::detail {

namespace {

constexpr std::size_t kReadBuffer = 256 * 1024;

class PosixStreamSocket final : public net::StreamSocket {
public:
  PosixStreamSocket(asio::io_context& io, Family family, std::shared_ptr<TcpCounters> counters)
      : family_(family), state_(std::make_shared<State>(io)), counters_(std::move(counters)) {}
  PosixStreamSocket(tcp::socket&& accepted, Family family, std::shared_ptr<TcpCounters> counters)
      : family_(family), state_(std::make_shared<State>(std::move(accepted))), counters_(std::move(counters)) {
    no_delay();
  }
  ~PosixStreamSocket() override { close(); }

  std::error_code open() {
    boost::system::error_code ec;
    state_->socket.open(protocol<tcp>(family_), ec);
    if (!ec) no_delay();
    return to_std(ec);
  }

  /// TCP_NODELAY: a turn's messages already go in one write, and what they carry (the
  /// tunnel's packets) runs its own congestion control; Nagle's wait for the peer's
  /// (delayed) ACK only added up to 40 ms to a small packet behind unacknowledged data.
  void no_delay() {
    boost::system::error_code ignored;
    state_->socket.set_option(tcp::no_delay(true), ignored);
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
    wait_readable(s);
  }

  void write(std::span<const std::uint8_t> data, net::WriteHandler handler) override {
    write_parts({}, data, std::move(handler));
  }

  void write_parts(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body,
                   net::WriteHandler handler) override {
    auto& s = *state_;
    if (!s.socket.is_open()) {
      post_error(std::move(handler), std::errc::bad_file_descriptor);
      return;
    }
    s.pending.append(head);
    s.pending.append(body);
    ++counters_->writes;
    s.pending_handlers.push_back(std::move(handler));
    if (!s.in_flight) write_next(state_);
  }

  void write_filled(std::size_t capacity, net::Fill fill, net::WriteHandler handler) override {
    auto& s = *state_;
    if (!s.socket.is_open()) {
      post_error(std::move(handler), std::errc::bad_file_descriptor);
      return;
    }
    const std::size_t at = s.pending.size();
    const std::size_t n = std::min(fill(s.pending.grow(capacity)), capacity);
    s.pending.shrink_to(at + n);
    if (n == 0) return;
    ++counters_->writes;
    ++counters_->writes_in_place;
    s.pending_handlers.push_back(std::move(handler));
    if (!s.in_flight) write_next(state_);
  }

  std::size_t queued() const override { return state_->pending.size() + state_->writing.size(); }

  std::error_code shutdown_send() override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    state_->shutdown_requested = true;
    if (!state_->in_flight && state_->pending.empty()) return do_shutdown(*state_);
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
  struct State {
    explicit State(asio::io_context& io) : socket(io), timer(io) {}
    explicit State(tcp::socket&& s) : socket(std::move(s)), timer(socket.get_executor()) {}
    tcp::socket socket;
    asio::steady_timer timer;
    net::ConnectHandler connect_handler;
    net::ReadHandler read_handler;
    ByteArena pending, writing;  ///< appended to; in flight
    std::vector<net::WriteHandler> pending_handlers, writing_handlers;
    bool in_flight = false;
    std::uint64_t generation = 0;  ///< bumped when close() or reset() drops the queue
    bool timed_out = false;
    bool shutdown_requested = false;
    // The recurring operations' memory (see HandlerMemory): nothing allocated per write.
    std::shared_ptr<HandlerMemory> read_memory = std::make_shared<HandlerMemory>(),
                                   write_memory = std::make_shared<HandlerMemory>();
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

  /// Reads, once the socket is readable, into the loop's one read buffer: a handler sees
  /// the bytes only during its call, so every stream can share it (a server with
  /// thousands of TCP peers holds no buffer per peer), and it can be large.
  static void wait_readable(const std::shared_ptr<State>& s) {
    s->socket.async_wait(
        tcp::socket::wait_read,
        with_memory(s->read_memory, [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec) {
          auto st = weak.lock();
          if (!st || !st->read_handler || ec == asio::error::operation_aborted) return;
          if (ec) {
            std::exchange(st->read_handler, nullptr)(to_std(ec), {});
            return;
          }
          static thread_local std::vector<std::uint8_t> buffer(kReadBuffer);
          ssize_t n = -1;
          do {
            n = ::recv(st->socket.native_handle(), buffer.data(), buffer.size(), MSG_DONTWAIT);
          } while (n < 0 && errno == EINTR);
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_readable(st);  // woken for nothing
            return;
          }
          auto h = std::exchange(st->read_handler, nullptr);
          if (n < 0) {
            h(std::error_code(errno, std::generic_category()), {});
          } else {
            h({}, std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)));  // 0: EOF
          }
        }));
  }

  /// Writes everything queued so far in one write; what is queued meanwhile goes next.
  static void write_next(const std::shared_ptr<State>& s) {
    s->pending.swap(s->writing);
    s->pending_handlers.swap(s->writing_handlers);
    s->in_flight = true;
    asio::async_write(s->socket, asio::buffer(s->writing.data(), s->writing.size()),
                      with_memory(s->write_memory, [weak = std::weak_ptr<State>(s), gen = s->generation](
                                                       const boost::system::error_code& ec, std::size_t) {
                        auto st = weak.lock();
                        if (!st || st->generation != gen) return;  // dropped by close() or reset()
                        st->writing.clear();
                        // Handlers may write again: that only appends while in_flight holds.
                        for (auto& h : st->writing_handlers) {
                          if (h) h(to_std(ec));
                          if (st->generation != gen) return;
                        }
                        st->writing_handlers.clear();
                        st->in_flight = false;
                        if (!st->pending.empty() && !ec) {
                          write_next(st);
                        } else if (st->pending.empty() && st->shutdown_requested) {
                          do_shutdown(*st);
                        }
                      }));
  }

  void drop_handlers() {
    state_->connect_handler = nullptr;
    state_->read_handler = nullptr;
    auto& s = *state_;
    ++s.generation;
    s.pending.clear();
    s.pending_handlers.clear();
    s.writing.clear();
    s.writing_handlers.clear();
    s.in_flight = false;
    state_->timer.cancel();
  }

  Family family_;
  std::shared_ptr<State> state_;
  std::shared_ptr<TcpCounters> counters_;
};

class PosixListener final : public net::Listener {
public:
  PosixListener(asio::io_context& io, Family family, std::shared_ptr<TcpCounters> counters)
      : io_(io), family_(family), state_(std::make_shared<State>(io)), counters_(std::move(counters)) {}
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
    s->acceptor.async_accept([weak = std::weak_ptr<State>(s), family = family_, counters = counters_](
                                 const boost::system::error_code& ec, tcp::socket peer) {
      auto st = weak.lock();
      if (!st || !st->handler) return;
      auto h = std::move(st->handler);
      if (ec) {
        h(to_std(ec), nullptr);
        return;
      }
      h({}, std::make_unique<PosixStreamSocket>(std::move(peer), family, counters));
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
  std::shared_ptr<TcpCounters> counters_;
};

}  // namespace

Result<std::unique_ptr<net::StreamSocket>> open_stream(asio::io_context& io, Family family,
                                                       std::shared_ptr<TcpCounters> counters) {
  auto s = std::make_unique<PosixStreamSocket>(io, family, std::move(counters));
  if (auto ec = s->open()) return ec;
  return std::unique_ptr<net::StreamSocket>(std::move(s));
}

Result<std::unique_ptr<net::Listener>> listen(asio::io_context& io, const Endpoint& local,
                                              const net::ListenOptions& options,
                                              std::shared_ptr<TcpCounters> counters) {
  auto l = std::make_unique<PosixListener>(io, local.family(), std::move(counters));
  if (auto ec = l->open(local, options)) return ec;
  return std::unique_ptr<net::Listener>(std::move(l));
}

}  // namespace duet::posix::detail
