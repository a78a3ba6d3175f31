// The user-space halves of the kernel's offloads (lib/posix/offload.cpp): super-packets
// from a TUN cut into the packets a peer expects, and segments merged back for the
// kernel. Every packet that leaves must carry right checksums and lengths, and merging
// must never change the byte stream or let a packet in that Linux's own GRO would keep
// apart.
#include <gtest/gtest.h>

#include <numeric>

#include "duet/net/checksum.hpp"
#include "duet/posix/offload.hpp"

using namespace duet::posix::offload;
using duet::net::ones_sum;
using duet::net::pseudo_header_sum;
using Bytes = std::vector<std::uint8_t>;

namespace {

void put16(Bytes& p, std::size_t at, std::uint16_t v) {
  p[at] = static_cast<std::uint8_t>(v >> 8);
  p[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(Bytes& p, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[at + i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
std::uint16_t get16(const Bytes& p, std::size_t at) { return static_cast<std::uint16_t>(p[at] << 8 | p[at + 1]); }
std::uint32_t get32(const Bytes& p, std::size_t at) {
  return std::uint32_t{p[at]} << 24 | std::uint32_t{p[at + 1]} << 16 | std::uint32_t{p[at + 2]} << 8 | p[at + 3];
}

struct Spec {
  int version = 4;
  std::uint8_t proto = 6;  // 6 TCP, 17 UDP
  std::size_t payload = 1000;
  std::uint32_t seq = 1000;
  std::uint32_t ack = 77;
  std::uint8_t flags = 0x10;  // ACK
  std::uint16_t sport = 40000, dport = 5201;
  std::size_t options = 0;  // bytes of TCP options (NOPs), a multiple of 4
  std::uint8_t payload_seed = 0;
};

std::size_t l3_len(const Spec& s) { return s.version == 4 ? 20 : 40; }
std::size_t l4_len(const Spec& s) { return s.proto == 6 ? 20 + s.options : 8; }

/// A whole packet with right lengths and checksums (the payload counts up from the seed).
Bytes packet(const Spec& s) {
  const std::size_t l3 = l3_len(s), l4 = l4_len(s);
  Bytes p(l3 + l4 + s.payload, 0);
  if (s.version == 4) {
    p[0] = 0x45;
    put16(p, 2, static_cast<std::uint16_t>(p.size()));
    put16(p, 4, 0x1234);
    p[6] = 0x40;  // DF
    p[8] = 64;
    p[9] = s.proto;
    const std::uint8_t src[] = {198, 18, 0, 1}, dst[] = {198, 18, 0, 2};
    std::copy(std::begin(src), std::end(src), p.begin() + 12);
    std::copy(std::begin(dst), std::end(dst), p.begin() + 16);
    put16(p, 10, static_cast<std::uint16_t>(~ones_sum(std::span(p).first(20))));
  } else {
    p[0] = 0x60;
    put16(p, 4, static_cast<std::uint16_t>(p.size() - 40));
    p[6] = s.proto;
    p[7] = 64;
    p[8] = 0xfd;
    p[23] = 1;
    p[24] = 0xfd;
    p[39] = 2;
  }
  put16(p, l3, s.sport);
  put16(p, l3 + 2, s.dport);
  if (s.proto == 6) {
    put32(p, l3 + 4, s.seq);
    put32(p, l3 + 8, s.ack);
    p[l3 + 12] = static_cast<std::uint8_t>((l4 / 4) << 4);
    p[l3 + 13] = s.flags;
    put16(p, l3 + 14, 512);
    for (std::size_t i = 0; i < s.options; ++i) p[l3 + 20 + i] = 1;  // NOP
  } else {
    put16(p, l3 + 4, static_cast<std::uint16_t>(l4 + s.payload));
  }
  for (std::size_t i = 0; i < s.payload; ++i) p[l3 + l4 + i] = static_cast<std::uint8_t>(s.payload_seed + i * 7);
  const std::size_t field = l3 + (s.proto == 6 ? 16 : 6);
  auto c =
      static_cast<std::uint16_t>(~ones_sum(std::span(p).subspan(l3), pseudo_header_sum(p, s.proto, p.size() - l3)));
  if (s.proto == 17 && c == 0) c = 0xffff;
  put16(p, field, c);
  return p;
}

/// What a TUN with TSO/USO hands out: one big packet, its transport checksum only the
/// pseudo-header's sum (NEEDS_CSUM), and the header saying how to cut it.
std::pair<VnetHeader, Bytes> super_packet(const Spec& s, std::uint16_t gso_size) {
  Bytes p = packet(s);
  const std::size_t l3 = l3_len(s);
  const std::size_t field = l3 + (s.proto == 6 ? 16 : 6);
  put16(p, field, ones_sum({}, pseudo_header_sum(p, s.proto, p.size() - l3)));
  VnetHeader h;
  h.flags = VnetHeader::kNeedsChecksum;
  h.gso_type = s.proto == 17 ? VnetHeader::kGsoUdpL4 : (s.version == 4 ? VnetHeader::kGsoTcp4 : VnetHeader::kGsoTcp6);
  h.gso_size = gso_size;
  h.hdr_len = static_cast<std::uint16_t>(l3 + l4_len(s));
  h.csum_start = static_cast<std::uint16_t>(l3);
  h.csum_offset = s.proto == 6 ? 16 : 6;
  return {h, p};
}

std::vector<Bytes> cut(VnetHeader h, Bytes p, bool* ok = nullptr) {
  std::vector<Bytes> out;
  const bool r = segment(h, p, [&](std::span<const std::uint8_t> s) { out.emplace_back(s.begin(), s.end()); });
  if (ok) *ok = r;
  return out;
}

bool ipv4_header_valid(const Bytes& p) { return ones_sum(std::span(p).first(20)) == 0xffff; }

}  // namespace

TEST(Offload, ChecksumIsRfc1071) {
  // RFC 1071's worked example: the sum of 0001 f203 f4f5 f6f7 is ddf2.
  const Bytes data = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(ones_sum(data), 0xddf2);
  // An odd length pads with a zero byte; a running sum continues.
  EXPECT_EQ(ones_sum(Bytes{0x01}), 0x0100);
  EXPECT_EQ(ones_sum(std::span(data).subspan(4), ones_sum(std::span(data).first(4))), 0xddf2);
  // Long inputs (the unrolled loop) agree with summing word by word.
  // Every length and alignment agrees with summing 16-bit words one by one, also where
  // the wide words carry (bytes of 0xff).
  auto slow = [](std::span<const std::uint8_t> d) {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < d.size(); i += 2) sum += (d[i] << 8) | (i + 1 < d.size() ? d[i + 1] : 0);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
  };
  Bytes big(1600);
  std::iota(big.begin(), big.end(), std::uint8_t{3});
  Bytes ones(1600, 0xff);
  for (const Bytes* d : {&big, &ones}) {
    for (std::size_t offset = 0; offset < 8; ++offset) {
      for (std::size_t len = 0; len + offset <= d->size(); len += (len < 80 ? 1 : 37)) {
        const auto part = std::span(*d).subspan(offset, len);
        ASSERT_EQ(ones_sum(part), slow(part)) << "length " << len << " at offset " << offset;
      }
    }
  }
}

TEST(Offload, TsoSuperPacketIsCutIntoValidSegments) {
  for (int version : {4, 6}) {
    SCOPED_TRACE(version);
    Spec s{
        .version = version, .payload = 10'000, .seq = 0xfffff000u, .flags = 0x10 | 0x08 | 0x01 | 0x80, .options = 12};
    const Bytes whole = packet(s);
    auto [h, p] = super_packet(s, 1388);
    const auto segs = cut(h, p);
    ASSERT_EQ(segs.size(), 8u);  // 7 × 1388 + 284
    const std::size_t headers = l3_len(s) + l4_len(s);
    Bytes stream;
    for (std::size_t i = 0; i < segs.size(); ++i) {
      const Bytes& g = segs[i];
      EXPECT_TRUE(transport_checksum_valid(g)) << "segment " << i;
      if (version == 4) {
        EXPECT_TRUE(ipv4_header_valid(g));
        EXPECT_EQ(get16(g, 2), g.size());
        EXPECT_EQ(get16(g, 4), 0x1234 + i) << "IPv4 IDs count up as the kernel's own TSO does";
      } else {
        EXPECT_EQ(get16(g, 4) + 40u, g.size());
      }
      const std::size_t l3 = l3_len(s);
      EXPECT_EQ(get32(g, l3 + 4), static_cast<std::uint32_t>(s.seq + i * 1388)) << "sequence numbers wrap like TCP's";
      const std::uint8_t f = g[l3 + 13];
      const bool last = i + 1 == segs.size();
      EXPECT_EQ((f & 0x09) != 0, last) << "FIN and PSH only on the last segment";
      EXPECT_EQ((f & 0x80) != 0, i == 0) << "CWR only on the first";
      stream.insert(stream.end(), g.begin() + static_cast<std::ptrdiff_t>(headers), g.end());
    }
    EXPECT_TRUE(
        std::equal(stream.begin(), stream.end(), whole.begin() + static_cast<std::ptrdiff_t>(headers), whole.end()))
        << "the payload, in order, is the super-packet's";
  }
}

TEST(Offload, UsoSuperPacketBecomesDatagramsWithTheirOwnLengths) {
  for (int version : {4, 6}) {
    SCOPED_TRACE(version);
    Spec s{.version = version, .proto = 17, .payload = 3 * 1200 + 17};
    auto [h, p] = super_packet(s, 1200);
    const auto segs = cut(h, p);
    ASSERT_EQ(segs.size(), 4u);
    for (std::size_t i = 0; i < segs.size(); ++i) {
      const Bytes& g = segs[i];
      const std::size_t l3 = l3_len(s);
      EXPECT_EQ(get16(g, l3 + 4), g.size() - l3) << "UDP length of datagram " << i;
      EXPECT_NE(get16(g, l3 + 6), 0) << "IPv6 forbids a zero UDP checksum";
      EXPECT_TRUE(transport_checksum_valid(g));
      if (version == 4) {
        EXPECT_TRUE(ipv4_header_valid(g));
      }
    }
    EXPECT_EQ(segs.back().size(), l3_len(s) + 8 + 17);
  }
}

TEST(Offload, PacketWithoutGsoGetsItsChecksumFinished) {
  Spec s{.payload = 333};
  const Bytes whole = packet(s);
  auto [h, p] = super_packet(s, 0);
  h.gso_type = VnetHeader::kGsoNone;
  EXPECT_FALSE(transport_checksum_valid(p)) << "only the pseudo-header is summed";
  const auto segs = cut(h, p);
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0], whole);
  // Without NEEDS_CSUM the packet passes untouched.
  const auto plain = cut(VnetHeader{}, whole);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0], whole);
}

TEST(Offload, LyingHeadersAreDroppedNotTrusted) {
  Spec s{.payload = 4000};
  auto [h, p] = super_packet(s, 1000);
  auto bad = [&](VnetHeader x, Bytes q, const char* why) {
    bool ok = true;
    const auto out = cut(x, std::move(q), &ok);
    EXPECT_FALSE(ok) << why;
    EXPECT_TRUE(out.empty()) << why;
  };
  VnetHeader x = h;
  x.csum_start = 60000;
  bad(x, p, "transport header beyond the packet");
  x = h;
  x.gso_size = 0;
  bad(x, p, "zero segment size");
  x = h;
  x.gso_type = VnetHeader::kGsoTcp6;
  bad(x, p, "IPv6 TSO on an IPv4 packet");
  x = h;
  x.gso_type = 3;  // UFO: never asked for
  bad(x, p, "unknown GSO type");
  bad(h, Bytes(p.begin(), p.begin() + 30), "cut short inside the TCP header");
  Bytes q = p;
  q[20 + 12] = 0xf0;  // TCP header of 60 bytes in a packet that has fewer before... still inside
  q.resize(20 + 40);
  bad(h, q, "TCP header longer than the packet");
  x = h;
  x.gso_type = VnetHeader::kGsoNone;
  x.csum_offset = 9000;
  bad(x, p, "checksum field beyond the packet");
  bad(h, Bytes{}, "empty");
}

namespace {
std::vector<std::pair<VnetHeader, Bytes>> merged(Coalescer& c) {
  std::vector<std::pair<VnetHeader, Bytes>> out;
  c.flush(
      [&](const VnetHeader& h, std::span<const std::uint8_t> p) { out.emplace_back(h, Bytes(p.begin(), p.end())); });
  return out;
}
}  // namespace

TEST(Offload, SegmentsOfOneFlowMergeAndCutBackToTheSame) {
  for (int version : {4, 6}) {
    SCOPED_TRACE(version);
    Spec s{.version = version, .payload = 20 * 1300, .options = 12};
    auto [h, p] = super_packet(s, 1300);
    const auto segs = cut(h, p);
    ASSERT_EQ(segs.size(), 20u);
    Coalescer c;
    for (const auto& g : segs) c.add(g);
    const auto out = merged(c);
    ASSERT_EQ(out.size(), 1u) << "one flow, in order: one packet for the kernel";
    const auto& [mh, mp] = out[0];
    EXPECT_EQ(mh.gso_type, version == 4 ? VnetHeader::kGsoTcp4 : VnetHeader::kGsoTcp6);
    EXPECT_EQ(mh.gso_size, 1300);
    EXPECT_EQ(mh.flags, VnetHeader::kNeedsChecksum);
    EXPECT_EQ(mh.csum_start, l3_len(s));
    EXPECT_EQ(mh.hdr_len, l3_len(s) + l4_len(s));
    if (version == 4) {
      EXPECT_TRUE(ipv4_header_valid(mp));
    }
    // What the kernel would do with it: cut it again. The result is what went in.
    const auto again = cut(mh, mp);
    ASSERT_EQ(again.size(), segs.size());
    for (std::size_t i = 0; i < segs.size(); ++i) {
      // IPv4 IDs are the first one's, counting up; everything else is byte for byte.
      Bytes a = again[i], b = segs[i];
      EXPECT_EQ(a, b) << "segment " << i;
    }
  }
}

TEST(Offload, OnlyWhatLinuxWouldMergeIsMerged) {
  auto count_out = [](const std::vector<Bytes>& in) {
    Coalescer c;
    for (const auto& p : in) c.add(p);
    return merged(c).size();
  };
  const Spec base{.payload = 1000};
  auto next = [](Spec s, int k) {
    s.seq += static_cast<std::uint32_t>(k * s.payload);
    return s;
  };
  // In order: one.
  EXPECT_EQ(count_out({packet(base), packet(next(base, 1)), packet(next(base, 2))}), 1u);
  // A gap in the sequence, or going back: kept apart.
  EXPECT_EQ(count_out({packet(base), packet(next(base, 2))}), 2u);
  EXPECT_EQ(count_out({packet(next(base, 1)), packet(base)}), 2u);
  // A different ACK number, TCP options, flags (SYN, FIN, RST, URG, ECE), or TTL: apart.
  Spec other_ack = next(base, 1);
  other_ack.ack += 1;
  EXPECT_EQ(count_out({packet(base), packet(other_ack)}), 2u);
  Spec opts = next(base, 1);
  opts.options = 4;
  EXPECT_EQ(count_out({packet(base), packet(opts)}), 2u);
  for (std::uint8_t f : {0x02, 0x01, 0x04, 0x20, 0x40}) {
    Spec odd = next(base, 1);
    odd.flags = static_cast<std::uint8_t>(0x10 | f);
    EXPECT_EQ(count_out({packet(base), packet(odd)}), 2u) << "flags " << int(f);
  }
  Bytes ttl = packet(next(base, 1));
  ttl[8] = 3;
  put16(ttl, 10, 0);
  put16(ttl, 10, static_cast<std::uint16_t>(~ones_sum(std::span(ttl).first(20))));
  EXPECT_EQ(count_out({packet(base), ttl}), 2u);
  // A broken checksum is never hidden inside a merged packet.
  Bytes broken = packet(next(base, 1));
  broken.back() ^= 0x55;
  EXPECT_EQ(count_out({packet(base), broken, packet(next(base, 2))}), 3u);
  // A bigger segment cannot follow a smaller one; a short segment or PSH ends a packet.
  Spec big = next(base, 1);
  big.payload = 1200;
  EXPECT_EQ(count_out({packet(base), packet(big)}), 2u);
  Spec small = next(base, 1);
  small.payload = 10;
  Spec after_small = next(base, 1);
  after_small.seq += 10;
  EXPECT_EQ(count_out({packet(base), packet(small), packet(after_small)}), 2u);
  Spec push = next(base, 1);
  push.flags = 0x18;
  EXPECT_EQ(count_out({packet(base), packet(push), packet(next(base, 2))}), 2u);
  // Pure ACKs, UDP and fragments pass one by one.
  Spec ack{.payload = 0};
  EXPECT_EQ(count_out({packet(ack), packet(ack)}), 2u);
  Spec udp{.proto = 17, .payload = 100};
  EXPECT_EQ(count_out({packet(udp), packet(udp)}), 2u);
  // Never more than 64 KiB in one packet.
  std::vector<Bytes> many;
  for (int k = 0; k < 70; ++k) many.push_back(packet(next(base, k)));
  EXPECT_EQ(count_out(many), 2u);
}

TEST(Offload, InterleavedFlowsMergeEachInItsOwnOrder) {
  Spec a{.payload = 500, .sport = 1000}, b{.payload = 500, .sport = 2000, .payload_seed = 9};
  Coalescer c;
  for (int k = 0; k < 10; ++k) {
    Spec x = a, y = b;
    x.seq += static_cast<std::uint32_t>(k * 500);
    y.seq += static_cast<std::uint32_t>(k * 500);
    c.add(packet(x));
    c.add(packet(y));
  }
  EXPECT_EQ(c.pending_bytes(), 2u * (40 + 5000)) << "what the TUN's queue bound counts";
  const auto out = merged(c);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(get16(out[0].second, 20), 1000) << "in the order each flow first arrived";
  EXPECT_EQ(out[0].second.size(), 40u + 5000);
  EXPECT_EQ(out[1].second.size(), 40u + 5000);
  EXPECT_EQ(c.merged(), 18u);
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.pending_bytes(), 0u);
}

TEST(Offload, GarbageNeverCrashesEitherHalf) {
  // Short, truncated and random packets: no crash, no read outside the packet (ASan).
  std::uint32_t x = 12345;
  auto rnd = [&] {
    x = x * 1664525 + 1013904223;
    return x >> 8;
  };
  Coalescer c;
  for (int i = 0; i < 3000; ++i) {
    Bytes p(rnd() % 200);
    for (auto& b : p) b = static_cast<std::uint8_t>(rnd());
    if (!p.empty() && i % 2) p[0] = static_cast<std::uint8_t>(i % 4 ? 0x45 : 0x60);
    VnetHeader h;
    h.flags = static_cast<std::uint8_t>(rnd() % 2);
    h.gso_type = static_cast<std::uint8_t>(rnd() % 6);
    h.gso_size = static_cast<std::uint16_t>(rnd() % 100);
    h.csum_start = static_cast<std::uint16_t>(rnd() % 80);
    h.csum_offset = static_cast<std::uint16_t>(rnd() % 20);
    (void)cut(h, p);
    c.add(p);
  }
  (void)merged(c);
  SUCCEED();
}
