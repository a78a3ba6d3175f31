// Under load: cookies (a MAC of the sender's address under a secret that changes every
// 2 minutes) and the per-source limit on handshakes that carry one.
#include <algorithm>

#include "wg_session.hpp"

namespace duet::tunnel {

Mac Device::cookie_for(const net::Endpoint& source) {
  const auto now = clock_.now();
  if (!cookie_secret_at_ || now - *cookie_secret_at_ >= kCookieRefreshTime) {
    random_(cookie_secret_);
    cookie_secret_at_ = now;
  }
  const auto& a = source.address.bytes();
  Bytes who(a.begin(), a.begin() + (source.family() == net::Family::v4 ? 4 : 16));
  who.push_back(static_cast<std::uint8_t>(source.port >> 8));
  who.push_back(static_cast<std::uint8_t>(source.port));
  return mac(cookie_secret_, who);
}

bool Device::handshake_allowed(const net::Endpoint& source) {
  constexpr std::size_t kMaxSources = 8192;
  const auto now = clock_.now();
  const net::Duration cost = std::chrono::duration_cast<net::Duration>(std::chrono::seconds(1)) /
                             static_cast<long>(std::max<std::size_t>(limits_.handshakes_per_source, 1));
  const net::Duration capacity = cost * static_cast<long>(std::max<std::size_t>(limits_.handshake_burst, 1));
  std::uint64_t key = 0;
  const auto& b = source.address.bytes();
  for (std::size_t i = 0; i < (source.family() == net::Family::v4 ? 4u : 8u); ++i) key = key << 8 | b[i];
  const std::pair<bool, std::uint64_t> who{source.family() == net::Family::v6, key};
  auto it = buckets_.find(who);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxSources) {
      // Sources quiet for a second have full buckets: forgetting them changes nothing.
      std::erase_if(buckets_, [&](const auto& e) { return now - e.second.last >= std::chrono::seconds(1); });
      if (buckets_.size() >= kMaxSources) return false;  // that many busy sources: refuse newcomers
    }
    it = buckets_.emplace(who, Bucket{capacity, now}).first;
  }
  Bucket& k = it->second;
  k.tokens = std::min(capacity, k.tokens + (now - k.last));
  k.last = now;
  if (k.tokens < cost) return false;
  k.tokens -= cost;
  return true;
}

bool Device::under_load() const { return under_load_until_ && clock_.now() < *under_load_until_; }

}  // namespace duet::tunnel
