// libFuzzer target for the offloaded packet path (lib/posix/offload.cpp). Two inputs an
// attacker may shape: the packets a peer tunnels to us (decrypted, then merged for the
// TUN by the Coalescer) and, less likely, what the kernel hands out with a virtio header.
// Neither may crash or read outside its packet; and whatever the Coalescer merges must cut
// back (as the kernel will) into segments with right checksums: merging never makes a
// broken packet look whole.
//
// Input: 10 bytes of virtio_net_hdr for segment(), then packets, each behind a 2-byte
// big-endian length, for the Coalescer.
#include <cstdlib>
#include <vector>

#include "duet/posix/offload.hpp"

using namespace duet::posix::offload;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < VnetHeader::kSize) return 0;
  const auto header = VnetHeader::parse(std::span<const std::uint8_t, VnetHeader::kSize>(data, VnetHeader::kSize));
  std::span<const std::uint8_t> rest(data + VnetHeader::kSize, size - VnetHeader::kSize);

  std::vector<std::uint8_t> copy(rest.begin(), rest.end());
  (void)segment(header, copy, [](std::span<const std::uint8_t> p) {
    if (p.size() > 65535 + 100) std::abort();
  });

  Coalescer c;
  while (rest.size() >= 2) {
    const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(rest[0] << 8 | rest[1]), rest.size() - 2);
    c.add(rest.subspan(2, n));
    rest = rest.subspan(2 + n);
  }
  c.flush([](const VnetHeader& h, std::span<const std::uint8_t> p) {
    if (h.gso_type == VnetHeader::kGsoNone) return;
    std::vector<std::uint8_t> merged(p.begin(), p.end());
    const bool ok = segment(h, merged, [](std::span<const std::uint8_t> s) {
      if (!transport_checksum_valid(s)) std::abort();  // a merged packet hid a bad segment
    });
    if (!ok) std::abort();  // the Coalescer wrote a header the kernel's rules refuse
  });
  return 0;
}
