#include "duet/posix/offload.hpp"

#include "duet/net/checksum.hpp"
#include "duet/net/ip_header.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace duet::posix::offload {

using net::ones_sum;
using net::pseudo_header_sum;

namespace {

constexpr std::uint8_t kTcp = 6, kUdp = 17;
constexpr std::uint8_t kFin = 0x01, kPsh = 0x08, kAck = 0x10, kCwr = 0x80;
/// The most one read may become once cut (see segment_into).
constexpr std::size_t kMaxSegmentedBytes = 1 << 20;

std::uint16_t get16(std::span<const std::uint8_t> p, std::size_t at) {
  return static_cast<std::uint16_t>(p[at] << 8 | p[at + 1]);
}
std::uint32_t get32(std::span<const std::uint8_t> p, std::size_t at) {
  return std::uint32_t{p[at]} << 24 | std::uint32_t{p[at + 1]} << 16 | std::uint32_t{p[at + 2]} << 8 | p[at + 3];
}
void put16(std::span<std::uint8_t> p, std::size_t at, std::uint16_t v) {
  p[at] = static_cast<std::uint8_t>(v >> 8);
  p[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(std::span<std::uint8_t> p, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[at + i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

/// Where the transport header starts and which protocol it is, from the IP header alone;
/// {0, 0, 0} when the packet is not plain IPv4/IPv6.
struct L3 {
  std::size_t length = 0;
  std::uint8_t proto = 0;
  int version = 0;
};
L3 parse_l3(std::span<const std::uint8_t> p) {
  const auto h = net::parse_ip_header(p);
  if (!h) return {};
  return {h->header_length, h->protocol, h->version};
}

/// Writes the IPv4 header checksum of the `ihl`-byte header at the start of `p`.
void ipv4_header_checksum(std::span<std::uint8_t> p, std::size_t ihl) {
  put16(p, 10, 0);
  put16(p, 10, static_cast<std::uint16_t>(~ones_sum(p.first(ihl))));
}

/// Sets the IP length fields of a packet of `total` bytes whose header is `l3` long.
void set_ip_length(std::span<std::uint8_t> p, int version, std::size_t l3, std::size_t total) {
  if (version == 4) {
    put16(p, 2, static_cast<std::uint16_t>(total));
    ipv4_header_checksum(p, l3);
  } else {
    put16(p, 4, static_cast<std::uint16_t>(total - 40));
  }
}

/// The full checksum of the TCP or UDP segment at `l4` (its checksum field is zeroed first).
void finish_l4_checksum(std::span<std::uint8_t> p, std::size_t l4, std::uint8_t proto) {
  const std::size_t field = l4 + (proto == kTcp ? 16 : 6);
  put16(p, field, 0);
  const auto sum = ones_sum(p.subspan(l4), pseudo_header_sum(p, proto, p.size() - l4));
  auto c = static_cast<std::uint16_t>(~sum);
  if (proto == kUdp && c == 0) c = 0xffff;  // 0 means "no checksum" in UDP
  put16(p, field, c);
}

}  // namespace

VnetHeader VnetHeader::parse(std::span<const std::uint8_t, kSize> b) {
  auto le16 = [&](std::size_t at) { return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8); };
  return {b[0], b[1], le16(2), le16(4), le16(6), le16(8)};
}

void VnetHeader::write(std::span<std::uint8_t, kSize> b) const {
  auto le16 = [&](std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v);
    b[at + 1] = static_cast<std::uint8_t>(v >> 8);
  };
  b[0] = flags;
  b[1] = gso_type;
  le16(2, hdr_len);
  le16(4, gso_size);
  le16(6, csum_start);
  le16(8, csum_offset);
}

bool transport_checksum_valid(std::span<const std::uint8_t> p) {
  const L3 l3 = parse_l3(p);
  if (l3.length == 0 || (l3.proto != kTcp && l3.proto != kUdp)) return true;
  const std::size_t min = l3.proto == kTcp ? 20 : 8;
  if (p.size() < l3.length + min) return true;
  if (l3.proto == kUdp && get16(p, l3.length + 6) == 0) return l3.version == 4;  // IPv4 may omit it
  return ones_sum(p.subspan(l3.length), pseudo_header_sum(p, l3.proto, p.size() - l3.length)) == 0xffff;
}

bool segment(const VnetHeader& h, std::span<std::uint8_t> p,
             const std::function<void(std::span<const std::uint8_t>)>& out) {
  thread_local SegmentBatch batch;
  if (!segment_into(h, p, batch)) return false;
  for (const auto packet : batch.packets) out(packet);
  return true;
}

bool segment_into(const VnetHeader& h, std::span<std::uint8_t> p, SegmentBatch& batch) {
  batch.packets.clear();
  auto out = [&batch](std::span<const std::uint8_t> packet) { batch.packets.push_back(packet); };
  const std::uint8_t type = h.gso_type & static_cast<std::uint8_t>(~VnetHeader::kGsoEcn);
  if (type == VnetHeader::kGsoNone) {
    if (h.flags & VnetHeader::kNeedsChecksum) {
      // The kernel summed the pseudo-header into the field; the rest is ours to add.
      const std::size_t field = std::size_t{h.csum_start} + h.csum_offset;
      if (h.csum_start >= p.size() || field + 2 > p.size()) return false;
      auto c = static_cast<std::uint16_t>(~ones_sum(p.subspan(h.csum_start)));
      if (c == 0 && parse_l3(p).proto == kUdp) c = 0xffff;
      put16(p, field, c);
    }
    out(p);
    return true;
  }
  const L3 l3 = parse_l3(p);
  const bool tcp = type == VnetHeader::kGsoTcp4 || type == VnetHeader::kGsoTcp6;
  if (l3.length == 0 || (!tcp && type != VnetHeader::kGsoUdpL4)) return false;
  if ((type == VnetHeader::kGsoTcp4 && l3.version != 4) || (type == VnetHeader::kGsoTcp6 && l3.version != 6))
    return false;
  // With extension headers (IPv6) the kernel's csum_start is where TCP/UDP begins.
  const std::size_t l4 = (h.flags & VnetHeader::kNeedsChecksum) ? h.csum_start : l3.length;
  if (l4 < l3.length || l4 + (tcp ? 20 : 8) > p.size()) return false;
  const std::uint8_t proto = tcp ? kTcp : kUdp;
  const std::size_t l4_header = tcp ? static_cast<std::size_t>(p[l4 + 12] >> 4) * 4 : 8;
  const std::size_t headers = l4 + l4_header;
  if (l4_header < (tcp ? 20u : 8u) || headers > p.size() || h.gso_size == 0) return false;
  const std::size_t payload = p.size() - headers;
  if (payload <= h.gso_size) {  // one segment after all: only the checksum to finish
    finish_l4_checksum(p, l4, proto);
    out(p);
    return true;
  }
  // Every segment side by side: its own copy of the headers, then its part of the payload.
  const std::size_t count = (payload + h.gso_size - 1) / h.gso_size;
  // A header that cuts 64 KiB into thousands of slivers with long headers would make us
  // hold megabytes: no kernel sends that (TCP's smallest MSS is 48 bytes), so it lies.
  if (count * headers + payload > kMaxSegmentedBytes) return false;
  if (batch.storage.size() < count * headers + payload) batch.storage.resize(count * headers + payload);
  std::uint8_t* at = batch.storage.data();
  const std::uint32_t seq = tcp ? get32(p, l4 + 4) : 0;
  const std::uint16_t id = l3.version == 4 ? get16(p, 4) : 0;
  const std::uint8_t flags = tcp ? p[l4 + 13] : 0;
  std::size_t i = 0;
  for (std::size_t offset = 0; offset < payload; offset += h.gso_size, ++i) {
    const std::size_t n = std::min<std::size_t>(h.gso_size, payload - offset);
    std::span<std::uint8_t> s(at, headers + n);
    at += headers + n;
    std::memcpy(s.data(), p.data(), headers);
    std::memcpy(s.data() + headers, p.data() + headers + offset, n);
    set_ip_length(s, l3.version, l3.length, s.size());
    if (l3.version == 4) {
      put16(s, 4, static_cast<std::uint16_t>(id + i));
      ipv4_header_checksum(s, l3.length);
    }
    if (tcp) {
      put32(s, l4 + 4, seq + static_cast<std::uint32_t>(offset));
      std::uint8_t f = flags;
      if (offset + n < payload) f &= static_cast<std::uint8_t>(~(kFin | kPsh));  // only the last one ends or pushes
      if (offset > 0) f &= static_cast<std::uint8_t>(~kCwr);                     // only the first one says CWR
      s[l4 + 13] = f;
    } else {
      put16(s, l4 + 4, static_cast<std::uint16_t>(8 + n));
    }
    finish_l4_checksum(s, l4, proto);
    out(s);
  }
  return true;
}

// ---------------------------------------------------------------------------------------

Coalescer::Item& Coalescer::next_item() {
  if (used_ == items_.size()) items_.emplace_back();
  Item& it = items_[used_++];
  it.bytes.clear();
  it.open = false;
  it.segments = 1;
  return it;
}

bool Coalescer::same_flow(const Item& it, std::span<const std::uint8_t> p, std::size_t l3, std::size_t l4) {
  const std::span<const std::uint8_t> first(it.bytes);
  // Same flow: equal IP fields (but lengths, ID and checksum), ports, ACK, header length.
  const bool v4 = (p[0] >> 4) == 4;
  if (it.l3 != l3 || it.l4 != l4) return false;
  if (v4) {
    if (std::memcmp(first.data(), p.data(), 2) != 0 || std::memcmp(first.data() + 6, p.data() + 6, 4) != 0 ||
        std::memcmp(first.data() + 12, p.data() + 12, 8) != 0) {
      return false;
    }
  } else if (std::memcmp(first.data(), p.data(), 4) != 0 || std::memcmp(first.data() + 6, p.data() + 6, 34) != 0) {
    return false;
  }
  const std::size_t tcp_len = l4 - l3;
  if (std::memcmp(first.data() + l3, p.data() + l3, 4) != 0 ||                       // ports
      std::memcmp(first.data() + l3 + 8, p.data() + l3 + 8, 4) != 0 ||               // acknowledgment
      std::memcmp(first.data() + l3 + 20, p.data() + l3 + 20, tcp_len - 20) != 0) {  // options
    return false;
  }
  return true;
}

void Coalescer::add(std::span<const std::uint8_t> p) {
  // Which packets may merge at all: plain IPv4 (no options, not a fragment) or IPv6 (TCP
  // right after the fixed header), lengths that match, ACK with data, nothing but PSH
  // besides, and a right checksum (a merged packet's segments are not checked again).
  const L3 l3 = parse_l3(p);
  bool eligible = l3.length != 0 && l3.proto == kTcp && p.size() >= l3.length + 20;
  if (eligible && l3.version == 4) {
    eligible = l3.length == 20 && get16(p, 2) == p.size() && (get16(p, 6) & 0x3fff) == 0;
  } else if (eligible) {
    eligible = get16(p, 4) + 40u == p.size();
  }
  std::size_t l4 = 0;
  std::uint8_t flags = 0;
  if (eligible) {
    l4 = l3.length + static_cast<std::size_t>(p[l3.length + 12] >> 4) * 4;
    flags = p[l3.length + 13];
    eligible = l4 >= l3.length + 20 && l4 < p.size() && (flags & kAck) != 0 && (flags & ~(kAck | kPsh)) == 0 &&
               transport_checksum_valid(p);
  }
  if (eligible) {
    const std::size_t payload = p.size() - l4;
    const std::uint32_t seq = get32(p, l3.length + 4);
    // The flow's latest item, among the last few (a flush holds a handful of flows).
    const std::size_t lookback = std::min<std::size_t>(used_, 8);
    for (std::size_t k = 0; k < lookback; ++k) {
      Item& it = items_[used_ - 1 - k];
      if (!it.open || !same_flow(it, p, l3.length, l4)) continue;
      if (it.next_seq == seq && payload <= it.gso_size && it.bytes.size() + payload <= 65535) {
        it.bytes.insert(it.bytes.end(), p.begin() + static_cast<std::ptrdiff_t>(l4), p.end());
        bytes_ += payload;
        std::memcpy(it.bytes.data() + l3.length + 14, p.data() + l3.length + 14, 2);  // newest window
        it.bytes[l3.length + 13] |= flags & kPsh;
        it.next_seq = seq + static_cast<std::uint32_t>(payload);
        ++it.segments;
        ++merged_;
        if (payload < it.gso_size || (flags & kPsh)) it.open = false;  // a short or pushed segment ends it
        return;
      }
      it.open = false;  // the flow went on in a way this item cannot take: keep the order
      break;
    }
  }
  Item& it = next_item();
  it.bytes.assign(p.begin(), p.end());
  bytes_ += p.size();
  if (eligible) {
    it.open = (flags & kPsh) == 0;
    it.l3 = l3.length;
    it.l4 = l4;
    it.gso_size = p.size() - l4;
    it.next_seq = get32(p, l3.length + 4) + static_cast<std::uint32_t>(it.gso_size);
  }
}

void Coalescer::flush(const std::function<void(const VnetHeader&, std::span<const std::uint8_t>)>& out) {
  for (std::size_t i = 0; i < used_; ++i) {
    Item& it = items_[i];
    VnetHeader h;
    if (it.segments > 1) {
      std::span<std::uint8_t> p(it.bytes);
      const int version = p[0] >> 4;
      set_ip_length(p, version, it.l3, p.size());
      // A partial checksum, as the kernel's own TSO leaves it: the pseudo-header's sum.
      put16(p, it.l3 + 16, ones_sum({}, pseudo_header_sum(p, kTcp, p.size() - it.l3)));
      h.flags = VnetHeader::kNeedsChecksum;
      h.gso_type = version == 4 ? VnetHeader::kGsoTcp4 : VnetHeader::kGsoTcp6;
      h.hdr_len = static_cast<std::uint16_t>(it.l4);
      h.gso_size = static_cast<std::uint16_t>(it.gso_size);
      h.csum_start = static_cast<std::uint16_t>(it.l3);
      h.csum_offset = 16;
    }
    out(h, it.bytes);
  }
  used_ = 0;
  bytes_ = 0;
  if (items_.size() > kKeptItems) items_.resize(kKeptItems);  // a burst's buffers go back
}

}  // namespace duet::posix::offload
