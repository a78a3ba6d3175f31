#include "control_socket.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>

namespace duet::daemon {

namespace local = boost::asio::local;

struct ControlSocket::Impl {
  Impl(boost::asio::io_context& io, std::string p, Answer a) : acceptor(io), path(std::move(p)), answer(std::move(a)) {}
  local::stream_protocol::acceptor acceptor;
  std::string path;
  Answer answer;

  static void serve(const std::shared_ptr<Impl>& self) {
    self->acceptor.async_accept(
        [weak = std::weak_ptr<Impl>(self)](const boost::system::error_code& ec, local::stream_protocol::socket peer) {
          auto me = weak.lock();
          if (!me || ec) return;
          auto sock = std::make_shared<local::stream_protocol::socket>(std::move(peer));
          auto request = std::make_shared<boost::asio::streambuf>(256);
          // Read the request line first (closing a Unix socket with unread data resets the
          // peer); a line longer than the buffer is an error, and the connection is dropped.
          boost::asio::async_read_until(
              *sock, *request, '\n', [weak, sock, request](const boost::system::error_code& rec, std::size_t n) {
                auto me2 = weak.lock();
                if (!me2 || rec) return;
                const auto data = request->data();
                std::string line(boost::asio::buffers_begin(data),
                                 boost::asio::buffers_begin(data) + static_cast<std::ptrdiff_t>(n));
                while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
                auto reply = std::make_shared<std::string>(me2->answer(line));
                boost::asio::async_write(*sock, boost::asio::buffer(*reply),
                                         [sock, reply](const boost::system::error_code&, std::size_t) {
                                           boost::system::error_code ignored;
                                           sock->shutdown(local::stream_protocol::socket::shutdown_send, ignored);
                                         });
              });
          serve(me);
        });
  }
};

ControlSocket::ControlSocket(boost::asio::io_context& io, spdlog::logger& log, std::string path, int group,
                             Answer answer)
    : impl_(std::make_shared<Impl>(io, std::move(path), std::move(answer))) {
  ::unlink(impl_->path.c_str());
  boost::system::error_code ec;
  impl_->acceptor.open(local::stream_protocol(), ec);
  if (!ec) impl_->acceptor.bind(local::stream_protocol::endpoint(impl_->path), ec);
  if (!ec) impl_->acceptor.listen(8, ec);
  if (ec) {
    log.warn("no control socket at {}: {} (duetctl will not reach this daemon)", impl_->path, ec.message());
    return;
  }
  ::chmod(impl_->path.c_str(), 0660);
  if (group >= 0 && ::chown(impl_->path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(group)) != 0) {
    log.warn("cannot give {} to group {}", impl_->path, group);
  }
  log.info("control socket {}", impl_->path);
  Impl::serve(impl_);
}

ControlSocket::~ControlSocket() {
  if (impl_->acceptor.is_open()) ::unlink(impl_->path.c_str());
}

}  // namespace duet::daemon
