// One conformance suite, two stacks: every case runs on the kernel (PosixStack, on this
// namespace's loopback) and in the simulator (a host with only loopback). Where the two
// disagree, the simulator is wrong.
#include <gtest/gtest.h>

#include <cstring>

#include "../support/driver.hpp"

using namespace duet;
using namespace duet::test;
using net::Address;
using net::Endpoint;
using net::errc;
using net::Family;

namespace {

struct Env {
  std::unique_ptr<sim::SimWorld> world;
  std::unique_ptr<Driver> driver;
};

Env make_env(const std::string& kind) {
  Env e;
  if (kind == "sim") {
    e.world = std::make_unique<sim::SimWorld>(1);
    e.world->add_host("local");
    e.driver = std::make_unique<SimDriver>(*e.world, "local");
  } else {
    e.driver = std::make_unique<PosixDriver>();
  }
  return e;
}

Endpoint ep(const char* text) { return *Endpoint::parse(text); }

class Loopback : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override { env_ = make_env(GetParam()); }
  Driver& d() { return *env_.driver; }
  net::NetworkStack& stack() { return env_.driver->stack(); }

  std::unique_ptr<net::DatagramSocket> udp(Family f) {
    auto s = stack().open_datagram(f);
    EXPECT_TRUE(s) << s.error().message();
    return std::move(*s);
  }

  /// A port free for both families right now (bound on [::] dual-stack, then closed).
  std::uint16_t free_port() {
    auto s = udp(Family::v6);
    EXPECT_FALSE(s->set_v6only(false));
    EXPECT_FALSE(s->bind(ep("[::]:0")));
    return s->local_endpoint()->port;
  }

  Env env_;
};

TEST_P(Loopback, WildcardV6WithoutV6OnlyTakesTheV4PortToo) {
  for (bool v6_first : {true, false}) {
    const auto port = free_port();
    auto v4 = udp(Family::v4);
    auto v6 = udp(Family::v6);
    ASSERT_FALSE(v6->set_v6only(false));
    const Endpoint any4{Address::any(Family::v4), port};
    const Endpoint any6{Address::any(Family::v6), port};
    if (v6_first) {
      EXPECT_FALSE(v6->bind(any6));
      EXPECT_EQ(v4->bind(any4), errc(std::errc::address_in_use));
    } else {
      EXPECT_FALSE(v4->bind(any4));
      EXPECT_EQ(v6->bind(any6), errc(std::errc::address_in_use));
    }
  }
}

TEST_P(Loopback, V6OnlyLetsBothFamiliesShareAPort) {
  for (bool v6_first : {true, false}) {
    const auto port = free_port();
    auto v4 = udp(Family::v4);
    auto v6 = udp(Family::v6);
    ASSERT_FALSE(v6->set_v6only(true));
    if (v6_first) {
      EXPECT_FALSE(v6->bind({Address::any(Family::v6), port}));
      EXPECT_FALSE(v4->bind({Address::any(Family::v4), port}));
    } else {
      EXPECT_FALSE(v4->bind({Address::any(Family::v4), port}));
      EXPECT_FALSE(v6->bind({Address::any(Family::v6), port}));
    }
  }
}

TEST_P(Loopback, TcpListenersFollowTheSameV6OnlyRule) {
  const auto port = free_port();
  auto dual = stack().listen({Address::any(Family::v6), port}, {false, 16});
  ASSERT_TRUE(dual) << dual.error().message();
  auto v4 = stack().listen({Address::any(Family::v4), port}, {std::nullopt, 16});
  EXPECT_EQ(v4.error(), errc(std::errc::address_in_use));
  (*dual)->close();
  auto only6 = stack().listen({Address::any(Family::v6), port}, {true, 16});
  ASSERT_TRUE(only6);
  auto v4b = stack().listen({Address::any(Family::v4), port}, {std::nullopt, 16});
  EXPECT_TRUE(v4b) << v4b.error().message();
}

TEST_P(Loopback, BindingAnAddressTheHostLacksIsEaddrnotavail) {
  auto v4 = udp(Family::v4);
  EXPECT_EQ(v4->bind(ep("198.18.99.1:0")), errc(std::errc::address_not_available));
  auto v6 = udp(Family::v6);
  EXPECT_EQ(v6->bind(ep("[fd00:99::1]:0")), errc(std::errc::address_not_available));
  auto l = stack().listen(ep("198.18.99.1:0"), {});
  EXPECT_EQ(l.error(), errc(std::errc::address_not_available));
}

TEST_P(Loopback, V6OnlySocketCannotSendToAV4MappedAddress) {
  auto s = udp(Family::v6);
  ASSERT_FALSE(s->set_v6only(true));
  const std::uint8_t x[] = {1};
  EXPECT_EQ(s->send_to(ep("[::ffff:127.0.0.1]:9"), x), errc(std::errc::network_unreachable));
  auto bound = udp(Family::v6);
  ASSERT_FALSE(bound->bind(ep("[::1]:0")));
  EXPECT_EQ(bound->send_to(ep("[::ffff:127.0.0.1]:9"), x), errc(std::errc::network_unreachable));
}

TEST_P(Loopback, DualStackSocketSeesV4PeersAsMapped) {
  auto server = udp(Family::v6);
  ASSERT_FALSE(server->set_v6only(false));
  ASSERT_FALSE(server->bind(ep("[::]:0")));
  const auto port = server->local_endpoint()->port;
  auto client = udp(Family::v4);
  const std::uint8_t hello[] = {'h', 'i'};
  ASSERT_FALSE(client->send_to({Address::loopback(Family::v4), port}, hello));
  Endpoint from;
  std::vector<std::uint8_t> got;
  bool done = false;
  server->receive([&](std::error_code ec, const Endpoint& f, std::span<const std::uint8_t> data) {
    EXPECT_FALSE(ec);
    from = f;
    got.assign(data.begin(), data.end());
    done = true;
  });
  ASSERT_TRUE(d().run_until([&] { return done; }, 2s));
  EXPECT_EQ(from.address.to_string(), "::ffff:127.0.0.1");
  EXPECT_EQ(from.port, client->local_endpoint()->port);
  EXPECT_EQ(got, std::vector<std::uint8_t>(std::begin(hello), std::end(hello)));
  // And the reply goes back through the mapped address.
  ASSERT_FALSE(server->send_to(from, hello));
  bool back = false;
  client->receive([&](std::error_code ec, const Endpoint& f, std::span<const std::uint8_t>) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(f.to_string(), "127.0.0.1:" + std::to_string(port));
    back = true;
  });
  EXPECT_TRUE(d().run_until([&] { return back; }, 2s));
}

/// A server on a wildcard address answers a peer from the address the peer reached (what a
/// host with several addresses needs: the peer expects the answer from there), and from the
/// kernel's choice at once when that address is no longer the host's.
TEST_P(Loopback, RepliesLeaveFromTheAddressThePeerReached) {
  for (const bool dual_stack : {false, true}) {
    SCOPED_TRACE(dual_stack ? "dual-stack IPv6 socket" : "IPv4 socket");
    auto server = udp(dual_stack ? Family::v6 : Family::v4);
    if (dual_stack) {
      ASSERT_FALSE(server->set_v6only(false));
    }
    ASSERT_FALSE(server->bind(ep(dual_stack ? "[::]:0" : "0.0.0.0:0")));
    const auto port = server->local_endpoint()->port;
    auto client = udp(Family::v4);
    const std::uint8_t hello[] = {'h', 'i'};
    Endpoint from;
    Address to;
    bool done = false;
    server->receive_to([&](std::error_code ec, const Endpoint& f, const Address& t, std::span<const std::uint8_t>) {
      EXPECT_FALSE(ec);
      from = f;
      to = t;
      done = true;
    });
    // 127.0.0.2 is the host's too (all of 127/8), but not the address routing prefers.
    ASSERT_FALSE(client->send_to({*Address::parse("127.0.0.2"), port}, hello));
    ASSERT_TRUE(d().run_until([&] { return done; }, 2s));
    EXPECT_EQ(to.to_string(), dual_stack ? "::ffff:127.0.0.2" : "127.0.0.2");
    std::vector<std::string> replies_from;
    std::function<void()> listen = [&] {
      client->receive([&](std::error_code ec, const Endpoint& f, std::span<const std::uint8_t>) {
        EXPECT_FALSE(ec);
        replies_from.push_back(f.to_string());
        listen();
      });
    };
    listen();
    server->send_soon_from(to, from, hello);
    ASSERT_TRUE(d().run_until([&] { return replies_from.size() == 1; }, 2s));
    EXPECT_EQ(replies_from[0], "127.0.0.2:" + std::to_string(port));
    // An address the host does not have (one removed from its interface, say).
    server->send_soon_from(dual_stack ? *Address::parse("::ffff:198.18.99.1") : *Address::parse("198.18.99.1"), from,
                           hello);
    ASSERT_TRUE(d().run_until([&] { return replies_from.size() == 2; }, 2s));
    EXPECT_EQ(replies_from[1], "127.0.0.1:" + std::to_string(port));
    // Without a source, the kernel's choice as before.
    server->send_soon_from(Address::any(server->family()), from, hello);
    ASSERT_TRUE(d().run_until([&] { return replies_from.size() == 3; }, 2s));
    EXPECT_EQ(replies_from[2], "127.0.0.1:" + std::to_string(port));
  }
  // IPv6: the destination reported as it is.
  auto server = udp(Family::v6);
  ASSERT_FALSE(server->set_v6only(true));
  ASSERT_FALSE(server->bind(ep("[::]:0")));
  auto client = udp(Family::v6);
  const std::uint8_t hello[] = {'h', 'i'};
  Address to;
  bool done = false;
  server->receive_to([&](std::error_code ec, const Endpoint&, const Address& t, std::span<const std::uint8_t>) {
    EXPECT_FALSE(ec);
    to = t;
    done = true;
  });
  ASSERT_FALSE(client->send_to({Address::loopback(Family::v6), server->local_endpoint()->port}, hello));
  ASSERT_TRUE(d().run_until([&] { return done; }, 2s));
  EXPECT_EQ(to.to_string(), "::1");
}

TEST_P(Loopback, ConnectedUdpLearnsOfAClosedPort) {
  const auto port = free_port();
  for (const char* host : {"127.0.0.1", "::1"}) {
    const auto a = *Address::parse(host);
    auto p = udp_probe(d(), {a, port}, 1s);
    EXPECT_FALSE(p.connect_error) << host;
    EXPECT_FALSE(p.send_error) << host;
    EXPECT_EQ(p.receive.errno_name(), "ECONNREFUSED") << host;
    EXPECT_LT(p.receive.elapsed, 500ms) << host;
    EXPECT_FALSE(p.second_send_error) << host << ": the error is reported once";
  }
}

TEST_P(Loopback, UnconnectedUdpIgnoresAClosedPort) {
  const auto port = free_port();
  auto s = udp(Family::v4);
  const std::uint8_t x[] = {1};
  ASSERT_FALSE(s->send_to({Address::loopback(Family::v4), port}, x));
  bool got = false;
  s->receive([&](std::error_code, const Endpoint&, std::span<const std::uint8_t>) { got = true; });
  d().run_for(300ms);
  EXPECT_FALSE(got);
}

TEST_P(Loopback, TcpToAClosedPortIsRefusedAtOnce) {
  const auto port = free_port();
  for (const char* host : {"127.0.0.1", "::1"}) {
    auto o = tcp_connect(d(), {*Address::parse(host), port}, 2s);
    EXPECT_EQ(o.errno_name(), "ECONNREFUSED") << host;
    EXPECT_LT(o.elapsed, 500ms) << host;
  }
}

TEST_P(Loopback, TcpCarriesDataBothWaysAndEndsWithEof) {
  for (const char* any : {"0.0.0.0:0", "[::]:0"}) {
    auto l = stack().listen(ep(any), {});
    ASSERT_TRUE(l) << l.error().message();
    const auto local = *(*l)->local_endpoint();
    const Endpoint target{Address::loopback(local.family()), local.port};
    std::unique_ptr<net::StreamSocket> server;
    (*l)->accept([&](std::error_code ec, std::unique_ptr<net::StreamSocket> s) {
      ASSERT_FALSE(ec);
      server = std::move(s);
    });
    auto client = std::move(*stack().open_stream(local.family()));
    bool connected = false;
    client->connect(target, 2s, [&](std::error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      connected = true;
    });
    ASSERT_TRUE(d().run_until([&] { return connected && server; }, 2s)) << any;
    EXPECT_EQ(client->remote_endpoint()->to_string(), target.to_string());
    EXPECT_EQ(server->remote_endpoint()->port, client->local_endpoint()->port);

    std::vector<std::uint8_t> big(100000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7);
    bool written = false;
    client->write(big, [&](std::error_code ec) {
      EXPECT_FALSE(ec);
      written = true;
    });
    ASSERT_FALSE(client->shutdown_send());
    std::vector<std::uint8_t> got;
    bool eof = false;
    std::function<void()> read_more = [&] {
      server->read_some([&](std::error_code ec, std::span<const std::uint8_t> data) {
        ASSERT_FALSE(ec) << ec.message();
        if (data.empty()) {
          eof = true;
          return;
        }
        got.insert(got.end(), data.begin(), data.end());
        read_more();
      });
    };
    read_more();
    ASSERT_TRUE(d().run_until([&] { return eof; }, 5s)) << any;
    EXPECT_TRUE(written);
    EXPECT_EQ(got, big);
  }
}

TEST_P(Loopback, ResetMakesThePeerSeeEconnreset) {
  auto l = std::move(*stack().listen(ep("127.0.0.1:0"), {}));
  std::unique_ptr<net::StreamSocket> server;
  l->accept([&](std::error_code, std::unique_ptr<net::StreamSocket> s) { server = std::move(s); });
  auto client = std::move(*stack().open_stream(Family::v4));
  bool connected = false;
  client->connect(*l->local_endpoint(), 2s, [&](std::error_code ec) { connected = !ec; });
  ASSERT_TRUE(d().run_until([&] { return connected && server; }, 2s));
  std::error_code seen;
  bool done = false;
  client->read_some([&](std::error_code ec, std::span<const std::uint8_t>) {
    seen = ec;
    done = true;
  });
  server->reset();
  ASSERT_TRUE(d().run_until([&] { return done; }, 2s));
  EXPECT_EQ(seen, errc(std::errc::connection_reset));
}

TEST_P(Loopback, ClosedObjectsAnswerEbadfAndNeverCallBack) {
  auto s = udp(Family::v4);
  s->close();
  const std::uint8_t x[] = {1};
  EXPECT_EQ(s->bind(ep("127.0.0.1:0")), errc(std::errc::bad_file_descriptor));
  EXPECT_EQ(s->send_to(ep("127.0.0.1:9"), x), errc(std::errc::bad_file_descriptor));
  std::error_code later;
  s->receive([&](std::error_code ec, const Endpoint&, std::span<const std::uint8_t>) { later = ec; });
  d().run_until([&] { return bool(later); }, 1s);
  EXPECT_EQ(later, errc(std::errc::bad_file_descriptor));

  // A receive pending at close() is dropped, not called.
  auto t = udp(Family::v4);
  ASSERT_FALSE(t->bind(ep("127.0.0.1:0")));
  bool called = false;
  t->receive([&](std::error_code, const Endpoint&, std::span<const std::uint8_t>) { called = true; });
  t->close();
  d().run_for(100ms);
  EXPECT_FALSE(called);
}

TEST_P(Loopback, SocketOptionsAreCheckedLikeTheKernel) {
  auto v4 = udp(Family::v4);
  EXPECT_EQ(v4->set_v6only(true), errc(std::errc::no_protocol_option));
  EXPECT_EQ(v4->bind(ep("[::1]:0")), errc(std::errc::address_family_not_supported));
  auto v6 = udp(Family::v6);
  ASSERT_FALSE(v6->bind(ep("[::1]:0")));
  EXPECT_EQ(v6->bind(ep("[::1]:0")), errc(std::errc::invalid_argument));  // already bound
  EXPECT_EQ(v6->set_v6only(true), errc(std::errc::invalid_argument));     // after bind
}

TEST_P(Loopback, EphemeralPortsComeFromTheLinuxRange) {
  auto s = udp(Family::v4);
  ASSERT_FALSE(s->bind(ep("127.0.0.1:0")));
  const auto port = s->local_endpoint()->port;
  EXPECT_GE(port, 32768);
  EXPECT_LE(port, 60999);
}

TEST_P(Loopback, ResolverAnswersLiteralsAndWildcards) {
  std::optional<net::Result<std::vector<Endpoint>>> r;
  auto op = stack().resolve("", "1194", {std::nullopt, true, net::SocketType::datagram},
                            [&](net::Result<std::vector<Endpoint>> res) { r = std::move(res); });
  ASSERT_TRUE(d().run_until([&] { return r.has_value(); }, 2s));
  ASSERT_TRUE(*r);
  ASSERT_EQ((*r)->size(), 2u);
  EXPECT_EQ((**r)[0].to_string(), "0.0.0.0:1194");
  EXPECT_EQ((**r)[1].to_string(), "[::]:1194");
  r.reset();
  op = stack().resolve("fd00::1", "53", {Family::v4, false, net::SocketType::stream},
                       [&](net::Result<std::vector<Endpoint>> res) { r = std::move(res); });
  ASSERT_TRUE(d().run_until([&] { return r.has_value(); }, 2s));
  EXPECT_EQ(r->error(), make_error_code(net::ResolveError::no_data));
  // Destroying the handle cancels: the handler never runs.
  bool called = false;
  op = stack().resolve("::1", "53", {}, [&](auto) { called = true; });
  op.reset();
  d().run_for(50ms);
  EXPECT_FALSE(called);
}

TEST_P(Loopback, InterfaceAddressesIncludeLoopback) {
  auto addrs = stack().interface_addresses();
  ASSERT_TRUE(addrs);
  bool v4 = false, v6 = false;
  for (const auto& a : *addrs) {
    if (a.prefix.to_string() == "127.0.0.1/8") v4 = a.up;
    if (a.prefix.to_string() == "::1/128") v6 = a.up;
  }
  EXPECT_TRUE(v4);
  EXPECT_TRUE(v6);
}

TEST_P(Loopback, TimersFireInOrderAndCancelledOnesNever) {
  auto& clock = stack().clock();
  auto a = clock.make_timer();
  auto b = clock.make_timer();
  auto c = clock.make_timer();
  std::string order;
  const auto start = clock.now();
  net::TimePoint fired_a{};
  a->start(60ms, [&] {
    order += 'a';
    fired_a = clock.now();
  });
  b->start(20ms, [&] { order += 'b'; });
  c->start(40ms, [&] { order += 'c'; });
  EXPECT_TRUE(c->pending());
  c->cancel();
  EXPECT_FALSE(c->pending());
  ASSERT_TRUE(d().run_until([&] { return order.size() == 2; }, 2s));
  EXPECT_EQ(order, "ba");
  EXPECT_GE(fired_a - start, net::Duration(60ms));
  EXPECT_FALSE(a->pending());
  // A destroyed timer never calls back.
  bool late = false;
  auto t = clock.make_timer();
  t->start(10ms, [&] { late = true; });
  t.reset();
  d().run_for(50ms);
  EXPECT_FALSE(late);
}

/// Datagrams queued with send_soon (the tunnel's data path): many per turn, runs of equal
/// sizes to one peer (which PosixStack sends as one UDP GSO message and the receiver's GRO
/// may hand over as one buffer), others mixed in. Each arrives whole, once, in order.
std::vector<std::uint8_t> numbered(std::size_t size, std::uint32_t n) {
  std::vector<std::uint8_t> d(size);
  for (std::size_t i = 0; i < size; ++i) d[i] = static_cast<std::uint8_t>(n * 31 + i);
  std::memcpy(d.data(), &n, sizeof n);
  return d;
}

struct Collector {
  std::vector<std::vector<std::uint8_t>> got;
  std::size_t batches = 0, largest_batch = 0;
  /// With receive_batch(): the datagrams there at once, together.
  void start_batches(net::DatagramSocket& s, bool destinations) {
    s.receive_batch(destinations,
                    [this, &s, destinations](std::error_code ec, std::span<const net::ReceivedDatagram> batch) {
                      EXPECT_FALSE(ec) << ec.message();
                      if (ec) return;
                      EXPECT_FALSE(batch.empty());
                      ++batches;
                      largest_batch = std::max(largest_batch, batch.size());
                      for (const auto& d : batch) {
                        got.emplace_back(d.data.begin(), d.data.end());
                        if (destinations) {
                          EXPECT_EQ(d.to.to_string(), "127.0.0.1");
                        }
                      }
                      start_batches(s, destinations);
                    });
  }
  void start(net::DatagramSocket& s) {
    s.receive([this, &s](std::error_code ec, const Endpoint&, std::span<const std::uint8_t> data) {
      EXPECT_FALSE(ec) << ec.message();
      if (ec) return;
      got.emplace_back(data.begin(), data.end());
      start(s);
    });
  }
};

void send_batch(net::DatagramSocket& client, const Endpoint& a, const Endpoint& b,
                std::vector<std::vector<std::uint8_t>>& to_a, std::vector<std::vector<std::uint8_t>>& to_b) {
  for (std::uint32_t n = 0; n < 300; ++n) {
    const bool other = n % 50 == 49;
    const std::size_t size = n % 37 == 0 ? 300 : (n % 101 == 100 ? 1400 : 1200);
    auto d = numbered(size, n);
    client.send_soon(other ? b : a, d);
    (other ? to_b : to_a).push_back(std::move(d));
  }
}

TEST_P(Loopback, QueuedDatagramsArriveWholeOnceAndInOrder) {
  auto a = udp(Family::v4), b = udp(Family::v4), client = udp(Family::v4);
  ASSERT_FALSE(a->bind(ep("127.0.0.1:0")));
  ASSERT_FALSE(b->bind(ep("127.0.0.1:0")));
  const Endpoint to_a = *a->local_endpoint(), to_b = *b->local_endpoint();
  Collector ca, cb;
  ca.start(*a);
  cb.start(*b);
  std::vector<std::vector<std::uint8_t>> want_a, want_b;
  send_batch(*client, to_a, to_b, want_a, want_b);
  ASSERT_TRUE(d().run_until([&] { return ca.got.size() >= want_a.size() && cb.got.size() >= want_b.size(); }, 5s))
      << ca.got.size() << " of " << want_a.size() << ", " << cb.got.size() << " of " << want_b.size();
  d().run_for(50ms);  // nothing more, no duplicate
  EXPECT_EQ(ca.got, want_a);
  EXPECT_EQ(cb.got, want_b);
}

/// receive_batch() hands over the same datagrams as receive(), whole, once, in order, with
/// the address they were sent to when asked; PosixStack hands a turn's several at once.
TEST_P(Loopback, BatchesReceiveTheSameDatagramsInOrder) {
  for (const bool destinations : {true, false}) {
    SCOPED_TRACE(destinations ? "with destinations" : "without");
    auto a = udp(Family::v4), b = udp(Family::v4), client = udp(Family::v4);
    ASSERT_FALSE(a->bind(ep("127.0.0.1:0")));
    ASSERT_FALSE(b->bind(ep("127.0.0.1:0")));
    const Endpoint to_a = *a->local_endpoint(), to_b = *b->local_endpoint();
    Collector ca, cb;
    ca.start_batches(*a, destinations);
    cb.start(*b);
    std::vector<std::vector<std::uint8_t>> want_a, want_b;
    send_batch(*client, to_a, to_b, want_a, want_b);
    ASSERT_TRUE(d().run_until([&] { return ca.got.size() >= want_a.size() && cb.got.size() >= want_b.size(); }, 5s))
        << ca.got.size() << " of " << want_a.size();
    d().run_for(50ms);
    EXPECT_EQ(ca.got, want_a);
    EXPECT_EQ(cb.got, want_b);
    if (GetParam() == "posix") {
      EXPECT_GT(ca.largest_batch, 1u) << "a turn's datagrams came one by one";
    }
  }
}

/// Datagrams written in place (send_soon_filled: how the tunnel seals into the socket's
/// queue) mixed with copied ones: each arrives as its fill wrote it (only the bytes it said
/// it wrote), in order, runs of equal sizes included; a fill that writes nothing sends
/// nothing.
TEST_P(Loopback, DatagramsWrittenInPlaceArriveAsWritten) {
  auto a = udp(Family::v4), client = udp(Family::v4);
  ASSERT_FALSE(a->bind(ep("127.0.0.1:0")));
  const Endpoint to_a = *a->local_endpoint();
  Collector ca;
  ca.start(*a);
  std::vector<std::vector<std::uint8_t>> want;
  for (std::uint32_t n = 0; n < 200; ++n) {
    auto d = numbered(n % 17 == 0 ? 200 : 1200, n);
    if (n % 5 == 0) {
      client->send_soon(to_a, d);
    } else {
      // More room than needed: only what the fill reports goes.
      client->send_soon_filled(Address::any(Family::v4), to_a, d.size() + 64, [&d](std::span<std::uint8_t> room) {
        EXPECT_GE(room.size(), d.size());
        std::copy(d.begin(), d.end(), room.begin());
        return d.size();
      });
    }
    want.push_back(std::move(d));
    if (n % 7 == 0)
      client->send_soon_filled(Address::any(Family::v4), to_a, 1200,
                               [](std::span<std::uint8_t>) { return std::size_t{0}; });
  }
  ASSERT_TRUE(d().run_until([&] { return ca.got.size() >= want.size(); }, 5s))
      << ca.got.size() << " of " << want.size();
  d().run_for(50ms);  // nothing more: the empty fills sent nothing
  EXPECT_EQ(ca.got, want);
}

/// Messages written in place on a stream (write_filled: a tunnel message sealed behind its
/// length prefix) keep their order among copied writes; a fill that writes nothing writes
/// nothing and its handler never runs.
TEST_P(Loopback, StreamWritesInPlaceKeepTheirOrder) {
  auto l = std::move(*stack().listen(ep("127.0.0.1:0"), {}));
  const auto local = *l->local_endpoint();
  std::unique_ptr<net::StreamSocket> server;
  l->accept([&](std::error_code ec, std::unique_ptr<net::StreamSocket> s) {
    ASSERT_FALSE(ec);
    server = std::move(s);
  });
  auto client = std::move(*stack().open_stream(Family::v4));
  bool connected = false;
  client->connect(local, 2s, [&](std::error_code ec) { connected = !ec; });
  ASSERT_TRUE(d().run_until([&] { return connected && server; }, 2s));
  std::vector<std::uint8_t> want;
  int handlers = 0, expected_handlers = 0;
  for (std::uint32_t n = 0; n < 300; ++n) {
    const auto m = numbered(100 + n % 300, n);
    want.insert(want.end(), m.begin(), m.end());
    ++expected_handlers;
    if (n % 3 == 0) {
      client->write(m, [&](std::error_code ec) { handlers += ec ? 0 : 1; });
    } else {
      client->write_filled(
          m.size() + 10,
          [&m](std::span<std::uint8_t> room) {
            std::copy(m.begin(), m.end(), room.begin());
            return m.size();
          },
          [&](std::error_code ec) { handlers += ec ? 0 : 1; });
    }
    if (n % 11 == 0) {
      client->write_filled(
          64, [](std::span<std::uint8_t>) { return std::size_t{0}; }, [&](std::error_code) { ++handlers; });
    }
  }
  std::vector<std::uint8_t> got;
  std::function<void()> read_more = [&] {
    server->read_some([&](std::error_code ec, std::span<const std::uint8_t> data) {
      if (ec || data.empty()) return;
      got.insert(got.end(), data.begin(), data.end());
      read_more();
    });
  };
  read_more();
  ASSERT_TRUE(d().run_until([&] { return got.size() >= want.size() && handlers >= expected_handlers; }, 5s))
      << got.size() << " of " << want.size() << " bytes";
  d().run_for(50ms);
  EXPECT_EQ(got, want);
  EXPECT_EQ(handlers, expected_handlers) << "a write that wrote nothing was reported";
}

INSTANTIATE_TEST_SUITE_P(Stacks, Loopback, ::testing::Values("sim", "posix"),
                         [](const auto& info) { return info.param; });

}  // namespace

namespace {

/// PosixStack's batching, seen from its counters (what `duetctl status` shows): a turn's
/// queued datagrams leave in a handful of system calls and arrive in fewer receive calls
/// than datagrams; with the offloads turned off, the same datagrams still arrive.
TEST(PosixBatching, ATurnsDatagramsLeaveInFewSystemCalls) {
  for (bool offloads : {true, false}) {
    SCOPED_TRACE(offloads ? "offloads on" : "offloads off");
    PosixDriver d(posix::StackOptions{offloads, offloads});
    auto open = [&] { return std::move(*d.stack().open_datagram(Family::v4)); };
    auto a = open(), b = open(), client = open();
    ASSERT_FALSE(a->bind(ep("127.0.0.1:0")));
    ASSERT_FALSE(b->bind(ep("127.0.0.1:0")));
    Collector ca, cb;
    ca.start(*a);
    cb.start(*b);
    std::vector<std::vector<std::uint8_t>> want_a, want_b;
    send_batch(*client, *a->local_endpoint(), *b->local_endpoint(), want_a, want_b);
    ASSERT_TRUE(d.run_until([&] { return ca.got.size() >= want_a.size() && cb.got.size() >= want_b.size(); }, 5s));
    EXPECT_EQ(ca.got, want_a);
    EXPECT_EQ(cb.got, want_b);
    const auto& c = d.posix_stack().udp_counters();
    EXPECT_EQ(c.datagrams_sent, 300u);
    EXPECT_LE(c.send_calls, 10u) << "300 datagrams, 64 messages per sendmmsg";
    EXPECT_EQ(c.datagrams_received, 300u);
    EXPECT_LT(c.receive_calls, 300u);
    if (offloads) {
      EXPECT_EQ(c.gso, "on");
      EXPECT_EQ(c.gro, "on");
    } else {
      EXPECT_EQ(c.gso, "off (turned off by 'offload')");
      EXPECT_EQ(c.gro, "off (turned off by 'offload')");
    }
  }
}

}  // namespace

namespace {

/// A program whose only work is a name lookup must not see its loop return before the
/// answer (getaddrinfo runs on a thread of its own, which Asio does not count as work);
/// a cancelled lookup lets the loop end.
TEST(PosixLoop, RunWaitsForAPendingLookupAndNotForACancelledOne) {
  posix::Loop loop;
  posix::PosixStack stack(loop);
  std::optional<net::Result<std::vector<Endpoint>>> answer;
  auto op = stack.resolve("localhost", "7", {}, [&](auto r) { answer = std::move(r); });
  loop.run();
  ASSERT_TRUE(answer.has_value()) << "run() returned before the lookup answered";
  EXPECT_TRUE(answer->ok());

  bool called = false;
  auto cancelled = stack.resolve("localhost", "7", {}, [&](auto) { called = true; });
  cancelled.reset();
  loop.run();  // returns: nothing is left to wait for
  EXPECT_FALSE(called);
}

}  // namespace
