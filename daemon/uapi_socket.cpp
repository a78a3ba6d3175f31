#include "uapi_socket.hpp"

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <cerrno>
#include <cstring>
#include <set>

namespace duet::daemon {

namespace local = boost::asio::local;
using namespace std::chrono_literals;

namespace {
constexpr std::size_t kMaxConnections = 16;
// A connection that completes no operation for this long is closed (a stalled `wg`, or
// one that never sends the blank line).
constexpr auto kIdleLimit = 30s;
}  // namespace

struct UapiSocket::Impl : std::enable_shared_from_this<UapiSocket::Impl> {
  Impl(boost::asio::io_context& io, spdlog::logger& l, Run r) : io(io), acceptor(io), log(l), run(std::move(r)) {}

  struct Client : std::enable_shared_from_this<Client> {
    explicit Client(local::stream_protocol::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
    local::stream_protocol::socket socket;
    boost::asio::steady_timer timer;
    node::uapi::Connection connection;
    std::array<char, 16384> buffer{};
    std::string out;  ///< answers being written
    bool writing = false;
    bool finished = false;  ///< the peer closed its side
  };

  boost::asio::io_context& io;
  local::stream_protocol::acceptor acceptor;
  spdlog::logger& log;
  Run run;
  std::string path;
  std::set<std::shared_ptr<Client>> clients;

  void accept() {
    acceptor.async_accept(
        [weak = weak_from_this()](const boost::system::error_code& ec, local::stream_protocol::socket s) {
          auto self = weak.lock();
          if (!self || ec == boost::asio::error::operation_aborted) return;
          if (!ec) {
            if (self->clients.size() >= kMaxConnections) {
              self->log.warn("configuration socket: {} connections already; refusing one", kMaxConnections);
            } else {
              auto c = std::make_shared<Client>(std::move(s));
              self->clients.insert(c);
              self->arm_idle(c);
              self->read(c);
            }
          }
          self->accept();
        });
  }

  void arm_idle(const std::shared_ptr<Client>& c) {
    c->timer.expires_after(kIdleLimit);
    c->timer.async_wait([weak = weak_from_this(), c](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      self->log.warn("configuration socket: a client sent no whole request for {} s; closed", kIdleLimit.count());
      self->drop(c);
    });
  }

  void drop(const std::shared_ptr<Client>& c) {
    boost::system::error_code ignored;
    c->timer.cancel();
    c->socket.close(ignored);
    clients.erase(c);
  }

  void read(const std::shared_ptr<Client>& c) {
    c->socket.async_read_some(boost::asio::buffer(c->buffer), [weak = weak_from_this(), c](
                                                                  const boost::system::error_code& ec, std::size_t n) {
      auto self = weak.lock();
      if (!self || ec == boost::asio::error::operation_aborted || !self->clients.contains(c)) return;
      std::string answers;
      if (ec) {
        answers = c->connection.finish(self->run);  // EOF: a set without its blank line still counts
        c->finished = true;
      } else {
        const std::size_t before = c->connection.pending();
        answers = c->connection.feed(std::string_view(c->buffer.data(), n), self->run);
        if (!answers.empty() || c->connection.pending() < before) self->arm_idle(c);
        if (c->connection.closed()) {
          self->log.warn("configuration socket: a request broke the protocol or its limits; closed");
        }
      }
      self->write(c, std::move(answers));
      if (!c->finished && !c->connection.closed()) self->read(c);
    });
  }

  void write(const std::shared_ptr<Client>& c, std::string more) {
    c->out += more;
    if (c->writing) return;
    if (c->out.empty()) {
      if (c->finished || c->connection.closed()) drop(c);
      return;
    }
    c->writing = true;
    auto chunk = std::make_shared<std::string>(std::move(c->out));
    c->out.clear();
    boost::asio::async_write(c->socket, boost::asio::buffer(*chunk),
                             [weak = weak_from_this(), c, chunk](const boost::system::error_code& ec, std::size_t) {
                               auto self = weak.lock();
                               if (!self) return;
                               c->writing = false;
                               if (ec) {
                                 self->drop(c);
                                 return;
                               }
                               self->write(c, {});
                             });
  }
};

UapiSocket::UapiSocket(boost::asio::io_context& io, spdlog::logger& log, const std::string& dir, const std::string& dev,
                       Run run, std::string& error)
    : impl_(std::make_shared<Impl>(io, log, std::move(run))) {
  impl_->path = dir + "/" + dev + ".sock";
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    error = "cannot make " + dir + ": " + std::strerror(errno);
    return;
  }
  // A socket file left by a daemon that is gone is replaced; a live one is not.
  {
    local::stream_protocol::socket probe(io);
    boost::system::error_code ec;
    probe.connect(local::stream_protocol::endpoint(impl_->path), ec);
    if (!ec) {
      error = impl_->path + " is in use: another daemon serves " + dev;
      return;
    }
  }
  ::unlink(impl_->path.c_str());
  boost::system::error_code ec;
  impl_->acceptor.open(local::stream_protocol(), ec);
  const mode_t old_mask = ::umask(0077);  // root's alone, from its first moment
  if (!ec) impl_->acceptor.bind(local::stream_protocol::endpoint(impl_->path), ec);
  ::umask(old_mask);
  if (!ec) impl_->acceptor.listen(8, ec);
  if (ec) {
    error = "cannot listen at " + impl_->path + ": " + ec.message();
    impl_->acceptor.close(ec);
    return;
  }
  log.info("configuration socket {} (wg show {}, wg set {} ...)", impl_->path, dev, dev);
  impl_->accept();
}

UapiSocket::~UapiSocket() {
  if (impl_->acceptor.is_open()) ::unlink(impl_->path.c_str());
  for (const auto& c : impl_->clients) {
    boost::system::error_code ignored;
    c->timer.cancel();
    c->socket.close(ignored);
  }
  impl_->clients.clear();
}

const std::string& UapiSocket::path() const { return impl_->path; }

}  // namespace duet::daemon
