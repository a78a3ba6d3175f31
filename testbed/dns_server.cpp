#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "testbed.hpp"

namespace duet::testbed {

// A DNS server on 127.0.0.1:53 of the namespace it runs in, answering A and AAAA
// questions as the scenario's [dns] says (per family where it says so: an AAAA question
// that is never answered, an A answer that comes late); other names get NXDOMAIN.
int dns_server(const sim::Scenario& s) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(53);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("duet-testbed dns: bind 127.0.0.1:53");
    return 1;
  }
  for (;;) {
    std::uint8_t q[512];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const ssize_t n = recvfrom(fd, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 17) continue;
    // One question: labels, then type and class.
    std::string name;
    std::size_t at = 12;
    while (at < static_cast<std::size_t>(n) && q[at] != 0 && q[at] < 64) {
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + at + 1),
                  std::min<std::size_t>(q[at], static_cast<std::size_t>(n) - at - 1));
      at += 1 + q[at];
    }
    if (at + 5 > static_cast<std::size_t>(n)) continue;
    const std::uint16_t type = static_cast<std::uint16_t>((q[at + 1] << 8) | q[at + 2]);
    const std::size_t question_end = at + 5;
    const auto it = s.dns.find(name);
    std::uint8_t rcode = 3;  // NXDOMAIN
    std::vector<net::Address> answers;
    net::Duration delay{0};
    if (it != s.dns.end()) {
      const auto& d = it->second;
      // A family's own answer (aaaa = "timeout", a = "4s"...) before the name's.
      const auto& own = type == 28 ? d.aaaa : type == 1 ? d.a : std::optional<sim::DnsAnswer::PerFamily>{};
      const auto kind = own ? own->kind : d.kind;
      delay = own ? own->delay : d.delay;
      if (kind == sim::DnsAnswer::Kind::timeout) continue;  // silence
      rcode = kind == sim::DnsAnswer::Kind::servfail ? 2 : kind == sim::DnsAnswer::Kind::nxdomain ? 3 : 0;
      for (const auto& r : d.records) {
        if (kind == sim::DnsAnswer::Kind::records && ((type == 1 && r.is_v4()) || (type == 28 && r.is_v6()))) {
          answers.push_back(r);
        }
      }
    }
    std::vector<std::uint8_t> out(q, q + question_end);
    out[2] = static_cast<std::uint8_t>(0x80 | (q[2] & 0x01));  // QR, RD copied
    out[3] = static_cast<std::uint8_t>(0x80 | rcode);          // RA
    out[4] = 0, out[5] = 1, out[6] = 0, out[7] = static_cast<std::uint8_t>(answers.size());
    out[8] = out[9] = out[10] = out[11] = 0;
    for (const auto& r : answers) {
      const std::size_t sz = r.is_v4() ? 4 : 16;
      const std::uint8_t rr[] = {0xc0, 0x0c, 0, static_cast<std::uint8_t>(type), 0, 1, 0, 0,
                                 0,    60,   0, static_cast<std::uint8_t>(sz)};
      out.insert(out.end(), rr, rr + sizeof rr);
      out.insert(out.end(), r.bytes().begin(), r.bytes().begin() + static_cast<std::ptrdiff_t>(sz));
    }
    std::thread([fd, out, from, delay] {
      std::this_thread::sleep_for(delay);
      (void)sendto(fd, out.data(), out.size(), 0, reinterpret_cast<const sockaddr*>(&from), sizeof from);
    }).detach();
  }
}

}  // namespace duet::testbed
