// WireGuard's key text: standard base64 of 32 bytes (44 characters), as `wg` writes it.
// The configuration reads keys in this form; the tunnel uses the bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace duet::config {

using Key = std::array<std::uint8_t, 32>;

/// The 44-character base64 form of a key.
std::string key_to_base64(const Key& key);
/// A key from its base64 form; nullopt unless it is exactly 32 bytes of valid base64.
std::optional<Key> key_from_base64(std::string_view text);

}  // namespace duet::config
