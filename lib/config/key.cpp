#include "duet/config/key.hpp"

#include <sodium.h>

namespace duet::config {

std::string key_to_base64(const Key& key) {
  char buf[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(buf, sizeof buf, key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
  return buf;
}

std::optional<Key> key_from_base64(std::string_view text) {
  if (text.size() != 44) return std::nullopt;
  Key k;
  std::size_t len = 0;
  if (sodium_base642bin(k.data(), k.size(), text.data(), text.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != 32) {
    return std::nullopt;
  }
  return k;
}

}  // namespace duet::config
