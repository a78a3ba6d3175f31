// Backpressure from the outer sockets to the TUN device. A tunnel that drops whole
// messages when its outer stream is full costs the inner TCP dozens of segments per drop
// (a TUN read is a 64 KiB super-packet); one that stops reading the TUN instead lets the
// inner TCP see queueing, and the local sender's own limits (TCP small queues) hold it back.
//
// A stream is congested from the moment more than kStreamHighWater bytes wait in it until
// it drains to kStreamLowWater; a UDP socket from the moment the kernel refuses what the
// stack queued (EAGAIN: its send buffer is full, DatagramSocket::on_blocked) until the
// stack has handed over everything it held. While any is congested the node pauses its
// TUN reads. One that does not drain cannot hold the others: the node resumes after a
// while without progress, and that socket's messages past its cap (kMaxStreamQueue, the
// stack's datagram queue) are dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "duet/net/network_stack.hpp"

namespace duet::transport {

constexpr std::size_t kStreamHighWater = 256 * 1024;
constexpr std::size_t kStreamLowWater = 64 * 1024;

/// Which outer streams are too full to take more, for whoever feeds them.
class FlowControl {
public:
  /// Called with true when the first outlet becomes congested, false when the last drains.
  void on_change(std::function<void(bool congested)> listener) { listener_ = std::move(listener); }
  /// After a message was queued on `stream`.
  void queued(const net::StreamSocket& stream);
  /// After the stack took a write of `stream`'s.
  void wrote(const net::StreamSocket& stream);
  /// `stream` is closed or about to be destroyed.
  void forget(const net::StreamSocket& stream) { forget_outlet(&stream); }
  /// What `socket`'s on_blocked() handler reports: true each time the kernel refused what
  /// it queued (again after a wait: the kernel took some, which counts as progress), false
  /// once everything it held has gone.
  void blocked(const net::DatagramSocket& socket, bool blocked);
  /// `socket` is closed or about to be destroyed.
  void forget(const net::DatagramSocket& socket) { forget_outlet(&socket); }
  /// Some stream or datagram socket is congested.
  [[nodiscard]] bool congested() const { return !congested_.empty(); }
  /// Writes completed on congested streams and datagram sockets so far (a paused reader's
  /// sign of progress).
  [[nodiscard]] std::uint64_t progress() const { return progress_; }
  /// How often some stream or datagram socket became congested.
  [[nodiscard]] std::uint64_t episodes() const { return episodes_; }

private:
  /// Marks `outlet` congested; false if it already was.
  bool add(const void* outlet);
  void forget_outlet(const void* outlet);
  void remove(std::size_t i);
  std::function<void(bool)> listener_;
  std::vector<const void*> congested_;  // streams and datagram sockets, by identity; few at a time
  std::uint64_t progress_ = 0, episodes_ = 0;
};

}  // namespace duet::transport
