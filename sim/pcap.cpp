// Packets as real IPv4/IPv6 bytes in a pcap file (LINKTYPE_RAW, nanosecond timestamps of
// virtual time), so tshark and Wireshark can read a simulated run.
#include <cstring>

#include "duet/net/checksum.hpp"
#include "world_impl.hpp"

namespace duet::sim {

namespace {

void put16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

std::uint8_t protocol_number(const Packet& p) {
  switch (p.proto) {
    case Proto::tcp:
      return 6;
    case Proto::udp:
      return 17;
    case Proto::icmp:
      return p.family() == Family::v4 ? 1 : 58;
  }
  return 0;
}

/// The IP packet; `limit_payload` cuts the transport payload (for quoted packets).
std::vector<std::uint8_t> serialize(const Packet& p, std::size_t limit_payload = SIZE_MAX) {
  const bool v4 = p.family() == Family::v4;
  const std::size_t ip_len = ip_header_size(p.family());
  std::vector<std::uint8_t> transport;
  switch (p.proto) {
    case Proto::udp:
      transport.resize(8);
      put16(transport, 0, p.sport);
      put16(transport, 2, p.dport);
      put16(transport, 4, static_cast<std::uint16_t>(8 + p.payload.size()));
      break;
    case Proto::tcp:
      transport.resize(20);
      put16(transport, 0, p.sport);
      put16(transport, 2, p.dport);
      put32(transport, 4, p.seq);
      put32(transport, 8, p.ack);
      transport[12] = 5 << 4;
      transport[13] = p.flags;
      put16(transport, 14, 65535);
      break;
    case Proto::icmp: {
      transport.resize(8);
      transport[0] = p.icmp_type;
      transport[1] = p.icmp_code;
      if (p.icmp_mtu != 0) {
        if (v4)
          put16(transport, 6, static_cast<std::uint16_t>(p.icmp_mtu));
        else
          put32(transport, 4, p.icmp_mtu);
      }
      if (p.quoted) {
        auto q = serialize(*p.quoted, 8);
        transport.insert(transport.end(), q.begin(), q.end());
      }
      break;
    }
  }
  const std::size_t payload = std::min(limit_payload, p.payload.size());
  transport.insert(transport.end(), p.payload.begin(), p.payload.begin() + static_cast<std::ptrdiff_t>(payload));

  // Transport checksum over the pseudo-header (none for ICMPv4).
  const std::size_t alen = p.src.byte_length();
  std::uint32_t sum = 0;
  if (!(p.proto == Proto::icmp && v4)) {
    sum = net::ones_sum(std::span(p.src.bytes()).first(alen));
    sum = net::ones_sum(std::span(p.dst.bytes()).first(alen), sum);
    sum += protocol_number(p);
    sum += static_cast<std::uint32_t>(transport.size());
  }
  const std::size_t checksum_at = p.proto == Proto::udp ? 6 : p.proto == Proto::tcp ? 16 : 2;
  if (limit_payload == SIZE_MAX) {  // quoted packets keep their checksum field zero
    std::uint16_t c = net::internet_checksum(transport, sum);
    if (p.proto == Proto::udp && c == 0) c = 0xffff;
    put16(transport, checksum_at, c);
  }

  std::vector<std::uint8_t> out(ip_len);
  const std::size_t total = ip_len + (limit_payload == SIZE_MAX ? transport.size() : p.size() - ip_len);
  if (v4) {
    out[0] = 0x45;
    put16(out, 2, static_cast<std::uint16_t>(std::min<std::size_t>(total, 65535)));
    put16(out, 4, static_cast<std::uint16_t>(p.id));
    out[6] = p.proto == Proto::tcp ? 0x40 : 0;  // DF for TCP
    out[8] = p.ttl;
    out[9] = protocol_number(p);
    std::memcpy(&out[12], p.src.bytes().data(), 4);
    std::memcpy(&out[16], p.dst.bytes().data(), 4);
    put16(out, 10, net::internet_checksum(std::span(out).first(20)));
  } else {
    out[0] = 0x60;
    put16(out, 4, static_cast<std::uint16_t>(std::min<std::size_t>(total - 40, 65535)));
    out[6] = protocol_number(p);
    out[7] = p.ttl;
    std::memcpy(&out[8], p.src.bytes().data(), 16);
    std::memcpy(&out[24], p.dst.bytes().data(), 16);
  }
  out.insert(out.end(), transport.begin(), transport.end());
  return out;
}

void write_le32(std::ofstream& f, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 24)};
  f.write(b, 4);
}

}  // namespace

void SimWorld::open_pcap(const std::string& path) {
  impl_->pcap.open(path, std::ios::binary | std::ios::trunc);
  if (!impl_->pcap) throw SimError("cannot write pcap file '" + path + "'");
  write_le32(impl_->pcap, 0xa1b23c4d);       // nanosecond-resolution pcap
  impl_->pcap.write("\x02\x00\x04\x00", 4);  // version 2.4
  write_le32(impl_->pcap, 0);                // thiszone
  write_le32(impl_->pcap, 0);                // sigfigs
  write_le32(impl_->pcap, 65535);            // snaplen
  write_le32(impl_->pcap, 101);              // LINKTYPE_RAW
}

void SimWorld::Impl::capture(const Packet& p) {
  if (!pcap.is_open()) return;
  const auto bytes = serialize(p);
  const auto ns = now().time_since_epoch().count();
  write_le32(pcap, static_cast<std::uint32_t>(ns / 1'000'000'000));
  write_le32(pcap, static_cast<std::uint32_t>(ns % 1'000'000'000));
  write_le32(pcap, static_cast<std::uint32_t>(bytes.size()));
  write_le32(pcap, static_cast<std::uint32_t>(bytes.size()));
  pcap.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace duet::sim
