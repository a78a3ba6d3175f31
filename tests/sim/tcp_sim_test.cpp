#include <gtest/gtest.h>

#include "world_fixture.hpp"

using namespace duet;
using namespace duet::test;
using sim::RouteVerdict;

namespace {

TEST(SimTcp, SynRetriesFollowLinuxBackoffUntilGiveUp) {
  sim::SimWorld w(1);
  build_three_hosts(w);
  w.add_route("router", "198.18.2.2/32", RouteVerdict::blackhole);
  std::vector<double> syn_times;
  w.set_trace([&](std::string_view line) {
    if (line.find("\"event\":\"send\"") != std::string_view::npos && line.find("[S]") != std::string_view::npos) {
      auto t = line.substr(8, line.find(',') - 8);
      syn_times.push_back(std::stod(std::string(t)) / 1e9);
    }
  });
  SimDriver d(w, "client");
  auto o = tcp_connect(d, ep("198.18.2.2:443"), std::chrono::seconds(300));
  EXPECT_EQ(o.errno_name(), "ETIMEDOUT");
  EXPECT_EQ(o.elapsed, std::chrono::seconds(127));  // 1+2+4+8+16+32+64
  EXPECT_EQ(syn_times, (std::vector<double>{0, 1, 3, 7, 15, 31, 63}));
}

TEST(SimTcp, SynRetriesSettingShortensTheGiveUp) {
  sim::SimWorld w(1);
  build_three_hosts(w);
  w.settings("client").tcp_syn_retries = 2;
  w.add_route("router", "fd00:2::2/128", RouteVerdict::blackhole);
  SimDriver d(w, "client");
  auto o = tcp_connect(d, ep("[fd00:2::2]:443"), std::chrono::seconds(300));
  EXPECT_EQ(o.errno_name(), "ETIMEDOUT");
  EXPECT_EQ(o.elapsed, std::chrono::seconds(7));
}

TEST(SimTcp, CallerTimeoutWinsOverSynRetries) {
  sim::SimWorld w(1);
  build_three_hosts(w);
  w.add_route("router", "198.18.2.2/32", RouteVerdict::blackhole);
  SimDriver d(w, "client");
  auto o = tcp_connect(d, ep("198.18.2.2:443"), 250ms);
  EXPECT_EQ(o.errno_name(), "ETIMEDOUT");
  EXPECT_EQ(o.elapsed, Duration(250ms));
}

TEST(SimTcp, ConnectTakesOneRoundTrip) {
  sim::LinkProperties link;
  link.one_way_delay = 10ms;
  sim::SimWorld w(1);
  build_three_hosts(w, link);
  auto l = std::move(*w.stack("server").listen(ep("[::]:443"), {true, 8}));
  SimDriver d(w, "client");
  auto o = tcp_connect(d, ep("[fd00:2::2]:443"), 1s);
  EXPECT_FALSE(o.error);
  EXPECT_EQ(o.elapsed, Duration(40ms));  // 2 hops each way
}

TEST(SimTcp, TransfersIntactOverALossyReorderingLink) {
  sim::LinkProperties link;
  link.one_way_delay = 5ms;
  link.jitter = 3ms;
  link.loss_probability = 0.2;
  link.duplicate_probability = 0.05;
  link.reorder_probability = 0.1;
  sim::SimWorld w(99);
  build_three_hosts(w, link);
  auto l = std::move(*w.stack("server").listen(ep("0.0.0.0:443"), {}));
  std::unique_ptr<net::StreamSocket> server;
  l->accept([&](std::error_code ec, std::unique_ptr<net::StreamSocket> s) {
    ASSERT_FALSE(ec);
    server = std::move(s);
  });
  auto client = std::move(*w.stack("client").open_stream(net::Family::v4));
  bool connected = false;
  client->connect(ep("198.18.2.2:443"), 60s, [&](std::error_code ec) {
    ASSERT_FALSE(ec) << ec.message();
    connected = true;
  });
  ASSERT_TRUE(w.run_until([&] { return connected && server; }, 60s));
  std::vector<std::uint8_t> data(200000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 31 + 7);
  client->write(data, [](std::error_code ec) { ASSERT_FALSE(ec); });
  std::vector<std::uint8_t> got;
  std::function<void()> more = [&] {
    server->read_some([&](std::error_code ec, std::span<const std::uint8_t> d) {
      ASSERT_FALSE(ec);
      got.insert(got.end(), d.begin(), d.end());
      if (!d.empty()) more();
    });
  };
  more();
  ASSERT_TRUE(w.run_until([&] { return got.size() >= data.size(); }, 600s));
  EXPECT_EQ(got, data);
}

TEST(SimTcp, CrashedPeerIsSilentThenRestartedPeerResets) {
  sim::SimWorld w(3);
  build_three_hosts(w);
  auto l = std::move(*w.stack("server").listen(ep("0.0.0.0:443"), {}));
  std::unique_ptr<net::StreamSocket> server;
  l->accept([&](std::error_code, std::unique_ptr<net::StreamSocket> s) { server = std::move(s); });
  auto client = std::move(*w.stack("client").open_stream(net::Family::v4));
  bool connected = false;
  client->connect(ep("198.18.2.2:443"), 5s, [&](std::error_code ec) { connected = !ec; });
  ASSERT_TRUE(w.run_until([&] { return connected && server; }, 5s));
  w.crash("server");
  std::error_code read_error;
  bool read_done = false;
  client->read_some([&](std::error_code ec, std::span<const std::uint8_t>) {
    read_error = ec;
    read_done = true;
  });
  const std::uint8_t x[] = {1, 2, 3};
  client->write(x, [](std::error_code) {});
  w.run_for(2s);
  EXPECT_FALSE(read_done) << "a crashed host sends nothing, not even RST";
  w.restart("server");
  ASSERT_TRUE(w.run_until([&] { return read_done; }, 30s));
  EXPECT_EQ(read_error, net::errc(std::errc::connection_reset));
}

TEST(SimTcp, ListenerBacklogDropsExtraSyns) {
  sim::SimWorld w(3);
  build_three_hosts(w);
  auto l = std::move(*w.stack("server").listen(ep("0.0.0.0:443"), {std::nullopt, 1}));
  SimDriver d(w, "client");
  // Linux queues backlog + 1 unaccepted connections, then drops SYNs.
  EXPECT_FALSE(tcp_connect(d, ep("198.18.2.2:443"), 1s).error);
  EXPECT_FALSE(tcp_connect(d, ep("198.18.2.2:443"), 1s).error);
  EXPECT_EQ(tcp_connect(d, ep("198.18.2.2:443"), 1s).errno_name(), "ETIMEDOUT");
}

}  // namespace
