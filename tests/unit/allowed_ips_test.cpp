// The allowed-IPs table against the plainest possible reference (every prefix in a list,
// the longest that contains an address wins) on random prefixes and addresses, and
// WireGuard's rules for overlapping, moved and removed prefixes.
#include <gtest/gtest.h>

#include <map>

#include "duet/sim/random.hpp"
#include "duet/tunnel/allowed_ips.hpp"

using namespace duet;
using tunnel::AllowedIps;

namespace {

net::Prefix pfx(const char* t) { return *net::Prefix::parse(t); }
net::Address addr(const char* t) { return *net::Address::parse(t); }

/// What the table must say: a map from (network) prefix to peer, searched whole.
struct Reference {
  std::map<net::Prefix, std::uint32_t> held;
  void insert(const net::Prefix& p, std::uint32_t peer) { held[p.network()] = peer; }
  void remove(const net::Prefix& p, std::uint32_t peer) {
    auto it = held.find(p.network());
    if (it != held.end() && it->second == peer) held.erase(it);
  }
  void remove_peer(std::uint32_t peer) {
    std::erase_if(held, [&](const auto& e) { return e.second == peer; });
  }
  std::optional<std::uint32_t> lookup(const net::Address& a) const {
    std::optional<std::uint32_t> best;
    int best_len = -1;
    for (const auto& [p, peer] : held) {
      if (p.contains(a) && p.length > best_len) {
        best = peer;
        best_len = p.length;
      }
    }
    return best;
  }
};

/// Addresses from a small pool of networks, so that random prefixes overlap often.
net::Address random_address(sim::Random& r, bool v6) {
  if (!v6) {
    static const std::uint32_t bases[] = {0xC6120000u, 0xC6128C00u, 0x0A000000u};  // 198.18/16, 198.18.140/24, 10/8
    return net::Address::v4(bases[r.below(3)] |
                            static_cast<std::uint32_t>(r.next() & (r.chance(0.5) ? 0xffu : 0xffffu)));
  }
  net::Address::Bytes b{0xfd, 0x00, 0, static_cast<std::uint8_t>(r.below(4))};
  for (std::size_t i = 4; i < 16; ++i) b[i] = r.chance(0.7) ? 0 : static_cast<std::uint8_t>(r.next());
  return net::Address::v6(b);
}

net::Prefix random_prefix(sim::Random& r, bool v6) {
  const auto a = random_address(r, v6);
  const unsigned max = v6 ? 128 : 32;
  const auto len = static_cast<std::uint8_t>(r.chance(0.2) ? max : r.below(max + 1));
  return net::Prefix{a, len}.network();
}

TEST(AllowedIps, MatchesABruteForceReferenceOnRandomPrefixesAndAddresses) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    sim::Random r(seed);
    AllowedIps table;
    Reference ref;
    for (int step = 0; step < 2000; ++step) {
      const bool v6 = r.chance(0.5);
      const auto peer = static_cast<std::uint32_t>(r.below(40));
      const double what = r.unit();
      if (what < 0.6) {
        const auto p = random_prefix(r, v6);
        table.insert(p, peer);
        ref.insert(p, peer);
      } else if (what < 0.8) {
        // Remove one the peer holds (or a random one, which is then a no-op or not).
        auto mine = table.prefixes_of(peer);
        const auto p = !mine.empty() && r.chance(0.8) ? mine[r.below(mine.size())] : random_prefix(r, v6);
        EXPECT_EQ(table.remove(p, peer), ref.held.contains(p.network()) && ref.held.at(p.network()) == peer);
        ref.remove(p, peer);
      } else if (what < 0.83) {
        table.remove_peer(peer);
        ref.remove_peer(peer);
      }
      const auto a = random_address(r, v6);
      ASSERT_EQ(table.lookup(a), ref.lookup(a)) << "seed " << seed << " step " << step << " " << a.to_string();
      ASSERT_EQ(table.size(), ref.held.size()) << "seed " << seed << " step " << step;
    }
    for (std::uint32_t peer = 0; peer < 40; ++peer) {
      auto got = table.prefixes_of(peer);
      std::sort(got.begin(), got.end());
      std::vector<net::Prefix> want;
      for (const auto& [p, owner] : ref.held) {
        if (owner == peer) want.push_back(p);
      }
      EXPECT_EQ(got, want) << "seed " << seed << " peer " << peer;
    }
  }
}

TEST(AllowedIps, TheMostSpecificPrefixWinsAndAPrefixGivenAgainMoves) {
  AllowedIps t;
  t.insert(pfx("0.0.0.0/0"), 1);
  t.insert(pfx("198.18.140.0/24"), 2);
  t.insert(pfx("198.18.140.7/32"), 3);
  t.insert(pfx("::/0"), 1);
  t.insert(pfx("fd00:140::/64"), 2);
  EXPECT_EQ(t.lookup(addr("198.18.140.7")), 3u);
  EXPECT_EQ(t.lookup(addr("198.18.140.8")), 2u);
  EXPECT_EQ(t.lookup(addr("203.0.113.1")), 1u);
  EXPECT_EQ(t.lookup(addr("fd00:140::9")), 2u);
  EXPECT_EQ(t.lookup(addr("fd00:141::9")), 1u);
  // WireGuard: a prefix belongs to one peer; giving it to another takes it from the first.
  EXPECT_EQ(t.insert(pfx("198.18.140.0/24"), 4), std::optional<std::uint32_t>(2));
  EXPECT_EQ(t.lookup(addr("198.18.140.8")), 4u);
  EXPECT_TRUE(t.prefixes_of(2) == std::vector<net::Prefix>{pfx("fd00:140::/64")});
  // The same prefix written twice for one peer is held once.
  EXPECT_EQ(t.insert(pfx("198.18.140.0/24"), 4), std::nullopt);
  EXPECT_EQ(t.size(), 5u);
  // Host bits are ignored: 198.18.140.9/24 is 198.18.140.0/24.
  EXPECT_EQ(t.insert(pfx("198.18.140.9/24"), 4), std::nullopt);
  EXPECT_EQ(t.size(), 5u);
}

TEST(AllowedIps, RemovalLeavesTheRestAndReAddWorks) {
  AllowedIps t;
  for (int i = 0; i < 256; ++i) {
    t.insert(net::Prefix{net::Address::v4(0xC6128C00u | static_cast<std::uint32_t>(i)), 32},
             static_cast<std::uint32_t>(i));
  }
  t.insert(pfx("198.18.140.0/24"), 1000);
  for (int i = 0; i < 256; i += 2) t.remove_peer(static_cast<std::uint32_t>(i));
  EXPECT_EQ(t.lookup(addr("198.18.140.4")), 1000u) << "the /24 covers what the removed /32 held";
  EXPECT_EQ(t.lookup(addr("198.18.140.5")), 5u);
  EXPECT_FALSE(t.remove(pfx("198.18.140.5/32"), 6)) << "a prefix is removed only by its holder";
  EXPECT_TRUE(t.remove(pfx("198.18.140.5/32"), 5));
  EXPECT_EQ(t.lookup(addr("198.18.140.5")), 1000u);
  t.remove_peer(1000);
  EXPECT_EQ(t.lookup(addr("198.18.140.4")), std::nullopt);
  EXPECT_EQ(t.size(), 127u);
  t.insert(pfx("198.18.140.4/32"), 4);
  EXPECT_EQ(t.lookup(addr("198.18.140.4")), 4u);
}

TEST(AllowedIps, FamiliesNeverMix) {
  AllowedIps t;
  t.insert(pfx("0.0.0.0/0"), 1);
  EXPECT_EQ(t.lookup(addr("::1")), std::nullopt);
  EXPECT_EQ(t.lookup(addr("::ffff:198.18.0.1")), std::nullopt);
  t.insert(pfx("::/0"), 2);
  EXPECT_EQ(t.lookup(addr("198.18.0.1")), 1u);
  EXPECT_EQ(t.lookup(addr("fd00::1")), 2u);
}

}  // namespace
