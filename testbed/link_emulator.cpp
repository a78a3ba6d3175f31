// The testbed's link emulator: this kernel has no netem, so a scenario's [[link]] runs
// through a small userspace relay. Each link's two veth pairs meet in a namespace of
// their own; the relay reads every frame that arrives on one end (a packet socket, with
// the virtio-net header so that GSO super-frames and checksum offload pass through
// untouched) and writes it to the other end when the link would deliver it. Its rules are
// the simulator's (sim/network.cpp), drawn from a seeded generator:
//   - lost with probability `loss`;
//   - serialised at `bandwidth_bps` (a frame waits for the one before it);
//   - delivered `delay` + uniform[0, jitter] later, in order...
//   - ...unless reordered (probability `reorder`): then uniform[0, delay] later, and it may
//     overtake frames on the way;
//   - duplicated with probability `duplicate`: a second copy uniform[0, delay] after the first.
// The MTU is the interfaces' (the plan sets it on both ends). SIGTERM prints what it did.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <optional>
#include <queue>
#include <random>
#include <vector>

#include "testbed.hpp"

namespace duet::testbed {

namespace {

/// struct virtio_net_hdr (linux/virtio_net.h does not compile as C++): what precedes
/// every frame on a packet socket with PACKET_VNET_HDR.
constexpr std::size_t kVnetHeader = 10;

using Clock = std::chrono::steady_clock;
/// How long before a frame is due the relay stops sleeping and polls.
constexpr auto kSpin = std::chrono::microseconds(60);
std::atomic<bool> g_stop{false};

struct Frame {
  Clock::time_point at;
  std::uint64_t order = 0;  // FIFO among frames due at the same instant
  std::vector<std::uint8_t> bytes;
  bool operator>(const Frame& o) const { return at != o.at ? at > o.at : order > o.order; }
};

/// One direction of the link: frames read from `in`, written to `out`.
struct Direction {
  int in = -1, out = -1;
  Clock::time_point busy_until{}, last_arrival{};
  std::priority_queue<Frame, std::vector<Frame>, std::greater<>> queue;
  std::uint64_t received = 0, sent = 0, lost = 0, duplicated = 0, reordered = 0;
};

int open_end(const std::string& name) {
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) return -1;
  const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return -1;
  const int one = 1;
  // Frames we write must not come back to us; offloaded frames keep their metadata.
  // The kernel stamps each frame as it arrives: the link's delay counts from then, not
  // from when this relay got to read it (a wake-up on a busy machine can take a ms).
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) {
    close(fd);
    return -1;
  }
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(index);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class Emulator {
public:
  Emulator(const sim::LinkProperties& p, std::uint64_t seed) : p_(p), random_(seed) {}

  bool chance(double probability) {
    return probability > 0 && std::uniform_real_distribution<double>(0, 1)(random_) < probability;
  }
  Clock::duration up_to(net::Duration d) {
    if (d.count() <= 0) return Clock::duration{0};
    return std::chrono::duration_cast<Clock::duration>(
        net::Duration{std::uniform_int_distribution<std::int64_t>(0, d.count())(random_)});
  }

  /// A frame arrived at one end: decide when (and whether) the other end gets it.
  void take(Direction& d, std::vector<std::uint8_t> bytes, Clock::time_point now) {
    ++d.received;
    if (chance(p_.loss_probability)) {
      ++d.lost;
      return;
    }
    auto start = now;
    if (p_.bandwidth_bits_per_second > 0) {
      const std::size_t wire = bytes.size() > kVnetHeader ? bytes.size() - kVnetHeader : 0;
      start = std::max(start, d.busy_until);
      d.busy_until = start + std::chrono::nanoseconds(static_cast<std::int64_t>(
                                 static_cast<double>(wire) * 8e9 / static_cast<double>(p_.bandwidth_bits_per_second)));
      start = d.busy_until;
    }
    const auto delay = std::chrono::duration_cast<Clock::duration>(p_.one_way_delay);
    auto at = start + delay + up_to(p_.jitter);
    if (chance(p_.reorder_probability)) {
      at = start + up_to(p_.one_way_delay);
      ++d.reordered;
    } else {
      at = std::max(at, d.last_arrival);
      d.last_arrival = at;
    }
    if (chance(p_.duplicate_probability)) {
      ++d.duplicated;
      d.queue.push({at + up_to(p_.one_way_delay), order_++, bytes});
    }
    d.queue.push({at, order_++, std::move(bytes)});
  }

  /// Writes every frame that is due; returns when the next one is.
  std::optional<Clock::time_point> release(Direction& d, Clock::time_point now) {
    while (!d.queue.empty() && d.queue.top().at <= now) {
      const auto& f = d.queue.top();
      if (send(d.out, f.bytes.data(), f.bytes.size(), MSG_DONTWAIT) >= 0) ++d.sent;
      d.queue.pop();
    }
    if (d.queue.empty()) return std::nullopt;
    return d.queue.top().at;
  }

private:
  sim::LinkProperties p_;
  std::mt19937_64 random_;
  std::uint64_t order_ = 0;
};

}  // namespace

int link_emulator(const sim::Scenario& s, std::size_t index, const std::string& end_a, const std::string& end_b,
                  std::uint64_t seed) {
  if (index >= s.links.size()) {
    std::cerr << "link: the scenario has " << s.links.size() << " links\n";
    return 2;
  }
  const sim::LinkProperties& p = s.links[index].properties;
  std::array<Direction, 2> dir;
  const int a = open_end(end_a), b = open_end(end_b);
  if (a < 0 || b < 0) {
    std::cerr << "link: cannot open packet sockets on " << end_a << " and " << end_b << ": " << std::strerror(errno)
              << "\n";
    return 1;
  }
  dir[0].in = a;
  dir[0].out = b;
  dir[1].in = b;
  dir[1].out = a;
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  Emulator emu(p, seed);
  // No timer slack (50 us by default): a frame's delay is the link's, not the scheduler's.
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  std::vector<std::uint8_t> buffer(kVnetHeader + 65536 + 64);
  while (!g_stop) {
    auto now = Clock::now();
    std::optional<Clock::time_point> next;
    for (auto& d : dir) {
      if (auto t = emu.release(d, now); t && (!next || *t < *next)) next = t;
    }
    // ppoll's timeout has nanoseconds (high-resolution timers, no slack: see below), and
    // it wakes up to sleep until kSpin before a frame is due, then polls without sleeping
    // until it is: a wake-up on this VM comes tens of microseconds late, on every pass of
    // every frame (a TCP connection through two links makes eight passes).
    timespec wait{};
    timespec* timeout = nullptr;
    if (next) {
      const auto ns =
          std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(*next - kSpin - now).count());
      wait.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      wait.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      timeout = &wait;
    }
    std::array<pollfd, 2> fds{{{a, POLLIN, 0}, {b, POLLIN, 0}}};
    if (ppoll(fds.data(), fds.size(), timeout, nullptr) < 0 && errno != EINTR) break;
    now = Clock::now();
    // The kernel's stamps are wall-clock time; this relay schedules on the steady clock.
    const auto wall_now = std::chrono::system_clock::now();
    for (std::size_t i = 0; i < 2; ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      for (;;) {
        iovec iov{buffer.data(), buffer.size()};
        alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(timespec))> control{};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control.data();
        m.msg_controllen = control.size();
        const ssize_t n = recvmsg(dir[i].in, &m, MSG_DONTWAIT);
        if (n <= 0) break;
        auto arrived = now;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
          if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
          timespec ts{};
          std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
          const auto stamped =
              std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                  std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
          // Never later than now, never more than a second before (a clock step).
          const auto waited = std::clamp(wall_now - stamped, std::chrono::system_clock::duration{0},
                                         std::chrono::system_clock::duration{std::chrono::seconds(1)});
          arrived = now - std::chrono::duration_cast<Clock::duration>(waited);
        }
        emu.take(dir[i], std::vector<std::uint8_t>(buffer.begin(), buffer.begin() + n), arrived);
      }
    }
  }
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& d = dir[i];
    std::cerr << "link " << index << (i == 0 ? " a->b" : " b->a") << ": " << d.received << " frames in, " << d.sent
              << " out, " << d.lost << " lost, " << d.duplicated << " duplicated, " << d.reordered << " reordered\n";
  }
  close(a);
  close(b);
  return 0;
}

}  // namespace duet::testbed
