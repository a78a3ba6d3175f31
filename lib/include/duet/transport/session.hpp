// The engine moves opaque session messages; what they mean is the session's business.
// The WireGuard data channel (lib/tunnel) is one session; the scenario runner's
// ProbeSession is another.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/address.hpp"

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

  using Sender = std::function<void(std::span<const std::uint8_t>)>;
  /// The engine hands the session a way to send on its path whenever it likes (outgoing
  /// tunnel traffic), once the path is up; an empty Sender means the path is gone.
  virtual void attach(Sender send) { (void)send; }
};

class SessionFactory {
public:
  virtual ~SessionFactory() = default;
  /// A session with one peer (an outgoing connection, or a peer that reached a listener).
  virtual std::unique_ptr<Session> create(const net::Endpoint& peer, config::Transport transport) = 0;
};

}  // namespace duet::transport
