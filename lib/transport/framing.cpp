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
  if (buffer_.empty()) {
    // Nothing held over: whole messages are handed out from `bytes` itself, and only
    // the unfinished tail is kept.
    std::size_t off = 0;
    while (bytes.size() - off >= 2) {
      const std::size_t len = (std::size_t{bytes[off]} << 8) | bytes[off + 1];
      if (len == 0) return make_error_code(FramingError::zero_length);
      if (len > max_) return make_error_code(FramingError::oversized);
      if (bytes.size() - off - 2 < len) break;
      on_message(bytes.subspan(off + 2, len));
      off += 2 + len;
    }
    buffer_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(off), bytes.end());
    return {};
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  std::size_t off = 0;
  std::error_code ec;
  while (buffer_.size() - off >= 2) {
    const std::size_t len = (std::size_t{buffer_[off]} << 8) | buffer_[off + 1];
    if (len == 0) {
      ec = make_error_code(FramingError::zero_length);
      break;
    }
    if (len > max_) {
      ec = make_error_code(FramingError::oversized);
      break;
    }
    if (buffer_.size() - off - 2 < len) break;
    on_message(std::span<const std::uint8_t>(buffer_.data() + off + 2, len));
    off += 2 + len;
  }
  if (ec) {
    buffer_.clear();
    return ec;
  }
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(off));
  return {};
}

bool send_framed(net::StreamSocket& stream, std::span<const std::uint8_t> message, FlowControl* flow) {
  if (stream.queued() >= (flow != nullptr ? kMaxStreamQueue : kStreamHighWater)) return false;
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

}  // namespace duet::transport
