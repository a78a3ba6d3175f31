#include "duet/net/error.hpp"
#include "proxy_sockets.hpp"

namespace duet::plugin::detail {

namespace {

/// A stream to the proxy that becomes a stream to the remote: connect() covers the TCP
/// connection and the plugin's handshake, within one timeout.
class ProxyStream final : public net::StreamSocket {
public:
  ProxyStream(net::Clock& clock, std::unique_ptr<net::StreamSocket> inner, std::unique_ptr<Handshake> hs,
              std::string name)
      : clock_(clock),
        inner_(std::move(inner)),
        hs_(std::move(hs)),
        timer_(clock.make_timer()),
        name_(std::move(name)) {}

  net::Family family() const override { return inner_->family(); }
  std::error_code bind(const net::Endpoint& local) override { return inner_->bind(local); }

  void connect(const net::Endpoint& proxy, net::Duration timeout, net::ConnectHandler handler) override {
    handler_ = std::move(handler);
    timer_->start(timeout, [this] {
      detail_ = name_ + ": no answer within the connect timeout";
      finish(net::errc(std::errc::timed_out));
    });
    inner_->connect(proxy, timeout, [this](std::error_code ec) {
      if (ec) return finish(ec);
      send_output(*inner_, *hs_);
      run_handshake(
          *inner_, *hs_,
          [this](std::span<const std::uint8_t> rest) {
            leftover_.assign(rest.begin(), rest.end());
            finish({});
          },
          [this](std::error_code e, const std::string& why) {
            if (!why.empty()) detail_ = name_ + ": " + why;
            finish(e);
          });
    });
  }

  void read_some(net::ReadHandler handler) override {
    if (!leftover_.empty()) {
      clock_.post([h = std::move(handler), data = std::move(leftover_)] { h({}, data); });
      leftover_.clear();
      return;
    }
    inner_->read_some(std::move(handler));
  }
  void write(std::span<const std::uint8_t> data, net::WriteHandler handler) override {
    inner_->write(data, std::move(handler));
  }
  void write_parts(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body,
                   net::WriteHandler handler) override {
    inner_->write_parts(head, body, std::move(handler));
  }
  void write_filled(std::size_t capacity, net::Fill fill, net::WriteHandler handler) override {
    inner_->write_filled(capacity, fill, std::move(handler));
  }

  std::size_t queued() const override { return inner_->queued(); }
  std::error_code shutdown_send() override { return inner_->shutdown_send(); }
  void close() override {
    handler_ = nullptr;
    timer_->cancel();
    inner_->close();
  }
  void reset() override {
    handler_ = nullptr;
    timer_->cancel();
    inner_->reset();
  }
  net::Result<net::Endpoint> local_endpoint() const override { return inner_->local_endpoint(); }
  net::Result<net::Endpoint> remote_endpoint() const override { return inner_->remote_endpoint(); }
  std::string error_detail() const override { return detail_; }

private:
  void finish(std::error_code ec) {
    timer_->cancel();
    if (ec) inner_->close();
    if (auto h = std::move(handler_)) {
      handler_ = nullptr;
      h(ec);
    }
  }

  net::Clock& clock_;
  std::unique_ptr<net::StreamSocket> inner_;
  std::unique_ptr<Handshake> hs_;
  std::unique_ptr<net::Timer> timer_;
  std::string name_;
  net::ConnectHandler handler_;
  std::vector<std::uint8_t> leftover_;
  std::string detail_;
};

}  // namespace

std::unique_ptr<net::StreamSocket> make_proxy_stream(net::Clock& clock, std::unique_ptr<net::StreamSocket> inner,
                                                     std::unique_ptr<Handshake> hs, std::string name) {
  return std::make_unique<ProxyStream>(clock, std::move(inner), std::move(hs), std::move(name));
}

}  // namespace duet::plugin::detail
