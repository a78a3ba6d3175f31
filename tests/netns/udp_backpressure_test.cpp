// UDP backpressure on the kernel (needs root: a namespace this test creates and deletes).
// Loopback behind a token bucket (tbf, 100 Mbit/s with a deep queue) is a slow interface:
// datagrams wait in its queue charged to the sending socket, so the send buffer fills and
// the kernel answers EAGAIN, as behind a slow uplink. The stack must then hold what it was
// given, say so (on_blocked(true)), and say when it has handed everything over
// (on_blocked(false)): what the node uses to stop reading its TUN instead of dropping.
#include <gtest/gtest.h>

#include <optional>

#include "../support/driver.hpp"
#include "../support/topology.hpp"

using namespace duet;
using namespace duet::test;

namespace {

constexpr std::size_t kDatagram = 1400;

struct SlowLoopback {
  SlowLoopback() : ns(topology()) {
    ns.exec("host", "tc qdisc add dev lo root tbf rate 100mbit burst 64kb limit 64mb");
    ns.enter("host");
  }
  ~SlowLoopback() { ns.leave(); }
  SlowLoopback(const SlowLoopback&) = delete;
  SlowLoopback& operator=(const SlowLoopback&) = delete;
  static Topology topology() {
    Topology t;
    t.hosts = {{.name = "host"}};
    return t;
  }
  Netns ns;
};

/// A datagram whose first four bytes are its sequence number.
std::vector<std::uint8_t> numbered(std::uint32_t n) {
  std::vector<std::uint8_t> d(kDatagram, 0x5a);
  for (int i = 0; i < 4; ++i) d[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  return d;
}

struct Receiver {
  explicit Receiver(net::NetworkStack& stack) {
    socket = std::move(*stack.open_datagram(net::Family::v4));
    EXPECT_FALSE(socket->bind(*net::Endpoint::parse("127.0.0.1:0")));
    next();
  }
  void next() {
    socket->receive([this](std::error_code ec, const net::Endpoint&, std::span<const std::uint8_t> d) {
      if (!ec && d.size() >= 4) {
        const std::uint32_t n = d[0] | d[1] << 8 | d[2] << 16 | static_cast<std::uint32_t>(d[3]) << 24;
        if (n != received) out_of_order = true;
        ++received;
      }
      next();
    });
  }
  std::unique_ptr<net::DatagramSocket> socket;
  std::uint32_t received = 0;
  bool out_of_order = false;
};

/// Both ends on the slow loopback: a receiver that reads everything, and a sender.
class UdpBackpressure : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!Netns::available(why)) GTEST_SKIP() << why;
    slow.emplace();  // first: the sockets are made in its namespace
    d.emplace();
    r.emplace(d->stack());
    sender = std::move(*d->stack().open_datagram(net::Family::v4));
    to = *r->socket->local_endpoint();
  }
  std::optional<SlowLoopback> slow;
  std::optional<PosixDriver> d;
  std::optional<Receiver> r;
  std::unique_ptr<net::DatagramSocket> sender;
  net::Endpoint to;
};

/// A sender that stops while the socket is blocked loses nothing: every datagram arrives,
/// in order, none is dropped by the stack, and the socket says when it has drained.
TEST_F(UdpBackpressure, ASenderThatWaitsWhileBlockedLosesNothing) {
  bool blocked = false;
  int blocks = 0, unblocks = 0;
  sender->on_blocked([&](bool b) {
    if (b && !blocked) ++blocks;
    if (!b) ++unblocks;
    blocked = b;
  });
  // 16 MB: twice what the kernel lets one socket have in flight (4 MiB asked, 8 MiB given).
  constexpr std::uint32_t kTotal = 12000;
  std::uint32_t sent = 0;
  const bool done = d->run_until(
      [&] {
        // One turn's worth at a time, as a TUN reader's batch, and none while blocked.
        for (int i = 0; i < 64 && !blocked && sent < kTotal; ++i) sender->send_soon(to, numbered(sent++));
        return sent == kTotal && !blocked && r->received == kTotal;
      },
      std::chrono::seconds(20));
  EXPECT_TRUE(done) << "sent " << sent << ", received " << r->received << ", blocked " << blocked;
  EXPECT_GE(blocks, 1) << "the kernel's send buffer filled: the stack must have said so";
  EXPECT_EQ(blocks, unblocks) << "every block ended with the queue handed over";
  EXPECT_FALSE(r->out_of_order);
  EXPECT_EQ(d->posix_stack().udp_counters().send_dropped, 0u);
}

/// A sender that ignores it is cut at the stack's cap: the datagrams past it are dropped
/// and counted, what was held still goes, and the socket still says when it has drained.
TEST_F(UdpBackpressure, ASenderThatIgnoresItIsCutAtTheCap) {
  bool blocked = false;
  sender->on_blocked([&](bool b) { blocked = b; });
  constexpr std::uint32_t kTotal = 20000;
  std::uint32_t sent = 0;
  std::uint64_t dropped_while_blocked = 0;
  d->run_until(
      [&] {
        for (int i = 0; i < 256 && sent < kTotal; ++i) sender->send_soon(to, numbered(sent++));
        if (blocked) dropped_while_blocked = d->posix_stack().udp_counters().send_dropped;
        return sent == kTotal && !blocked;
      },
      std::chrono::seconds(20));
  EXPECT_FALSE(blocked) << "the held datagrams went, and the socket said so";
  const auto dropped = d->posix_stack().udp_counters().send_dropped;
  EXPECT_GT(dropped, 0u) << "more than the cap waited";
  EXPECT_GT(dropped_while_blocked, 0u) << "the drops came while the socket was blocked";
  d->run_until([&] { return r->received + dropped >= kTotal; }, std::chrono::seconds(5));
  EXPECT_EQ(r->received + dropped, kTotal) << "every datagram was either delivered or counted as dropped";
}

}  // namespace
