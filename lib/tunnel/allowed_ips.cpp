// Allowed IPs: which peer a destination belongs to (the longest matching prefix).
#include "wg_session.hpp"

namespace duet::tunnel {

std::optional<std::size_t> Device::peer_for_destination(const net::Address& dst) const {
  std::optional<std::size_t> best;
  int best_len = -1;
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i].removed) continue;
    for (const auto& p : peers_[i].config.allowed_ips) {
      if (p.contains(dst) && p.length > best_len) {
        best = i;
        best_len = p.length;
      }
    }
  }
  return best;
}

}  // namespace duet::tunnel
