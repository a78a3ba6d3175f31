#include "proxy_sockets.hpp"

namespace duet::plugin::detail {

void send_output(net::StreamSocket& s, Handshake& hs) {
  auto out = hs.output();
  if (!out.empty()) s.write(out, [](std::error_code) {});
}

void run_handshake(net::StreamSocket& s, Handshake& hs, HandshakeDone done, HandshakeFailed failed) {
  s.read_some([&s, &hs, done = std::move(done), failed = std::move(failed)](
                  std::error_code ec, std::span<const std::uint8_t> data) mutable {
    if (ec) return failed(ec, "");
    if (data.empty())
      return failed(make_error(DUET_PLUGIN_E_CLOSED), "the proxy closed the connection before its reply was complete");
    const auto fed = hs.feed(data);
    if (fed.status == Handshake::Status::failed) return failed(fed.error, fed.message);
    send_output(s, hs);
    if (fed.status == Handshake::Status::done) return done(data.subspan(std::min(fed.consumed, data.size())));
    run_handshake(s, hs, std::move(done), std::move(failed));
  });
}

}  // namespace duet::plugin::detail
