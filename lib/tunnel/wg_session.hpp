// One path to a peer (a UDP source address or a TCP connection) as the engine's session,
// and the timing constants the device's files share. Not a public header.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>

#include "duet/tunnel/constants.hpp"
#include "duet/tunnel/device.hpp"

namespace duet::tunnel {

inline constexpr auto kHandshakeFloodInterval = std::chrono::milliseconds(20);  // 50 initiations/s per peer
inline constexpr auto kMaxJitter = std::chrono::milliseconds(333);
/// A keepalive that comes back this soon after ours was an answer (a duet responder's).
inline constexpr auto kKeepaliveAnswerWindow = std::chrono::seconds(1);
/// A source address one peer has been silent on this long may be taken by another peer
/// that authenticates from it (a NAT that gave the port away; a host that reused it).
inline constexpr auto kPathHandOverIdle = kKeepaliveTimeout;
inline constexpr auto kReceiveRekeyAge = kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout;  // 165 s

/// One path to a peer (a UDP source address or a TCP connection), as the engine's session.
/// The keys are the device's; the session keeps only a handshake it started.
class WgSession final : public transport::Session {
public:
  WgSession(Device& d, std::optional<std::size_t> peer, net::Endpoint remote, config::Transport transport)
      : d_(d), peer_(peer), initiator_(peer.has_value()), remote_(remote), transport_(transport) {}
  ~WgSession() override { d_.forget(*this); }

  std::vector<std::uint8_t> hello() override {
    const auto peer = d_.peer_of(*this);
    if (!initiator_ || !peer) return {};
    return d_.initiation(*this, *peer);
  }

  Reply receive(std::span<const std::uint8_t> m) override {
    Reply r;
    if (m.empty()) return r;
    switch (m[0]) {
      case kMessageHandshakeInitiation:
        d_.on_initiation(*this, m, r);
        break;
      case kMessageHandshakeResponse:
        d_.on_response(*this, m, r);
        break;
      case kMessageHandshakeCookie:
        d_.on_cookie(*this, m);
        break;
      case kMessageData:
        d_.on_data(*this, m, r);
        break;
      case kMessageDuetPathCheck:
      case kMessageDuetPathAnswer:
        d_.on_path_message(*this, m, r);
        break;
      default:
        break;
    }
    return r;
  }

  std::vector<std::uint8_t> keepalive() override {
    if (const auto peer = d_.peer_of(*this)) {
      if (auto m = d_.seal(*peer, {})) {
        d_.peers_[*peer].keepalive_sent = d_.clock_.now();
        return {m->begin(), m->end()};
      }
    }
    return hello();
  }

  /// A duet responder answers a keepalive; WireGuard answers only a handshake initiation
  /// (at most 50 a second per peer), so a peer not yet seen answering keepalives gets one.
  std::vector<std::uint8_t> probe() override {
    const auto peer = d_.peer_of(*this);
    if (peer && d_.peers_[*peer].answers_keepalives) return keepalive();
    return hello();
  }

  /// Only to a peer known to be duet: one that has answered a keepalive at once, or a path
  /// check (WireGuard answers neither and drops the check). Between p2p peers, where
  /// keepalives prove nothing, the first two checks find out.
  std::vector<std::uint8_t> path_check() override {
    const auto peer = d_.peer_of(*this);
    if (!peer) return {};
    auto& p = d_.peers_[*peer];
    const bool trying = d_.limits_.peers_may_answer_path_checks && p.path_checks_asked < 2;
    if (!p.answers_keepalives && !p.answers_path_checks && !trying) return {};
    auto m = d_.path_message(*peer, kMessageDuetPathCheck);
    if (!m.empty() && !p.answers_path_checks) ++p.path_checks_asked;
    return m;
  }

  [[nodiscard]] bool keepalive_answered() const override {
    const auto peer = d_.peer_of(*this);
    return peer && d_.peers_[*peer].answers_keepalives;
  }

  void attach(Sender send) override {
    sender_ = std::move(send);
    if (!sender_)
      d_.forget(*this);
    else if (proven_ || configured_)
      d_.make_active(*this);
  }

  [[nodiscard]] bool stale() const override { return d_.path_is_stale(*this); }

  [[nodiscard]] bool can_send() const { return static_cast<bool>(sender_); }
  void send(std::span<const std::uint8_t> m) {
    if (sender_) sender_(m);
  }
  /// Sends the message `fill` writes, in place where the path allows (see Sender).
  void send_filled(std::size_t capacity, net::Fill fill) {
    if (sender_) sender_.send_filled(capacity, fill);
  }

private:
  friend class Device;
  Device& d_;
  std::optional<std::size_t> peer_;  ///< configured (initiator) or learned (responder); see peer_of()
  std::uint32_t generation_ = 0;     ///< of peer_'s slot when it was set
  bool initiator_;
  bool proven_ = false;         ///< the peer has authenticated itself on this path
  net::TimePoint proven_at_{};  ///< when it last did (see Device::path_open_to)
  bool configured_ = false;     ///< a path to the peer's endpoint: used before it authenticates
  /// The initiations this path sent that may still be answered: the newest two, so that a
  /// hello said again (the engine repeats it when the peer speaks first) does not make the
  /// answer to the first one useless when both crossed on the wire.
  struct Sent {
    InitiatorState state;
    Mac mac1{};
  };
  std::deque<Sent> pending_;
  /// The sent initiation a response or cookie reply names by its receiver index.
  std::deque<Sent>::iterator pending_for(std::span<const std::uint8_t> m) {
    const auto idx = receiver_index(m);
    return std::find_if(pending_.begin(), pending_.end(),
                        [&](const Sent& x) { return idx && x.state.local_index == *idx; });
  }
  net::Endpoint remote_;
  config::Transport transport_;
  Sender sender_;
};

}  // namespace duet::tunnel
