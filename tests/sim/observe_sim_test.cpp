// Traces, pcap files and the determinism check.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "world_fixture.hpp"

using namespace duet;
using namespace duet::test;

namespace {

/// A little of everything: loss, jitter, reordering, TCP and UDP, ICMP, a fault.
void busy_world(sim::SimWorld& w) {
  sim::LinkProperties link;
  link.one_way_delay = 3ms;
  link.jitter = 2ms;
  link.loss_probability = 0.05;
  link.reorder_probability = 0.05;
  build_three_hosts(w, link);
  w.add_route("router", "fd00:9::/64", sim::RouteVerdict::prohibit);
  auto echo = std::make_shared<UdpEcho>(w, "server", ep("[::]:7"));
  auto l = std::shared_ptr<net::Listener>(std::move(*w.stack("server").listen(ep("[::]:80"), {false, 8})));
  auto accepted = std::make_shared<std::vector<std::unique_ptr<net::StreamSocket>>>();
  l->accept([accepted](std::error_code, std::unique_ptr<net::StreamSocket> s) {
    if (s) accepted->push_back(std::move(s));
  });
  auto c = std::shared_ptr<net::DatagramSocket>(std::move(*w.stack("client").open_datagram(net::Family::v6)));
  for (int i = 0; i < 50; ++i) {
    w.at(std::chrono::milliseconds(5 * i), [c, i] {
      const std::uint8_t d[] = {static_cast<std::uint8_t>(i)};
      (void)c->send_to(ep(i % 2 ? "[fd00:2::2]:7" : "[::ffff:198.18.2.2]:7"), d);
      (void)c->send_to(ep("[fd00:9::1]:7"), d);
    });
  }
  auto t = std::shared_ptr<net::StreamSocket>(std::move(*w.stack("client").open_stream(net::Family::v4)));
  t->connect(ep("198.18.2.2:80"), 5s, [t](std::error_code ec) {
    if (!ec) {
      std::vector<std::uint8_t> data(5000, 0x42);
      t->write(data, [](std::error_code) {});
    }
  });
  w.at(100ms, [&w] { w.partition("client", "router"); });
  w.at(150ms, [&w] { w.heal("client", "router"); });
  w.run_for(3s);
}

TEST(SimDeterminism, SameSeedGivesTheSameTraceByteForByte) {
  const auto r = sim::check_determinism(1234, busy_world);
  EXPECT_TRUE(r.identical) << "line " << r.first_difference << "\n" << r.first_line << "\n" << r.second_line;
  EXPECT_GT(r.lines, 200u);
}

TEST(SimDeterminism, OtherSeedsGiveOtherRuns) {
  std::string a, b;
  {
    sim::SimWorld w(1);
    w.set_trace([&](std::string_view l) {
      a += l;
      a += '\n';
    });
    busy_world(w);
  }
  {
    sim::SimWorld w(2);
    w.set_trace([&](std::string_view l) {
      b += l;
      b += '\n';
    });
    busy_world(w);
  }
  EXPECT_NE(a, b);
}

TEST(SimDeterminism, NondeterminismIsCaughtAndLocated) {
  int run = 0;
  const auto r = sim::check_determinism(5, [&](sim::SimWorld& w) {
    ++run;
    build_three_hosts(w);
    auto s = std::shared_ptr<net::DatagramSocket>(std::move(*w.stack("client").open_datagram(net::Family::v4)));
    // The second run sends one more datagram: a stand-in for state leaking between runs.
    for (int i = 0; i < 3 + (run == 2 ? 1 : 0); ++i) {
      const std::uint8_t d[] = {1};
      (void)s->send_to(ep("198.18.2.2:9"), d);
    }
    w.run_for(1s);
  });
  EXPECT_FALSE(r.identical);
  EXPECT_GT(r.first_difference, 1u);
  EXPECT_NE(r.first_line, r.second_line);
}

TEST(SimTrace, LinesAreJsonObjectsWithTimeHostAndEvent) {
  std::vector<std::string> lines;
  sim::SimWorld w(3);
  w.set_trace([&](std::string_view l) { lines.emplace_back(l); });
  busy_world(w);
  ASSERT_FALSE(lines.empty());
  bool saw_drop = false, saw_icmp = false, saw_deliver = false;
  for (const auto& l : lines) {
    ASSERT_EQ(l.rfind("{\"t_ns\":", 0), 0u) << l;
    ASSERT_EQ(l.back(), '}') << l;
    ASSERT_NE(l.find("\"host\":\""), std::string::npos) << l;
    ASSERT_NE(l.find("\"event\":\""), std::string::npos) << l;
    saw_drop = saw_drop || l.find("\"why\":\"partition\"") != std::string::npos;
    saw_icmp = saw_icmp || l.find("icmp6 ") != std::string::npos;
    saw_deliver = saw_deliver || l.find("\"event\":\"deliver\"") != std::string::npos;
  }
  EXPECT_TRUE(saw_drop);
  EXPECT_TRUE(saw_icmp);
  EXPECT_TRUE(saw_deliver);
}

std::uint32_t le32(const std::string& b, std::size_t at) {
  return static_cast<std::uint8_t>(b[at]) | (static_cast<std::uint8_t>(b[at + 1]) << 8) |
         (static_cast<std::uint8_t>(b[at + 2]) << 16) |
         (static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[at + 3])) << 24);
}

TEST(SimPcap, WritesRawIpRecordsThatParse) {
  const std::string path = ::testing::TempDir() + "/duet-sim-test.pcap";
  {
    sim::SimWorld w(4);
    w.open_pcap(path);
    busy_world(w);
  }
  std::ifstream f(path, std::ios::binary);
  const std::string b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GE(b.size(), 24u);
  EXPECT_EQ(le32(b, 0), 0xa1b23c4du);
  EXPECT_EQ(le32(b, 20), 101u);  // LINKTYPE_RAW
  std::size_t at = 24, records = 0, v4 = 0, v6 = 0;
  std::uint64_t last_ns = 0;
  while (at + 16 <= b.size()) {
    const std::uint64_t ns = std::uint64_t{le32(b, at)} * 1'000'000'000 + le32(b, at + 4);
    EXPECT_GE(ns, last_ns);
    last_ns = ns;
    const auto len = le32(b, at + 8);
    ASSERT_LE(at + 16 + len, b.size());
    const auto version = static_cast<std::uint8_t>(b[at + 16]) >> 4;
    ASSERT_TRUE(version == 4 || version == 6);
    if (version == 4) {
      ++v4;
      // IPv4 header checksum verifies to zero.
      std::uint32_t sum = 0;
      for (int i = 0; i < 20; i += 2) {
        sum += (static_cast<std::uint8_t>(b[at + 16 + i]) << 8) | static_cast<std::uint8_t>(b[at + 17 + i]);
      }
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      EXPECT_EQ(sum, 0xffffu);
    } else {
      ++v6;
    }
    at += 16 + len;
    ++records;
  }
  EXPECT_EQ(at, b.size());
  EXPECT_GT(records, 100u);
  EXPECT_GT(v4, 10u);
  EXPECT_GT(v6, 10u);
  std::remove(path.c_str());
  EXPECT_THROW(sim::SimWorld(1).open_pcap("/nonexistent-dir/x.pcap"), sim::SimError);
}

}  // namespace
