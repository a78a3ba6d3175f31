#include "duet/tunnel/allowed_ips.hpp"

#include <algorithm>
#include <bit>

namespace duet::tunnel {

AllowedIps::Bits AllowedIps::bits_of(const net::Address& a) {
  Bits b;
  if (a.is_v4()) {
    b.hi = std::uint64_t{a.v4_value()} << 32;
    return b;
  }
  const auto& x = a.bytes();
  for (int i = 0; i < 8; ++i) b.hi = b.hi << 8 | x[static_cast<std::size_t>(i)];
  for (int i = 8; i < 16; ++i) b.lo = b.lo << 8 | x[static_cast<std::size_t>(i)];
  return b;
}

AllowedIps::Bits AllowedIps::masked(Bits b, unsigned cidr) {
  if (cidr == 0) return {};
  if (cidr <= 64) return {b.hi & (~0ull << (64 - cidr)), 0};
  return {b.hi, b.lo & (~0ull << (128 - cidr))};
}

unsigned AllowedIps::common(const Bits& a, const Bits& b, unsigned limit) {
  unsigned n = 0;
  if (const auto x = a.hi ^ b.hi; x != 0) {
    n = static_cast<unsigned>(std::countl_zero(x));
  } else if (const auto y = a.lo ^ b.lo; y != 0) {
    n = 64 + static_cast<unsigned>(std::countl_zero(y));
  } else {
    n = 128;
  }
  return std::min(n, limit);
}

unsigned AllowedIps::bit(const Bits& b, unsigned i) {
  return i < 64 ? static_cast<unsigned>(b.hi >> (63 - i)) & 1u : static_cast<unsigned>(b.lo >> (127 - i)) & 1u;
}

std::uint32_t AllowedIps::make(const Bits& key, unsigned cidr, bool v6, PeerId peer, std::uint32_t parent) {
  if (peer != kNone && cidr == (v6 ? 128u : 32u)) (v6 ? hosts6_ : hosts4_)[key] = peer;
  Node n;
  n.key = key;
  n.cidr = static_cast<std::uint8_t>(cidr);
  n.v6 = v6;
  n.peer = peer;
  n.parent = parent;
  if (!free_.empty()) {
    const std::uint32_t i = free_.back();
    free_.pop_back();
    nodes_[i] = n;
    return i;
  }
  nodes_.push_back(n);
  return static_cast<std::uint32_t>(nodes_.size() - 1);
}

void AllowedIps::relink(std::uint32_t parent, std::uint32_t from, std::uint32_t to, bool v6) {
  if (parent == kNone) {
    (v6 ? root6_ : root4_) = to;
    return;
  }
  auto& c = nodes_[parent].child;
  (c[0] == from ? c[0] : c[1]) = to;
}

void AllowedIps::forget_node(PeerId peer, std::uint32_t n) {
  auto& list = of_peer_[peer];
  list.erase(std::find(list.begin(), list.end(), n));
}

std::optional<AllowedIps::PeerId> AllowedIps::insert(const net::Prefix& prefix, PeerId peer) {
  const bool v6 = prefix.address.is_v6();
  const unsigned len = std::min<unsigned>(prefix.length, v6 ? 128 : 32);
  const Bits k = masked(bits_of(prefix.address), len);
  if (of_peer_.size() <= peer) of_peer_.resize(peer + 1);
  std::uint32_t& root = v6 ? root6_ : root4_;
  if (root == kNone) {
    root = make(k, len, v6, peer, kNone);
    of_peer_[peer].push_back(root);
    ++held_;
    return std::nullopt;
  }
  std::uint32_t n = root;
  for (;;) {
    const unsigned cidr = nodes_[n].cidr;
    const unsigned cpl = common(k, nodes_[n].key, std::min(len, cidr));
    if (cpl < cidr) {
      // The new prefix leaves this node's path above it: it becomes this node's parent,
      // or both hang under a new branch where they part.
      const std::uint32_t parent = nodes_[n].parent;
      std::uint32_t m = kNone;
      if (cpl == len) {
        m = make(k, len, v6, peer, parent);
        nodes_[m].child[bit(nodes_[n].key, len)] = n;
        nodes_[n].parent = m;
        relink(parent, n, m, v6);
      } else {
        const std::uint32_t branch = make(masked(k, cpl), cpl, v6, kNone, parent);
        m = make(k, len, v6, peer, branch);
        nodes_[branch].child[bit(k, cpl)] = m;
        nodes_[branch].child[bit(nodes_[n].key, cpl)] = n;
        nodes_[n].parent = branch;
        relink(parent, n, branch, v6);
      }
      of_peer_[peer].push_back(m);
      ++held_;
      return std::nullopt;
    }
    if (cidr == len) {
      const PeerId old = nodes_[n].peer;
      if (old == peer) return std::nullopt;
      if (old != kNone)
        forget_node(old, n);
      else
        ++held_;
      nodes_[n].peer = peer;
      if (len == (v6 ? 128u : 32u)) (v6 ? hosts6_ : hosts4_)[k] = peer;
      of_peer_[peer].push_back(n);
      return old == kNone ? std::nullopt : std::optional<PeerId>(old);
    }
    const unsigned b = bit(k, cidr);
    const std::uint32_t c = nodes_[n].child[b];
    if (c == kNone) {
      const std::uint32_t m = make(k, len, v6, peer, n);
      nodes_[n].child[b] = m;
      of_peer_[peer].push_back(m);
      ++held_;
      return std::nullopt;
    }
    n = c;
  }
}

void AllowedIps::prune(std::uint32_t n) {
  // A node without a peer stays only as a branch of two.
  while (n != kNone) {
    const Node x = nodes_[n];
    if (x.peer != kNone) return;
    const bool left = x.child[0] != kNone, right = x.child[1] != kNone;
    if (left && right) return;
    const std::uint32_t only = left ? x.child[0] : x.child[1];
    if (only != kNone) nodes_[only].parent = x.parent;
    relink(x.parent, n, only, x.v6);
    nodes_[n] = Node{};
    free_.push_back(n);
    n = x.parent;
  }
}

bool AllowedIps::remove(const net::Prefix& prefix, PeerId peer) {
  const bool v6 = prefix.address.is_v6();
  const unsigned len = std::min<unsigned>(prefix.length, v6 ? 128 : 32);
  const Bits k = masked(bits_of(prefix.address), len);
  std::uint32_t n = v6 ? root6_ : root4_;
  while (n != kNone) {
    const Node& x = nodes_[n];
    if (x.cidr > len || common(k, x.key, x.cidr) < x.cidr) return false;
    if (x.cidr == len) {
      if (x.peer != peer) return false;
      forget_node(peer, n);
      nodes_[n].peer = kNone;
      if (len == (v6 ? 128u : 32u)) (v6 ? hosts6_ : hosts4_).erase(k);
      --held_;
      prune(n);
      return true;
    }
    n = x.child[bit(k, x.cidr)];
  }
  return false;
}

void AllowedIps::remove_peer(PeerId peer) {
  if (peer >= of_peer_.size()) return;
  const auto nodes = std::move(of_peer_[peer]);
  of_peer_[peer].clear();
  for (const std::uint32_t n : nodes) {
    nodes_[n].peer = kNone;
    if (nodes_[n].cidr == (nodes_[n].v6 ? 128 : 32)) (nodes_[n].v6 ? hosts6_ : hosts4_).erase(nodes_[n].key);
    --held_;
    prune(n);
  }
}

std::optional<AllowedIps::PeerId> AllowedIps::lookup(const net::Address& address) const {
  const bool v6 = address.is_v6();
  const unsigned max = v6 ? 128 : 32;
  const Bits k = bits_of(address);
  const auto& hosts = v6 ? hosts6_ : hosts4_;
  if (!hosts.empty()) {
    if (const auto it = hosts.find(k); it != hosts.end()) return it->second;
  }
  std::optional<PeerId> best;
  std::uint32_t n = v6 ? root6_ : root4_;
  while (n != kNone) {
    const Node& x = nodes_[n];
    if (common(k, x.key, x.cidr) < x.cidr) break;
    if (x.peer != kNone) best = x.peer;
    if (x.cidr >= max) break;
    n = x.child[bit(k, x.cidr)];
  }
  return best;
}

std::vector<net::Prefix> AllowedIps::prefixes_of(PeerId peer) const {
  std::vector<net::Prefix> out;
  if (peer >= of_peer_.size()) return out;
  for (const std::uint32_t n : of_peer_[peer]) {
    const Node& x = nodes_[n];
    net::Address a;
    if (!x.v6) {
      a = net::Address::v4(static_cast<std::uint32_t>(x.key.hi >> 32));
    } else {
      net::Address::Bytes b{};
      for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(x.key.hi >> (56 - 8 * i));
      for (int i = 0; i < 8; ++i)
        b[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(x.key.lo >> (56 - 8 * i));
      a = net::Address::v6(b);
    }
    out.push_back({a, x.cidr});
  }
  return out;
}

void AllowedIps::reserve(std::size_t prefixes) {
  // A prefix is a leaf, and at most one branch joins it to the rest.
  nodes_.reserve(nodes_.size() + 2 * prefixes);
}

std::size_t AllowedIps::memory() const {
  std::size_t m = nodes_.capacity() * sizeof(Node) + free_.capacity() * sizeof(std::uint32_t) +
                  of_peer_.capacity() * sizeof(std::vector<std::uint32_t>);
  for (const auto& l : of_peer_) m += l.capacity() * sizeof(std::uint32_t);
  // A hash node: the pair, the next pointer and the cached hash; plus the bucket.
  m += (hosts4_.size() + hosts6_.size()) * (sizeof(std::pair<Bits, PeerId>) + 2 * sizeof(void*) + sizeof(std::size_t));
  return m;
}

}  // namespace duet::tunnel
