// What the kernel's offloads leave to user space, as pure functions over bytes (no
// system calls, so they are unit-tested and fuzzed on their own):
//
// - A TUN device opened with IFF_VNET_HDR and TUNSETOFFLOAD hands out "super-packets":
//   one TCP (TSO) or UDP (USO) packet of up to 64 KiB with a virtio_net_hdr that says how
//   to cut it (gso_size) and where a checksum is still to be finished (NEEDS_CSUM).
//   `segment()` cuts it into the packets a peer expects, each with complete checksums.
// - Writing the other way, `Coalescer` merges consecutive in-order TCP segments of one
//   flow into one super-packet (user-space GRO), so the kernel's TCP sees one packet where
//   the wire carried forty.
//
// Both follow what Linux's own GSO/GRO do (tcp_gso_segment, tcp_gro_receive): only plain
// ACK/PSH segments merge, with equal IP fields, ACK numbers and TCP options, contiguous
// sequence numbers, and a valid checksum each; anything else passes through unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace duet::posix::offload {

/// struct virtio_net_hdr (legacy, 10 bytes, little endian as on every host we build for).
struct VnetHeader {
  static constexpr std::size_t kSize = 10;
  static constexpr std::uint8_t kNeedsChecksum = 1;  ///< VIRTIO_NET_HDR_F_NEEDS_CSUM
  static constexpr std::uint8_t kGsoNone = 0, kGsoTcp4 = 1, kGsoTcp6 = 4, kGsoUdpL4 = 5, kGsoEcn = 0x80;

  std::uint8_t flags = 0;
  std::uint8_t gso_type = kGsoNone;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;

  static VnetHeader parse(std::span<const std::uint8_t, kSize> bytes);
  void write(std::span<std::uint8_t, kSize> bytes) const;
};

/// True when the TCP or UDP checksum of a whole IPv4/IPv6 packet (no extension headers)
/// is right. Packets of other protocols, or too short to tell, are "valid" (the kernel
/// judges them).
bool transport_checksum_valid(std::span<const std::uint8_t> packet);

/// Cuts one packet read from a TUN with a virtio_net_hdr into the packets it stands for,
/// finishing every checksum, and calls `out` for each (the span is valid during the call).
/// A packet without GSO is passed on once (its checksum finished if asked). Returns false
/// for a packet whose header lies (lengths outside the packet, an unknown GSO type): it is
/// dropped, as the kernel would drop it.
bool segment(const VnetHeader& header, std::span<std::uint8_t> packet,
             const std::function<void(std::span<const std::uint8_t>)>& out);

/// The packets of one read, for a reader that hands them on together (Tun batches).
struct SegmentBatch {
  std::vector<std::uint8_t> storage;                   ///< the cut packets' bytes (capacity kept)
  std::vector<std::span<const std::uint8_t>> packets;  ///< into `storage`, or the read packet itself
};
/// segment() into `batch` (emptied first): every packet the read stands for, at once. A
/// packet that needs no cutting is not copied (its span is `packet`'s).
bool segment_into(const VnetHeader& header, std::span<std::uint8_t> packet, SegmentBatch& batch);

/// User-space GRO for the packets written to a TUN in one turn of the event loop.
class Coalescer {
public:
  /// Takes a copy of `packet`; it is merged into an earlier segment of its flow if it
  /// continues it, else it starts a new packet.
  void add(std::span<const std::uint8_t> packet);
  [[nodiscard]] bool empty() const { return used_ == 0; }
  [[nodiscard]] std::size_t pending() const { return used_; }
  /// Bytes held until the next flush.
  [[nodiscard]] std::size_t pending_bytes() const { return bytes_; }
  /// Calls `out` with each packet (merged ones with a GSO header and a partial checksum,
  /// others with an empty header), in the order their first segment arrived, then empties.
  void flush(const std::function<void(const VnetHeader&, std::span<const std::uint8_t>)>& out);
  /// Segments merged so far (a figure for the status).
  [[nodiscard]] std::uint64_t merged() const { return merged_; }

private:
  struct Item {
    std::vector<std::uint8_t> bytes;
    bool open = false;           ///< may take more segments
    std::size_t l3 = 0, l4 = 0;  ///< where TCP starts, and where the payload does
    std::size_t gso_size = 0;
    std::size_t segments = 0;
    std::uint32_t next_seq = 0;
  };
  /// True when `packet` (TCP at `l3`, payload at `l4`) is of the item's flow and headers.
  static bool same_flow(const Item& item, std::span<const std::uint8_t> packet, std::size_t l3, std::size_t l4);
  Item& next_item();

  std::vector<Item> items_;  ///< items_[0..used_) are in use; the rest keep their capacity
  std::size_t used_ = 0;
  std::size_t bytes_ = 0;
  std::uint64_t merged_ = 0;
  /// Items kept (with their buffers) between flushes; a burst beyond this is freed after.
  static constexpr std::size_t kKeptItems = 64;
};

}  // namespace duet::posix::offload
