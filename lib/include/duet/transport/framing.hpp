// Messages over a byte stream (TCP, proxies): each carries a 2-byte big-endian length.
// Partial reads and coalesced messages are normal; a zero or oversized length is a
// protocol error that closes that one connection.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <system_error>
#include <vector>

#include "duet/net/network_stack.hpp"
#include "duet/transport/flow.hpp"

namespace duet::transport {

/// The largest session message the engine accepts on a stream (a jumbo frame plus
/// headers fits; anything longer is a broken or hostile peer).
constexpr std::size_t kMaxStreamMessage = 16384;

enum class FramingError { zero_length = 1, oversized };
const std::error_category& framing_category();
std::error_code make_error_code(FramingError e);

/// The bytes to write for one message (at most 65535 bytes).
std::vector<std::uint8_t> frame(std::span<const std::uint8_t> message);

/// Writes one framed message unless the stream already has too much waiting (the message
/// is then dropped, as a full interface queue drops); false when dropped. With `flow`,
/// the stream reports congestion there and `flow` says how much it may hold (see
/// flow.hpp); without, nobody holds the sender back and it is cut at kStreamHighWater. A
/// tunnel over TCP that queued without bound would grow without bound whenever the TUN
/// side is faster than the path, and the inner connections would see seconds of queue
/// instead of loss.
bool send_framed(net::StreamSocket& stream, std::span<const std::uint8_t> message, FlowControl* flow = nullptr);
/// send_framed() of the message `fill` writes (at most `capacity` bytes): written in place
/// at the end of the stream's queue, its 2-byte length in front of it, nothing copied.
bool send_framed_filled(net::StreamSocket& stream, std::size_t capacity, net::Fill fill, FlowControl* flow = nullptr);

class Deframer {
public:
  explicit Deframer(std::size_t max_message = kMaxStreamMessage) : max_(max_message) {}
  /// Consumes bytes, calling `on_message` for each complete message; stops at the first
  /// bad length and returns its error (the connection should then be closed).
  std::error_code feed(std::span<const std::uint8_t> bytes,
                       const std::function<void(std::span<const std::uint8_t>)>& on_message);
  /// Bytes held for an incomplete message.
  [[nodiscard]] std::size_t pending() const { return buffer_.size(); }

private:
  std::size_t max_;
  std::vector<std::uint8_t> buffer_;
};

}  // namespace duet::transport

template <>
struct std::is_error_code_enum<duet::transport::FramingError> : std::true_type {};
