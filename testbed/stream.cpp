// The testbed's clock: a scenario's times are instants on one timeline (t0 + at), and the
// simulator acts at exactly those instants. Two helpers keep the kernel's actions on them:
//   stream       a [[send]] stream: an ICMP echo request through an instance's TUN at every
//                t0 + at + k * every (absolute wake-ups, not ping's interval after its own
//                start-up), so the stream's phase against a fault is the simulator's; path
//                health needs the answers, so they are read and counted;
//   sleep_until  waits for one absolute instant (the plan's timeline: faults, starts), where
//                bash's `date` and `sleep` each cost a fork and drift by milliseconds.
#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <iostream>
#include <span>
#include <string>

#include "duet/net/checksum.hpp"
#include "testbed.hpp"

namespace duet::testbed {

namespace {

timespec at_unix_ms(long long ms) { return timespec{static_cast<time_t>(ms / 1000), (ms % 1000) * 1'000'000}; }

long long now_unix_ms() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<long long>(t.tv_sec) * 1000 + t.tv_nsec / 1'000'000;
}

/// Sleeps until `ms` (Unix milliseconds) has come; at once if it has.
void wait_until(long long ms) {
  const timespec t = at_unix_ms(ms);
  while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &t, nullptr) == EINTR) {
  }
}

}  // namespace

int sleep_until(long long unix_ms) {
  wait_until(unix_ms);
  return 0;
}

int stream(const std::string& device, const std::string& destination, long long start_ms, long long every_ms,
           long long end_ms) {
  sockaddr_storage to{};
  socklen_t to_len = 0;
  const bool v6 = destination.find(':') != std::string::npos;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&to);
    a->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, destination.c_str(), &a->sin6_addr) != 1) {
      std::cerr << "stream: not an address: " << destination << "\n";
      return 2;
    }
    to_len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&to);
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, destination.c_str(), &a->sin_addr) != 1) {
      std::cerr << "stream: not an address: " << destination << "\n";
      return 2;
    }
    to_len = sizeof *a;
  }
  if (every_ms <= 0) {
    std::cerr << "stream: the interval must be positive\n";
    return 2;
  }
  // A raw ICMP socket (the testbed runs as root) bound to the instance's TUN, as ping -I.
  // The plan launches it early, perhaps before the daemon has made its TUN: it waits for
  // the device until the stream's start.
  const int fd =
      ::socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP});
  const auto bind_device = [&] {
    return ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(), static_cast<socklen_t>(device.size())) == 0;
  };
  while (fd >= 0 && !bind_device() && errno == ENODEV && now_unix_ms() < start_ms) ::usleep(10'000);
  if (fd < 0 || !bind_device()) {
    std::cerr << "stream: cannot send ICMP on " << device << ": " << std::strerror(errno) << "\n";
    if (fd >= 0) ::close(fd);
    return 1;
  }
  const auto id = static_cast<std::uint16_t>(::getpid());
  long long sent = 0, answered = 0;
  // Reads every answer waiting (until `until_ms`), counting our echo replies.
  const auto read_answers = [&](long long until_ms) {
    for (;;) {
      const long long left = until_ms - now_unix_ms();
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left > 0 ? left : 0)) <= 0) return;
      std::array<std::uint8_t, 2048> in{};
      const ssize_t n = ::recv(fd, in.data(), in.size(), 0);
      if (n <= 0) continue;
      std::size_t at = 0;
      if (!v6) at = static_cast<std::size_t>(in[0] & 0x0f) * 4;  // IPv4 raw sockets see the IP header
      if (static_cast<std::size_t>(n) < at + 8) continue;
      const auto reply = static_cast<std::uint8_t>(v6 ? int{ICMP6_ECHO_REPLY} : int{ICMP_ECHOREPLY});
      if (in[at] == reply && in[at + 4] == (id >> 8) && in[at + 5] == (id & 0xff)) ++answered;
    }
  };
  for (long long t = start_ms; t < end_ms; t += every_ms) {
    read_answers(t);
    wait_until(t);
    std::array<std::uint8_t, 64> m{};
    m[0] = static_cast<std::uint8_t>(v6 ? int{ICMP6_ECHO_REQUEST} : int{ICMP_ECHO});
    m[4] = static_cast<std::uint8_t>(id >> 8);
    m[5] = static_cast<std::uint8_t>(id & 0xff);
    m[6] = static_cast<std::uint8_t>(sent >> 8);
    m[7] = static_cast<std::uint8_t>(sent & 0xff);
    if (!v6) {  // ICMPv6's checksum (over a pseudo-header) is the kernel's on a raw socket
      const std::uint16_t sum = net::internet_checksum(std::span<const std::uint8_t>(m));
      m[2] = static_cast<std::uint8_t>(sum >> 8);
      m[3] = static_cast<std::uint8_t>(sum & 0xff);
    }
    if (::sendto(fd, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&to), to_len) >= 0) ++sent;
  }
  read_answers(end_ms + 100);  // the last one's answer (the daemons stop at the end)
  ::close(fd);
  std::cout << sent << " sent, " << answered << " answered\n";
  return 0;
}

}  // namespace duet::testbed
