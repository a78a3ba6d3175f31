#include "duet/transport/framing.hpp"

#include <string>

namespace duet::transport {

namespace {
class FramingCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "framing"; }
  std::string message(int ev) const override {
    switch (static_cast<FramingError>(ev)) {
      case FramingError::zero_length:
        return "message with length 0";
      case FramingError::oversized:
        return "message longer than allowed";
    }
    return "framing error";
  }
};
}  // namespace

const std::error_category& framing_category() {
  static const FramingCategory c;
  return c;
}
std::error_code make_error_code(FramingError e) { return {static_cast<int>(e), framing_category()}; }

std::vector<std::uint8_t> frame(std::span<const std::uint8_t> message) {
  std::vector<std::uint8_t> out;
  out.reserve(message.size() + 2);
  out.push_back(static_cast<std::uint8_t>(message.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(message.size()));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

std::error_code Deframer::feed(std::span<const std::uint8_t> bytes,
                               const std::function<void(std::span<const std::uint8_t>)>& on_message) {
  // Messages are handed out from where the bytes are: from `bytes` itself when nothing was
  // held over (the common case: no copy), else from the buffer they were appended to.
  const bool held = !buffer_.empty();
  if (held) buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  const std::span<const std::uint8_t> in = held ? std::span<const std::uint8_t>(buffer_) : bytes;
  std::size_t off = 0;
  while (in.size() - off >= 2) {
    const std::size_t len = (std::size_t{in[off]} << 8) | in[off + 1];
    if (len == 0 || len > max_) {
      buffer_.clear();
      return make_error_code(len == 0 ? FramingError::zero_length : FramingError::oversized);
    }
    if (in.size() - off - 2 < len) break;
    on_message(in.subspan(off + 2, len));
    off += 2 + len;
  }
  // Only the unfinished tail is kept.
  if (held) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(off));
  } else {
    buffer_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(off), bytes.end());
  }
  return {};
}

bool send_framed(net::StreamSocket& stream, std::span<const std::uint8_t> message, FlowControl* flow) {
  if (flow != nullptr ? !flow->admits(stream) : stream.queued() >= kStreamHighWater) return false;
  const std::uint8_t length[2] = {static_cast<std::uint8_t>(message.size() >> 8),
                                  static_cast<std::uint8_t>(message.size())};
  if (flow == nullptr) {
    stream.write_parts(length, message, [](std::error_code) {});
    return true;
  }
  stream.write_parts(length, message, [flow, &stream](std::error_code) { flow->wrote(stream); });
  flow->queued(stream);
  return true;
}

bool send_framed_filled(net::StreamSocket& stream, std::size_t capacity, net::Fill fill, FlowControl* flow) {
  if (flow != nullptr ? !flow->admits(stream) : stream.queued() >= kStreamHighWater) return false;
  // The length goes in front of the message once it is known: room for both, one write.
  auto framed = [&fill](std::span<std::uint8_t> room) -> std::size_t {
    const std::size_t n = fill(room.subspan(2));
    if (n == 0 || n > 0xffff) return 0;
    room[0] = static_cast<std::uint8_t>(n >> 8);
    room[1] = static_cast<std::uint8_t>(n);
    return n + 2;
  };
  if (flow == nullptr) {
    stream.write_filled(capacity + 2, framed, [](std::error_code) {});
    return true;
  }
  stream.write_filled(capacity + 2, framed, [flow, &stream](std::error_code) { flow->wrote(stream); });
  flow->queued(stream);
  return true;
}

}  // namespace duet::transport
