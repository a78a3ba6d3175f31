// duet-bulk: bulk data with a known pattern, checked byte for byte on arrival, to prove a
// tunnel's packet path (TSO cut in user space, segments merged back, UDP GSO/GRO) delivers
// exactly what was sent.
//
//   duet-bulk tcp-receive PORT BYTES          listens, reads BYTES, checks them
//   duet-bulk tcp-send HOST PORT BYTES        connects and writes BYTES (says how many
//                                             segments it retransmitted)
//   duet-bulk udp-receive PORT COUNT SECONDS  counts intact datagrams for SECONDS (or COUNT)
//   duet-bulk udp-send HOST PORT COUNT SIZE   sends COUNT datagrams of SIZE bytes, 16 at a
//                                             time as one UDP GSO send (USO into a TUN)
// Exit 0 and "ok ..." when everything that arrived is intact (TCP: all of it arrived).
#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

/// The byte at `offset` of the stream (a cheap mix, different at every position).
std::uint8_t pattern(std::uint64_t offset) {
  std::uint64_t x = offset * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return static_cast<std::uint8_t>(x >> 13);
}

int fail(const std::string& why) {
  std::fprintf(stderr, "duet-bulk: %s\n", why.c_str());
  return 1;
}

int listen_on(int type, const char* port) {
  const int fd = ::socket(AF_INET6, type, 0);
  const int off = 0, on = 1;
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<std::uint16_t>(std::atoi(port)));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  if (type == SOCK_STREAM && ::listen(fd, 1) != 0) return -1;
  return fd;
}

int connect_to(int type, const char* host, const char* port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = type;
  if (::getaddrinfo(host, port, &hints, &res) != 0) return -1;
  const int fd = ::socket(res->ai_family, type, 0);
  const int r = ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  return r == 0 ? fd : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "--version") {
    std::printf("duet-bulk %s\n", DUET_VERSION);
    return 0;
  }
  if (cmd == "tcp-receive" && argc == 4) {
    const std::uint64_t want = std::strtoull(argv[3], nullptr, 10);
    const int l = listen_on(SOCK_STREAM, argv[2]);
    if (l < 0) return fail("cannot listen");
    std::printf("listening\n");
    std::fflush(stdout);
    const int fd = ::accept(l, nullptr, nullptr);
    std::vector<std::uint8_t> buf(1 << 16);
    std::uint64_t got = 0;
    while (got < want) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n <= 0) return fail("stream ended after " + std::to_string(got) + " of " + std::to_string(want) + " bytes");
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[static_cast<std::size_t>(i)] != pattern(got + static_cast<std::uint64_t>(i))) {
          return fail("byte " + std::to_string(got + static_cast<std::uint64_t>(i)) + " is wrong");
        }
      }
      got += static_cast<std::uint64_t>(n);
    }
    std::printf("ok %llu bytes intact\n", static_cast<unsigned long long>(got));
    return 0;
  }
  if (cmd == "tcp-send" && argc == 5) {
    const std::uint64_t total = std::strtoull(argv[4], nullptr, 10);
    const int fd = connect_to(SOCK_STREAM, argv[2], argv[3]);
    if (fd < 0) return fail("cannot connect");
    std::vector<std::uint8_t> buf(1 << 16);
    for (std::uint64_t sent = 0; sent < total;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), total - sent));
      for (std::size_t i = 0; i < n; ++i) buf[i] = pattern(sent + i);
      std::size_t off = 0;
      while (off < n) {
        const ssize_t w = ::write(fd, buf.data() + off, n - off);
        if (w <= 0) return fail("write failed");
        off += static_cast<std::size_t>(w);
      }
      sent += n;
    }
    ::shutdown(fd, SHUT_WR);
    char c;
    while (::read(fd, &c, 1) > 0) {
    }
    // What the connection had to send again (through a tunnel: the inner TCP's view).
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0) {
      std::printf("ok sent, %u of %u segments retransmitted\n", info.tcpi_total_retrans, info.tcpi_segs_out);
    } else {
      std::printf("ok sent\n");
    }
    return 0;
  }
  if (cmd == "udp-receive" && argc == 5) {
    const long want = std::atol(argv[3]);
    const int fd = listen_on(SOCK_DGRAM, argv[2]);
    if (fd < 0) return fail("cannot bind");
    std::printf("listening\n");
    std::fflush(stdout);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[4]));
    std::vector<std::uint8_t> buf(65536);
    long intact = 0, broken = 0;
    while (intact + broken < want && std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n < 8) {
        ++broken;
        continue;
      }
      std::uint64_t seq = 0;
      std::memcpy(&seq, buf.data(), 8);
      bool ok = true;
      for (ssize_t i = 8; i < n && ok; ++i)
        ok = buf[static_cast<std::size_t>(i)] == pattern(seq * 65536 + static_cast<std::uint64_t>(i));
      ok ? ++intact : ++broken;
    }
    std::printf("%s %ld intact, %ld broken\n", broken == 0 && intact > 0 ? "ok" : "FAIL", intact, broken);
    return broken == 0 && intact > 0 ? 0 : 1;
  }
  if (cmd == "udp-send" && argc == 6) {
    const long count = std::atol(argv[4]);
    const std::size_t size = static_cast<std::size_t>(std::atol(argv[5]));
    if (size < 8 || size > 8192) return fail("SIZE must be 8..8192");
    const int fd = connect_to(SOCK_DGRAM, argv[2], argv[3]);
    if (fd < 0) return fail("cannot connect");
    constexpr long kBurst = 16;
    std::vector<std::uint8_t> buf(size * kBurst);
    for (long first = 0; first < count; first += kBurst) {
      const long n = std::min(kBurst, count - first);
      for (long k = 0; k < n; ++k) {
        std::uint8_t* d = buf.data() + static_cast<std::size_t>(k) * size;
        const auto seq = static_cast<std::uint64_t>(first + k);
        std::memcpy(d, &seq, 8);
        for (std::size_t i = 8; i < size; ++i) d[i] = pattern(seq * 65536 + i);
      }
      // One send, cut by the kernel into n datagrams (UDP GSO); without it, one by one.
      const auto seg = static_cast<std::uint16_t>(size);
      if (::setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg) != 0 ||
          ::send(fd, buf.data(), size * static_cast<std::size_t>(n), 0) < 0) {
        for (long k = 0; k < n; ++k) (void)::send(fd, buf.data() + static_cast<std::size_t>(k) * size, size, 0);
      }
      ::usleep(200);  // a pace the receiver keeps up with
    }
    std::printf("ok sent %ld\n", count);
    return 0;
  }
  const bool help = cmd == "--help" || cmd == "-h";
  std::fprintf(help ? stdout : stderr,
               "usage: duet-bulk tcp-receive PORT BYTES | tcp-send HOST PORT BYTES |\n"
               "       udp-receive PORT COUNT SECONDS | udp-send HOST PORT COUNT SIZE\n");
  return help ? 0 : 2;
}
