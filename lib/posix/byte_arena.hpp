// Bytes appended to a buffer without being zeroed first: std::vector's resize writes zeros,
// which for a message then written in place (sealed into the queue it leaves from) costs as
// much as the copy the in-place write saves.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

namespace duet::posix::detail {

/// A growing byte buffer that keeps its capacity when cleared (nothing allocated in the
/// steady state) and hands out uninitialised room at its end.
class ByteArena {
public:
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::uint8_t* data() { return bytes_.get(); }
  [[nodiscard]] const std::uint8_t* data() const { return bytes_.get(); }

  /// `n` more bytes at the end, uninitialised, for the caller to write.
  std::span<std::uint8_t> grow(std::size_t n) {
    if (capacity_ - size_ < n) {
      const std::size_t wanted = std::max({capacity_ * 2, size_ + n, std::size_t{4096}});
      auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(wanted);
      if (size_ > 0) std::memcpy(bigger.get(), bytes_.get(), size_);
      bytes_ = std::move(bigger);
      capacity_ = wanted;
    }
    const std::span<std::uint8_t> room(bytes_.get() + size_, n);
    size_ += n;
    return room;
  }
  /// Gives back the end of what grow() handed out: the size becomes `size`.
  void shrink_to(std::size_t size) { size_ = std::min(size, size_); }
  /// Appends a copy of `bytes`.
  void append(std::span<const std::uint8_t> bytes) {
    if (!bytes.empty()) std::memcpy(grow(bytes.size()).data(), bytes.data(), bytes.size());
  }
  void clear() { size_ = 0; }
  void swap(ByteArena& other) noexcept {
    std::swap(bytes_, other.bytes_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

private:
  std::unique_ptr<std::uint8_t[]> bytes_;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace duet::posix::detail
