// Allocations on the steady-state data path, counted: two nodes (the daemon's wiring) on
// one PosixStack over loopback, a TUN stand-in that costs nothing, and operator new
// replaced by a counting one for this binary. After a warm-up (handshake, buffers grown
// to their working size), packets are routed through the tunnel in bursts the way a TUN
// read hands them over, and every allocation made meanwhile, by the engine, the
// transports and PosixStack alike, is counted per packet. The proxied transports go
// through a relaying HTTP CONNECT or SOCKS5 proxy (tests/support/fake_proxy.hpp) on a
// thread and event loop of its own, whose allocations are not counted: a proxy is another
// process in real use.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <future>
#include <new>
#include <optional>
#include <thread>

#include "../support/driver.hpp"
#include "../support/fake_proxy.hpp"
#include "duet/config/loader.hpp"
#include "duet/node/node.hpp"
#include "duet/node/uapi.hpp"
#include "duet/tunnel/crypto.hpp"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
thread_local bool g_counting = true;  ///< off while the test itself (or the proxy's thread) allocates
}  // namespace

// Sanitizers bring their own operator new; the count is taken in plain builds only.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define DUET_SANITIZED 1
#endif
#endif
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && !defined(DUET_SANITIZED)
#define DUET_COUNTING_NEW 1
#if defined(__GNUC__) && !defined(__clang__)
// GCC sees free() of what (this file's) operator new returned and warns of a mismatch.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  if (g_counting) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (g_counting) g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

using namespace duet;
using namespace std::chrono_literals;

namespace {

/// A TUN that hands the tunnel what the test injects and counts what the tunnel writes.
class NullTun final : public net::Tun {
public:
  const std::string& name() const override { return name_; }
  void start_reading(net::PacketHandler on_packet) override { reader_ = std::move(on_packet); }
  void write(std::span<const std::uint8_t> packet) override {
    ++counters_.packets_written;
    bytes_ += packet.size();
  }
  const net::TunCounters& counters() const override { return counters_; }
  void inject(std::span<const std::uint8_t> packet) {
    ++counters_.packets_read;
    reader_(packet);
  }
  std::uint64_t bytes_ = 0;

private:
  std::string name_ = "null0";
  net::PacketHandler reader_;
  net::TunCounters counters_;
};

/// An inner IPv4/UDP packet of `size` bytes from the client's address to the server's
/// (`back`: the other way).
std::vector<std::uint8_t> inner_packet(std::size_t size, bool back = false) {
  std::vector<std::uint8_t> p(size, 0xab);
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(size >> 8);
  p[3] = static_cast<std::uint8_t>(size);
  p[8] = 64;
  p[9] = 17;
  const std::uint8_t client[] = {198, 18, 190, 2}, server[] = {198, 18, 190, 1};
  std::memcpy(&p[12], back ? server : client, 4);
  std::memcpy(&p[16], back ? client : server, 4);
  return p;
}

/// A relaying proxy on its own thread and PosixStack, listening on 127.0.0.1.
class ProxyThread {
public:
  explicit ProxyThread(test::FakeProxy::Kind kind) {
    std::promise<net::Endpoint> where;
    auto listening = where.get_future();
    thread_ = std::thread([this, kind, &where] {
      g_counting = false;
      auto guard = boost::asio::make_work_guard(io_);
      posix::PosixStack stack(io_);
      test::FakeProxy proxy(stack, kind, *net::Endpoint::parse("127.0.0.1:0"));
      where.set_value(proxy.local());
      io_.run();
      connections_ = proxy.connections;
    });
    endpoint_ = listening.get();
  }
  ~ProxyThread() { stop(); }
  /// Stops the proxy's loop; returns how many connections it took.
  int stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    return connections_;
  }
  ProxyThread(const ProxyThread&) = delete;
  ProxyThread& operator=(const ProxyThread&) = delete;
  [[nodiscard]] const net::Endpoint& endpoint() const { return endpoint_; }

private:
  boost::asio::io_context io_;
  std::thread thread_;
  net::Endpoint endpoint_;
  int connections_ = 0;
};

struct Measured {
  double per_packet = 0;
  std::uint64_t delivered = 0;
  int proxied_connections = 0;  ///< connections the proxy relayed
  /// Messages the stack queued as written in place by the tunnel (sealed straight into
  /// the socket's queue) during the measurement, UDP and TCP.
  std::uint64_t in_place = 0;
  /// Events either node reported and path probes the client sent during the measurement
  /// (a probe goes when nothing came back for a while: control traffic, which may
  /// allocate; not per packet).
  std::uint64_t control_events = 0;
};

/// `transport`: "udp", "tcp", or "tcp via http" / "tcp via socks" (through a proxy).
[[maybe_unused]] Measured measure(const std::string& transport) {
  const std::string proto = transport.substr(0, 3);
  std::optional<ProxyThread> proxy;
  std::string via;
  if (transport != proto) {
    const bool http = transport.ends_with("http");
    proxy.emplace(http ? test::FakeProxy::Kind::http : test::FakeProxy::Kind::socks);
    via = std::string(http ? "http-proxy" : "socks-proxy") + " 127.0.0.1 " + std::to_string(proxy->endpoint().port) +
          "\n";
  }
  test::PosixDriver d;
  const auto port = node::uapi::free_port(d.stack());
  EXPECT_TRUE(port);
  const auto server_key = tunnel::generate_private_key(), client_key = tunnel::generate_private_key();
  const auto server_pub = tunnel::Identity::from_private(server_key).public_key;
  const auto client_pub = tunnel::Identity::from_private(client_key).public_key;
  const std::string p = std::to_string(*port);
  auto server_cfg = config::load_text("mode server\nproto " + proto + "\nlocal 127.0.0.1\nport " + p +
                                          "\nprivate-key " + config::key_to_base64(server_key) + "\npeer " +
                                          config::key_to_base64(client_pub) + " 198.18.190.2/32\n",
                                      "server.conf");
  auto client_cfg = config::load_text("mode client\nremote 127.0.0.1 " + p + " " + proto + "\n" + via + "private-key " +
                                          config::key_to_base64(client_key) + "\npeer " +
                                          config::key_to_base64(server_pub) + " 198.18.190.0/24\n",
                                      "client.conf");
  EXPECT_TRUE(server_cfg.ok() && client_cfg.ok());
  NullTun server_tun, client_tun;
  std::uint64_t events = 0;
  node::NodeOptions options;
  options.events = [&events](const transport::Event&) { ++events; };
  node::Node server(d.stack(), &server_tun, server_cfg.config, options);
  node::Node client(d.stack(), &client_tun, client_cfg.config, options);
  std::string why;
  EXPECT_TRUE(server.start(why)) << why;
  EXPECT_TRUE(client.start(why)) << why;
  if (!d.run_until([&] { return client.client()->connected(); }, 5s)) {
    ADD_FAILURE() << "the client did not connect";
    return {};
  }
  const auto packet = inner_packet(1400), answer = inner_packet(100, true);
  // Bursts of 32, as a TUN read of a super-packet hands them over: each one handed to the
  // tunnel from inside the loop (as a TUN read is), the next once the last has arrived.
  // What the test does itself (posting the burst) is not counted. Each burst is answered
  // by one small packet the other way, as an inner TCP acknowledges: a client that hears
  // nothing back probes its path every quiet deadline (200 ms), and on a loaded machine
  // every measurement held a probe (its message and event allocate: control, not data).
  std::uint64_t want = 0, want_back = 0;
  const std::function<void()> burst = [&] {
    for (int i = 0; i < 32; ++i) client_tun.inject(packet);
    server_tun.inject(answer);
  };
  const std::function<bool()> arrived = [&] {
    return server_tun.counters().packets_written >= want && client_tun.counters().packets_written >= want_back;
  };
  auto send = [&](std::uint64_t bursts) {
    for (std::uint64_t b = 0; b < bursts; ++b) {
      g_counting = false;
      want = server_tun.counters().packets_written + 32;
      want_back = client_tun.counters().packets_written + 1;
      d.stack().clock().post(burst);
      g_counting = true;
      EXPECT_TRUE(d.run_until(arrived, 2s)) << server_tun.counters().packets_written << " of " << want;
    }
  };
  send(200);  // warm-up: handshake, buffers at their working size
  const std::uint64_t before = server_tun.counters().packets_written;
  const std::uint64_t allocations_before = g_allocations.load();
  auto in_place = [&] {
    return d.posix_stack().udp_counters().datagrams_in_place + d.posix_stack().tcp_counters().writes_in_place;
  };
  const std::uint64_t in_place_before = in_place();
  const std::uint64_t events_before = events + client.client()->probes_sent();
  send(500);
  const std::uint64_t allocations = g_allocations.load() - allocations_before;
  Measured m;
  m.control_events = events + client.client()->probes_sent() - events_before;
  m.in_place = in_place() - in_place_before;
  m.delivered = server_tun.counters().packets_written - before;
  m.per_packet = m.delivered == 0 ? 1e9 : static_cast<double>(allocations) / static_cast<double>(m.delivered);
  if (proxy) m.proxied_connections = proxy->stop();
  return m;
}

class Allocations : public ::testing::TestWithParam<std::string> {};

TEST_P(Allocations, SteadyStateDataPathPerPacket) {
#ifndef DUET_COUNTING_NEW
  GTEST_SKIP() << "operator new belongs to the sanitizer in this build";
#else
  ASSERT_TRUE(tunnel::crypto_init());
  // A control event or path probe in the measurement (a reconnect, a probe after a stall
  // of the machine) allocates for its message and event: such a run measures control
  // traffic, not packets, and is repeated (three tries).
  Measured m = measure(GetParam());
  for (int retry = 0; retry < 2 && m.control_events != 0; ++retry) {
    std::printf("%s: %llu control events or probes during the measurement: measuring again\n", GetParam().c_str(),
                static_cast<unsigned long long>(m.control_events));
    m = measure(GetParam());
  }
  EXPECT_EQ(m.control_events, 0u) << "every try had a control event in the measurement";
  if (GetParam().find(" via ") != std::string::npos) {
    EXPECT_EQ(m.proxied_connections, 1) << "the tunnel crossed the proxy";
  }
  EXPECT_EQ(m.delivered, 16000u);
  RecordProperty("allocations_per_packet", std::to_string(m.per_packet));
  std::printf("%s: %.4f allocations per packet over %llu packets\n", GetParam().c_str(), m.per_packet,
              static_cast<unsigned long long>(m.delivered));
  // None: each recurring Asio operation (a socket's wait, the end-of-turn flush of UDP, a
  // TCP write) has memory of its own (HandlerMemory); before, one in every turn of 32 took
  // a block from malloc where Asio's one-block thread cache was already in use.
  EXPECT_EQ(m.per_packet, 0.0) << "the data path allocates";
  // Nor copies between the cipher and the socket: every packet was sealed straight into
  // the queue it left from (a UDP socket's or a TCP stream's, also behind a proxy; through
  // a SOCKS5 relay it is the wrapped datagram that is written there, by the plugin).
  EXPECT_GE(m.in_place, m.delivered) << "packets were sealed elsewhere and copied into the socket's queue";
#endif
}

INSTANTIATE_TEST_SUITE_P(Transports, Allocations,
                         ::testing::Values("udp", "tcp", "tcp via http", "tcp via socks", "udp via socks"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), ' ', '_');
                           return name;
                         });

}  // namespace
