// Cryptokey routing's table: which peer an inner address belongs to, by the longest
// matching allowed-IP prefix. One path-compressed binary trie per family (in the spirit of
// WireGuard's allowedips): a lookup walks at most the address's length in nodes, never the
// peers; a peer's prefixes are found and removed through its own list of nodes.
//
// Host prefixes (/32, /128: a server's usual one per client) are also kept in a hash
// table: being the longest possible match, a hit there ends the lookup in one probe.
//
// WireGuard's rules: a prefix belongs to one peer at a time (giving it to another moves
// it); the most specific prefix wins; a packet from a peer is accepted only when its
// source address looks up to that same peer.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "duet/net/address.hpp"

namespace duet::tunnel {

class AllowedIps {
public:
  using PeerId = std::uint32_t;

  /// Gives `prefix` (its network) to `peer`; returns the peer it was taken from, if another.
  std::optional<PeerId> insert(const net::Prefix& prefix, PeerId peer);
  /// Takes `prefix` away from `peer` (nothing when another peer holds it); true if removed.
  bool remove(const net::Prefix& prefix, PeerId peer);
  /// Takes every prefix of `peer` away.
  void remove_peer(PeerId peer);
  /// The peer whose longest prefix holds `address`.
  [[nodiscard]] std::optional<PeerId> lookup(const net::Address& address) const;
  /// The prefixes `peer` holds, in the order it got them.
  [[nodiscard]] std::vector<net::Prefix> prefixes_of(PeerId peer) const;
  /// Room for `prefixes` more prefixes, so a big table is not grown (and overgrown) step by step.
  void reserve(std::size_t prefixes);
  /// Prefixes held, by every peer.
  [[nodiscard]] std::size_t size() const { return held_; }
  /// Bytes of memory the table holds (nodes and per-peer lists), for the benchmarks.
  [[nodiscard]] std::size_t memory() const;

private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  /// An address as 128 bits, most significant first (IPv4 in the top 32).
  struct Bits {
    std::uint64_t hi = 0, lo = 0;
    bool operator==(const Bits&) const = default;
  };
  struct BitsHash {
    std::size_t operator()(const Bits& b) const {
      return std::hash<std::uint64_t>{}(b.hi * 0x9e3779b97f4a7c15ull ^ b.lo);
    }
  };
  struct Node {
    Bits key;  ///< the prefix, bits past `cidr` zero
    std::uint8_t cidr = 0;
    bool v6 = false;
    PeerId peer = kNone;  ///< kNone: a branch only
    std::uint32_t parent = kNone;
    std::array<std::uint32_t, 2> child{kNone, kNone};
  };

  static Bits bits_of(const net::Address& a);
  static Bits masked(Bits b, unsigned cidr);
  static unsigned common(const Bits& a, const Bits& b, unsigned limit);
  static unsigned bit(const Bits& b, unsigned i);
  std::uint32_t make(const Bits& key, unsigned cidr, bool v6, PeerId peer, std::uint32_t parent);
  void relink(std::uint32_t parent, std::uint32_t from, std::uint32_t to, bool v6);
  void prune(std::uint32_t n);
  void forget_node(PeerId peer, std::uint32_t n);

  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_;
  std::uint32_t root4_ = kNone, root6_ = kNone;
  std::vector<std::vector<std::uint32_t>> of_peer_;             ///< by peer id: its nodes
  std::unordered_map<Bits, PeerId, BitsHash> hosts4_, hosts6_;  ///< full-length prefixes
  std::size_t held_ = 0;
};

}  // namespace duet::tunnel
