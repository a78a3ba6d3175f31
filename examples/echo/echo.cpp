#include "echo.hpp"

#include "duet/net/error.hpp"

namespace echo {

using duet::net::Endpoint;
using duet::net::Family;

void Server::start(std::uint16_t port, std::function<void(duet::net::Result<std::vector<Endpoint>>)> ready) {
  duet::net::ResolveHints hints;
  hints.passive = true;
  resolving_ = stack_.resolve("", std::to_string(port), hints, [this, ready](auto answer) {
    if (!answer) {
      ready(answer.error());
      return;
    }
    std::vector<Endpoint> bound;
    std::error_code last;
    for (const Endpoint& local : *answer) {
      auto socket = stack_.open_datagram(local.family());
      std::error_code ec = socket ? std::error_code{} : socket.error();
      if (!ec && local.family() == Family::v6) {
        ec = (*socket)->set_v6only(true);  // the IPv4 socket takes IPv4: no clash on the port
      }
      if (!ec) {
        ec = (*socket)->bind(local);
      }
      if (ec) {
        last = ec;  // this family is unusable here; the other may still serve
        continue;
      }
      bound.push_back(*(*socket)->local_endpoint());
      sockets_.push_back(std::move(*socket));
      serve(*sockets_.back());
    }
    if (bound.empty()) {
      ready(last ? last : duet::net::errc(std::errc::address_not_available));
    } else {
      ready(std::move(bound));
    }
  });
}

void Server::serve(duet::net::DatagramSocket& socket) {
  socket.receive([this, &socket](std::error_code ec, const Endpoint& from, std::span<const std::uint8_t> data) {
    if (!ec && !socket.send_to(from, data)) {
      ++echoed_;
    }
    serve(socket);
  });
}

void Client::ask(const std::string& host, std::uint16_t port, std::string message, std::function<void(Outcome)> done) {
  message_ = std::move(message);
  done_ = std::move(done);
  outcome_ = {};
  started_ = stack_.clock().now();
  timer_ = stack_.clock().make_timer();
  resolving_ = stack_.resolve(host, std::to_string(port), {}, [this, host](auto answer) {
    if (!answer) {
      outcome_.steps.push_back("resolve " + host + ": " + duet::net::error_name(answer.error()));
      finish(answer.error());
      return;
    }
    candidates_ = std::move(*answer);
    next_ = 0;
    try_next();
  });
}

void Client::try_next() {
  if (socket_) {
    socket_->close();
    socket_.reset();
  }
  if (next_ == candidates_.size()) {
    finish(last_error_ ? last_error_ : duet::net::errc(std::errc::timed_out));
    return;
  }
  const Endpoint remote = candidates_[next_++];
  auto fail = [this, remote](std::error_code ec) {
    outcome_.steps.push_back(remote.to_string() + ": " + duet::net::error_name(ec));
    last_error_ = ec;
    // The next try starts from the timer, never from inside this socket's own handler
    // (the socket is closed there); a timer, unlike a post, dies with the Client.
    timer_->start(0ns, [this] { try_next(); });
  };
  auto socket = stack_.open_datagram(remote.family());
  if (!socket) {
    fail(socket.error());
    return;
  }
  socket_ = std::move(*socket);
  std::error_code ec = socket_->connect(remote);  // connected: ICMP errors come back to us
  if (!ec) {
    ec = socket_->send({reinterpret_cast<const std::uint8_t*>(message_.data()), message_.size()});
  }
  if (ec) {
    fail(ec);  // refused locally: no route, a prohibit route on this host...
    return;
  }
  socket_->receive([this, remote, fail](std::error_code ec, const Endpoint&, std::span<const std::uint8_t> data) {
    timer_->cancel();
    if (ec) {
      fail(ec);
      return;
    }
    outcome_.steps.push_back(remote.to_string() + ": reply");
    outcome_.answered_by = remote;
    outcome_.reply.assign(data.begin(), data.end());
    finish({});
  });
  timer_->start(attempt_timeout_, [fail] { fail(duet::net::errc(std::errc::timed_out)); });
}

void Client::finish(std::error_code error) {
  timer_->cancel();
  if (socket_) {
    socket_->close();
  }
  outcome_.error = error;
  outcome_.elapsed = stack_.clock().now() - started_;
  if (done_) {
    auto done = std::move(done_);
    done(std::move(outcome_));
  }
}

}  // namespace echo
