// Backpressure from the outer TCP streams to the TUN device. A tunnel that drops whole
// messages when its outer stream is full costs the inner TCP dozens of segments per drop
// (a TUN read is a 64 KiB super-packet); one that stops reading the TUN instead lets the
// inner TCP see queueing, and the local sender's own limits (TCP small queues) hold it back.
//
// A stream is congested from the moment more than kStreamHighWater bytes wait in it until
// it drains to kStreamLowWater. While any stream is congested the node pauses its TUN
// reads. A stream that does not drain cannot hold the others: the node resumes after a
// while without progress, and that stream's messages past kMaxStreamQueue are dropped.
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
  /// Called with true when the first stream becomes congested, false when the last drains.
  void on_change(std::function<void(bool congested)> listener) { listener_ = std::move(listener); }
  /// After a message was queued on `stream`.
  void queued(const net::StreamSocket& stream);
  /// After the stack took a write of `stream`'s.
  void wrote(const net::StreamSocket& stream);
  /// `stream` is closed or about to be destroyed.
  void forget(const net::StreamSocket& stream);
  /// Some stream is congested.
  [[nodiscard]] bool congested() const { return !congested_.empty(); }
  /// Writes completed on congested streams so far (a paused reader's sign of progress).
  [[nodiscard]] std::uint64_t progress() const { return progress_; }
  /// How often some stream became congested.
  [[nodiscard]] std::uint64_t episodes() const { return episodes_; }

private:
  void remove(std::size_t i);
  std::function<void(bool)> listener_;
  std::vector<const net::StreamSocket*> congested_;  // few at a time
  std::uint64_t progress_ = 0, episodes_ = 0;
};

}  // namespace duet::transport
