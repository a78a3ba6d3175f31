// Backpressure from the outer sockets to the TUN device. A tunnel that drops whole
// messages when its outer stream is full costs the inner TCP dozens of segments per drop
// (a TUN read is a 64 KiB super-packet); one that stops reading the TUN instead lets the
// inner TCP see queueing, and the local sender's own limits (TCP small queues) hold it back.
//
// An outlet (an outer TCP stream, or a UDP socket) is congested from the moment more than
// kStreamHighWater bytes wait in it until it drains to kStreamLowWater (a UDP socket: from
// the moment the kernel refuses what the stack queued, EAGAIN, until the stack has handed
// over everything it held).
//
// The TUN is one queue for every peer, so pausing it holds up everyone. The node pauses it
// only while every outlet the TUN fed recently (kFedRecently) is congested: a client with
// one server, or a server with one busy peer. While another outlet is taking traffic, a
// congested one is not waited for: its messages past kStreamHighWater are dropped (whole
// messages, one segment each: the TUN's super-packets are cut before they are sealed), so
// a throttled peer gets its path's worth and the others get theirs. A pause is not
// absolute either: a server looks at its TUN again every so often (a packet for another
// peer may be waiting behind the paused one's), and a stream that does not drain at all
// is given up on after a while (its messages are then dropped at kMaxStreamQueue).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <unordered_map>

#include "duet/net/clock.hpp"
#include "duet/net/network_stack.hpp"

namespace duet::transport {

constexpr std::size_t kStreamHighWater = 256 * 1024;
constexpr std::size_t kStreamLowWater = 64 * 1024;
/// How much a stream may have waiting before more messages are dropped, while the TUN is
/// paused for it (what one read of the TUN brings past the high water; a stream that does
/// not drain). Without a pause, a congested stream takes nothing past kStreamHighWater.
constexpr std::size_t kMaxStreamQueue = 2 * 1024 * 1024;
/// An outlet the TUN fed within this long still wants the TUN read.
constexpr net::Duration kFedRecently = std::chrono::seconds(2);

/// Which outlets are too full to take more, and whether the TUN should wait for them.
class FlowControl {
public:
  explicit FlowControl(const net::Clock& clock) : clock_(clock) {}

  /// Called whenever congested() or pausing() may have changed.
  void on_change(std::function<void()> listener) { listener_ = std::move(listener); }
  /// Around the routing of one TUN read: what outlets are fed in between is TUN traffic
  /// (keepalives and handshake replies sent at other times are not).
  void begin_batch();
  void end_batch();

  /// After a message was queued on `stream`.
  void queued(const net::StreamSocket& stream);
  /// After the stack took a write of `stream`'s.
  void wrote(const net::StreamSocket& stream);
  /// A message may go to `stream` now (false: drop it, and it is counted).
  bool admits(const net::StreamSocket& stream);
  /// After a datagram was queued on `socket`.
  void sent(const net::DatagramSocket& socket) { fed(&socket); }
  /// What `socket`'s on_blocked() handler reports: true each time the kernel refused what
  /// it queued (again after a wait: the kernel took some, which counts as progress), false
  /// once everything it held has gone.
  void blocked(const net::DatagramSocket& socket, bool blocked);
  /// `stream` is closed or about to be destroyed.
  void forget(const net::StreamSocket& stream) { forget_outlet(&stream); }
  /// `socket` is closed or about to be destroyed.
  void forget(const net::DatagramSocket& socket) { forget_outlet(&socket); }
  /// Looks again whether to pause (the outlets fed recently change as time passes).
  void review() { update(); }

  /// Some stream or datagram socket is congested.
  [[nodiscard]] bool congested() const { return congested_ != 0; }
  /// The TUN should not be read: every outlet it fed recently is congested.
  [[nodiscard]] bool pausing() const { return pausing_; }
  /// Writes completed on congested streams and datagram sockets so far (a paused reader's
  /// sign of progress).
  [[nodiscard]] std::uint64_t progress() const { return progress_; }
  /// How often some stream or datagram socket became congested.
  [[nodiscard]] std::uint64_t episodes() const { return episodes_; }
  /// Messages dropped because their stream was full.
  [[nodiscard]] std::uint64_t drops() const { return drops_; }
  /// How often an outlet became congested while another still took traffic (so the TUN
  /// went on being read).
  [[nodiscard]] std::uint64_t isolated() const { return isolated_; }

private:
  /// What is known of one outlet: kept while it is congested or was fed recently.
  struct Outlet {
    net::TimePoint fed_at{};  ///< when a TUN batch last fed it
    bool fed = false;         ///< fed_at is set (and not yet found old)
    bool congested = false;
  };
  void fed(const void* outlet);
  /// Marks `outlet` congested; false if it already was.
  bool add(const void* outlet);
  /// `it` drained: no longer congested.
  void relieve(std::unordered_map<const void*, Outlet>::iterator it);
  void forget_outlet(const void* outlet);
  /// Every outlet fed within kFedRecently is congested (forgets what is old and not
  /// congested).
  bool all_recent_congested();
  void update();

  const net::Clock& clock_;
  std::function<void()> listener_;
  // By identity (streams and datagram sockets): one lookup per batch and outlet fed, per
  // completed write of a congested stream, and per change, however many peers are full.
  std::unordered_map<const void*, Outlet> outlets_;
  std::size_t congested_ = 0;  ///< outlets with congested set
  const void* last_fed_ = nullptr;
  net::TimePoint batch_time_{}, last_fed_time_{};
  bool in_batch_ = false, pausing_ = false;
  std::uint64_t progress_ = 0, episodes_ = 0, drops_ = 0, isolated_ = 0;
};

}  // namespace duet::transport
