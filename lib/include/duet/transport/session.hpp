// The engine moves opaque session messages; what they mean is the session's business.
// The WireGuard data channel (lib/tunnel) is one session; the scenario runner's
// ProbeSession is another.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/address.hpp"
#include "duet/net/network_stack.hpp"

namespace duet::transport {

class Session {
public:
  virtual ~Session() = default;
  /// The first message of a connection attempt (UDP: sent to each address tried, and
  /// again every second until answered; TCP: sent once connected).
  virtual std::vector<std::uint8_t> hello() = 0;

  struct Reply {
    bool answers_hello = false;  ///< completes our own hello: connected
    bool answers_check = false;  ///< answers our path_check(): the path works
    /// The message proved who the peer is (a valid handshake, authenticated data). A
    /// listener keeps state for a new source address only then: spoofed or garbage
    /// datagrams cost no memory and cannot crowd out real peers.
    bool authenticated = false;
    std::vector<std::vector<std::uint8_t>> send;  ///< messages to send back to the peer
  };
  /// Every message from the peer, before and after the handshake.
  virtual Reply receive(std::span<const std::uint8_t> message) = 0;
  /// A message that keeps the path alive and makes the peer answer.
  virtual std::vector<std::uint8_t> keepalive() = 0;
  /// A message the peer answers at once, sent when the path has gone quiet after we sent
  /// something (path health): the keepalive unless the peer is known not to answer it.
  /// Empty: this session cannot probe.
  virtual std::vector<std::uint8_t> probe() { return keepalive(); }
  /// A message that asks the peer whether this path works without moving the session to
  /// it (a standby checked ahead of need): answered by one whose Reply::answers_check is
  /// set. Empty: this session cannot ask (its peer would take any message as a move).
  virtual std::vector<std::uint8_t> path_check() { return {}; }
  /// Whether the peer answers keepalive() (then a keepalive unanswered for a few round
  /// trips is a sign of a dead path, and idle sessions are watched at no extra cost).
  [[nodiscard]] virtual bool keepalive_answered() const { return true; }

  /// True when this path no longer carries its peer's traffic (the peer roamed to another
  /// path, or is gone): a listener may forget it once it has been idle a while.
  [[nodiscard]] virtual bool stale() const { return false; }

  /// A way to send on the session's path. Built from a callable taking a finished message
  /// (a copy is made where it is queued), or with in_place() from one that lets a message
  /// be written straight into the buffer it leaves from (the tunnel seals packets there).
  class Sender {
  public:
    /// Writes a message of at most `capacity` bytes with `fill` where it is queued.
    using InPlace = std::function<void(std::size_t capacity, net::Fill fill)>;
    Sender() = default;
    Sender(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): "no path", as for std::function
    /// A sender of finished messages.
    template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Sender> && std::is_invocable_v<F&, std::span<const std::uint8_t>>)
        Sender(F f)  // NOLINT(google-explicit-constructor): any callable that sends, as for std::function
        : whole_(std::move(f)) {}
    /// A sender that writes messages in place.
    static Sender in_place(InPlace f) {
      Sender s;
      s.in_place_ = std::move(f);
      return s;
    }
    explicit operator bool() const { return whole_ || in_place_; }
    /// Sends a finished message.
    void operator()(std::span<const std::uint8_t> m) const {
      if (whole_) return whole_(m);
      in_place_(m.size(), [m](std::span<std::uint8_t> room) {
        std::copy(m.begin(), m.end(), room.begin());
        return m.size();
      });
    }
    /// Sends the message `fill` writes (at most `capacity` bytes): in place when the path
    /// allows, else from a scratch buffer.
    void send_filled(std::size_t capacity, net::Fill fill) const {
      if (in_place_) return in_place_(capacity, fill);
      fill.through_scratch(capacity, whole_);
    }

  private:
    std::function<void(std::span<const std::uint8_t>)> whole_;
    InPlace in_place_;
  };
  /// The engine hands the session a way to send on its path whenever it likes (outgoing
  /// tunnel traffic), once the path is up; an empty Sender means the path is gone.
  virtual void attach(Sender send) { (void)send; }
};

class SessionFactory {
public:
  virtual ~SessionFactory() = default;
  /// A session with one peer (an outgoing connection, or a peer that reached a listener).
  virtual std::unique_ptr<Session> create(const net::Endpoint& peer, config::Transport transport) = 0;
  /// A turn's datagrams, about to be handed to their sessions one by one: the factory may
  /// do work for all of them at once first (the tunnel opens data messages together on
  /// its crypto threads). By default nothing.
  virtual void prepare(std::span<const net::ReceivedDatagram> batch) { (void)batch; }
};

}  // namespace duet::transport
