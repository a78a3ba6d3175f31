#include <spdlog/spdlog.h>

#include <deque>
#include <utility>

#include "duet/net/error.hpp"
#include "proxy_sockets.hpp"

namespace duet::plugin::detail {

namespace {

/// A datagram socket through a relay (SOCKS5 UDP ASSOCIATE): connect() opens the control
/// stream to the proxy and runs the handshake; datagrams sent before the relay is known
/// wait (the last few), then go wrapped to the relay; what comes back is unwrapped and
/// reported as coming from the proxy's address. The control stream closing, or the
/// handshake failing, is reported as an error on receive(), as ICMP errors are on a
/// connected socket.
class ProxyDatagram final : public net::DatagramSocket {
public:
  ProxyDatagram(net::NetworkStack& stack, std::unique_ptr<net::DatagramSocket> udp, std::unique_ptr<Handshake> hs,
                std::string name)
      : stack_(stack), udp_(std::move(udp)), hs_(std::move(hs)), name_(std::move(name)) {}

  net::Family family() const override { return udp_->family(); }
  std::error_code set_v6only(bool on) override { return udp_->set_v6only(on); }
  std::error_code bind(const net::Endpoint& local) override { return udp_->bind(local); }
  std::error_code connect(const net::Endpoint& proxy) override {
    proxy_ = proxy;
    auto s = stack_.open_stream(proxy.family());
    if (!s) return s.error();
    control_ = std::move(*s);
    control_->connect(proxy, std::chrono::seconds(30), [this](std::error_code ec) {
      if (ec) return fail(ec, "");
      send_output(*control_, *hs_);
      run_handshake(
          *control_, *hs_, [this](std::span<const std::uint8_t>) { associated(); },
          [this](std::error_code e, const std::string& why) {
            fail(e, why.empty() ? "the proxy closed the connection before its reply was complete" : why);
          });
    });
    return {};
  }
  net::Result<net::Endpoint> local_endpoint() const override { return udp_->local_endpoint(); }
  std::error_code send_to(const net::Endpoint&, std::span<const std::uint8_t> data) override { return send(data); }
  std::error_code send(std::span<const std::uint8_t> data) override {
    if (error_) return error_;
    if (!relay_) {
      if (waiting_.size() >= 4) waiting_.erase(waiting_.begin());
      waiting_.emplace_back(data.begin(), data.end());
      return {};
    }
    const auto wrapped = hs_->wrap(data);
    if (wrapped.empty()) return net::errc(std::errc::message_size);
    return udp_->send_to(*relay_, wrapped);
  }
  // The tunnel's data: wrapped straight into the relay socket's queue for the end of the
  // turn (sent together, as on a direct socket); nothing allocated per datagram. The
  // plugin's wrap() takes the payload from a buffer of its own, so one copy remains.
  void send_soon(const net::Endpoint& remote, std::span<const std::uint8_t> data) override {
    send_soon_from(net::Address::any(family()), remote, data);
  }
  void send_soon_from(const net::Address& source, const net::Endpoint& remote,
                      std::span<const std::uint8_t> data) override {
    send_soon_filled(source, remote, data.size(), [data](std::span<std::uint8_t> room) {
      std::copy(data.begin(), data.end(), room.begin());
      return data.size();
    });
  }
  void send_soon_filled(const net::Address&, const net::Endpoint&, std::size_t capacity, net::Fill fill) override {
    if (error_) return;
    if (payload_.size() < capacity) payload_.resize(capacity);
    const std::size_t n = fill(std::span(payload_.data(), capacity));
    if (n == 0) return;
    const std::span<const std::uint8_t> payload(payload_.data(), n);
    if (!relay_) {
      (void)send(payload);  // waits for the relay
      return;
    }
    udp_->send_soon_filled(net::Address::any(family()), *relay_, n + plugin::Handshake::kMaxWrapOverhead,
                           [this, payload](std::span<std::uint8_t> room) { return hs_->wrap_into(payload, room); });
  }
  /// The relay socket's backpressure is this socket's.
  void on_blocked(std::function<void(bool)> handler) override { udp_->on_blocked(std::move(handler)); }
  void receive(net::ReceiveHandler handler) override {
    handler_ = std::move(handler);
    if (error_) return deliver_error();
    arm();
  }
  /// A batch of one, as by default, but without wrapping the handler in a new one per
  /// datagram (that allocated once per datagram received through the relay). Where a
  /// relayed datagram was sent to is not known: the unspecified address.
  void receive_batch(bool /*destinations*/, net::ReceiveBatchHandler handler) override {
    batch_handler_ = std::move(handler);
    if (error_) return deliver_error();
    arm();
  }
  void close() override {
    handler_ = nullptr;
    batch_handler_ = nullptr;
    if (control_) control_->close();
    udp_->close();
  }

private:
  /// The handshake is done: the relay's address is known, waiting datagrams go out.
  void associated() {
    auto r = hs_->relay();
    if (!r) return fail(make_error(DUET_PLUGIN_E_MALFORMED), "no relay address");
    std::optional<net::Address> addr = proxy_.address;
    if (!r->first.empty()) {
      auto parsed = net::Address::parse(r->first);
      addr = parsed ? std::optional(*parsed) : std::nullopt;
    }
    if (!addr || addr->family() != udp_->family()) {
      return fail(make_error(DUET_PLUGIN_E_UNSUPPORTED), "relay '" + r->first + "' is not an address of this family");
    }
    relay_ = net::Endpoint{*addr, r->second};
    for (const auto& d : std::exchange(waiting_, {})) (void)send(d);
    watch_control();
  }
  /// The association lives as long as the control stream: nothing more is expected on it.
  void watch_control() {
    control_->read_some([this](std::error_code ec, std::span<const std::uint8_t> data) {
      if (ec || data.empty())
        return fail(ec ? ec : make_error(DUET_PLUGIN_E_CLOSED), "the proxy closed the UDP association");
      watch_control();
    });
  }
  void arm() {
    if (armed_) return;
    armed_ = true;
    udp_->receive([this](std::error_code ec, const net::Endpoint& from, std::span<const std::uint8_t> d) {
      armed_ = false;
      if (ec) return fail(ec, "");
      if (relay_ && from == *relay_) {
        if (auto payload = hs_->unwrap(d); payload && batch_handler_) {
          auto h = std::move(batch_handler_);
          batch_handler_ = nullptr;
          const net::ReceivedDatagram one[1] = {{proxy_, net::Address::any(udp_->family()), *payload}};
          h({}, one);
          return;
        } else if (payload && handler_) {
          auto h = std::move(handler_);
          handler_ = nullptr;
          h({}, proxy_, *payload);
          return;
        }
      }
      arm();
    });
  }
  void fail(std::error_code ec, const std::string& why) {
    if (error_) return;
    error_ = ec;
    if (!why.empty()) spdlog::warn("{}: {}", name_, why);
    if (handler_ || batch_handler_) deliver_error();
  }
  void deliver_error() {
    if (batch_handler_) {
      auto h = std::exchange(batch_handler_, nullptr);
      stack_.clock().post([h = std::move(h), ec = error_] { h(ec, {}); });
    }
    if (handler_) {
      auto h = std::exchange(handler_, nullptr);
      stack_.clock().post([h = std::move(h), ec = error_, from = proxy_] { h(ec, from, {}); });
    }
  }

  net::NetworkStack& stack_;
  std::unique_ptr<net::DatagramSocket> udp_;
  std::unique_ptr<Handshake> hs_;
  std::string name_;
  std::unique_ptr<net::StreamSocket> control_;
  net::Endpoint proxy_;
  std::optional<net::Endpoint> relay_;
  std::vector<std::vector<std::uint8_t>> waiting_;
  std::vector<std::uint8_t> payload_;  ///< what send_soon_filled() fills, before wrapping
  net::ReceiveHandler handler_;
  net::ReceiveBatchHandler batch_handler_;  ///< one of the two waits at a time
  bool armed_ = false;
  std::error_code error_;
};

}  // namespace

std::unique_ptr<net::DatagramSocket> make_proxy_datagram(net::NetworkStack& stack,
                                                         std::unique_ptr<net::DatagramSocket> udp,
                                                         std::unique_ptr<Handshake> hs, std::string name) {
  return std::make_unique<ProxyDatagram>(stack, std::move(udp), std::move(hs), std::move(name));
}

}  // namespace duet::plugin::detail
