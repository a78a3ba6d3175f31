// The WireGuard data channel over time: rekeying, keys that go stale, a peer whose address
// changes (roaming), and cookies when a flood puts the responder under load.
#include <gtest/gtest.h>

#include <deque>

#include "../sim/world_fixture.hpp"
#include "duet/config/loader.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/server.hpp"
#include "duet/tunnel/crypto_pool.hpp"
#include "duet/tunnel/device.hpp"
#include "tunnel_side.hpp"

using namespace duet;
using namespace duet::test;
using namespace duet::tunnel;
using namespace std::chrono_literals;

namespace {

Device::RandomSource seeded(std::uint64_t seed) {
  auto rng = std::make_shared<sim::Random>(seed);
  return [rng](std::span<std::uint8_t> out) {
    for (auto& b : out) b = static_cast<std::uint8_t>(rng->next());
  };
}

/// Two devices whose sessions are joined by hand: every message a path sends is queued,
/// and pump() delivers the queues (and the replies) until both are empty.
struct TwoHosts {
  TwoHosts() {
    w.add_host("c");
    w.add_host("s");
  }
  sim::SimWorld w{21};
};

/// `crypto`: the devices' crypto threads (nullptr: none, as in the simulator).
struct PairOf : TwoHosts, ::testing::Test {
  explicit PairOf(CryptoPool* crypto) : crypto_(crypto) {}
  void SetUp() override { ASSERT_TRUE(crypto_init()); }
  CryptoPool* crypto_;
  /// As a node in client mode sets them: its peer may be a duet server that answers keepalives.
  DeviceLimits client_limits() const {
    DeviceLimits l;
    l.peers_may_answer_keepalives = true;
    l.crypto = crypto_;
    return l;
  }
  DeviceLimits server_limits() const {
    DeviceLimits l;
    l.crypto = crypto_;
    return l;
  }
  Identity cid = Identity::from_private(clamp_private_key(Key{1}));
  Identity sid = Identity::from_private(clamp_private_key(Key{2}));
  std::vector<Bytes> client_tun, server_tun;
  Device client{cid,
                {{sid.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}},
                w.stack("c").clock(),
                [this](std::span<const std::uint8_t> p) { client_tun.emplace_back(p.begin(), p.end()); },
                seeded(1),
                client_limits()};
  Device server{sid,
                {{cid.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}},
                w.stack("s").clock(),
                [this](std::span<const std::uint8_t> p) { server_tun.emplace_back(p.begin(), p.end()); },
                seeded(2),
                server_limits()};

  /// A path: a session and the messages it has sent that nobody has delivered yet.
  struct Path {
    std::unique_ptr<transport::Session> session;
    std::deque<Bytes> out;
    void attach() {
      session->attach([this](std::span<const std::uint8_t> m) { out.emplace_back(m.begin(), m.end()); });
    }
    /// As a UDP socket's queue is: messages are written in place into the room given.
    void attach_in_place() {
      session->attach(transport::Session::Sender::in_place([this](std::size_t capacity, net::Fill fill) {
        Bytes m(capacity);
        m.resize(fill(m));
        if (!m.empty()) out.push_back(std::move(m));
      }));
    }
  };
  /// Delivers a's messages to b and b's to a (replies go back the same way) until quiet.
  /// Returns the number of messages the far side did not authenticate.
  static int pump(Path& a, Path& b) {
    int unauthenticated = 0;
    while (!a.out.empty() || !b.out.empty()) {
      for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
        while (!from->out.empty()) {
          const Bytes m = std::move(from->out.front());
          from->out.pop_front();
          auto r = to->session->receive(m);
          if (!r.authenticated) ++unauthenticated;
          for (auto& x : r.send) to->out.push_back(std::move(x));
        }
      }
    }
    return unauthenticated;
  }
  Path connect() {
    Path c{client.make_initiator(0, ep("198.18.2.2:1194"), config::Transport::udp), {}};
    c.attach();
    c.out.push_back(c.session->hello());
    return c;
  }
  Path responder(const char* from) {
    Path s{server.make_responder(ep(from), config::Transport::udp), {}};
    s.attach();
    return s;
  }
  /// One TUN read of 40 packets from the client, every tenth for nobody (outside the
  /// server's prefix): `want` are the ones for the server, in order.
  struct TunRead {
    std::vector<Bytes> packets, want;
    std::vector<std::span<const std::uint8_t>> batch;
  };
  static TunRead tun_read_with_some_for_nobody() {
    TunRead r;
    for (std::uint8_t i = 0; i < 40; ++i) {
      const bool nobodys = i % 10 == 9;
      r.packets.push_back(ipv4_udp("198.18.120.2", nobodys ? "198.18.121.1" : "198.18.120.1", i));
      if (!nobodys) r.want.push_back(r.packets.back());
    }
    r.batch.assign(r.packets.begin(), r.packets.end());
    return r;
  }
  /// The server's TUN got exactly `want`, in order (each with its padding cut off).
  void expect_server_got(const std::vector<Bytes>& want, const char* why) {
    ASSERT_EQ(server_tun.size(), want.size()) << why;
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(Bytes(server_tun[i].begin(), server_tun[i].begin() + static_cast<std::ptrdiff_t>(want[i].size())),
                want[i])
          << "packet " << i << " arrived out of order or changed";
    }
  }
};
struct Pair : PairOf {
  Pair() : PairOf(nullptr) {}
};

/// The same pair with crypto threads (two helpers), as duetd runs with `crypto-threads 2`.
struct PoolHolder {
  std::unique_ptr<CryptoPool> pool = std::make_unique<CryptoPool>(2);
};
struct ThreadedPair : PoolHolder, PairOf {
  ThreadedPair() : PairOf(pool.get()) {}
};

// A TUN read's packets go as one batch (Device::route_batch, what the node does): each
// packet for a peer is sealed in place into the path's queue, in order, one message each;
// packets for nobody are dropped without disturbing the run around them.
TEST_F(Pair, ATunReadsBatchIsSealedInPlaceInOrder) {
  Path c{client.make_initiator(0, ep("198.18.2.2:1194"), config::Transport::udp), {}};
  c.attach_in_place();
  c.out.push_back(c.session->hello());
  Path s = responder("198.18.1.2:5000");
  pump(c, s);
  server_tun.clear();
  const TunRead read = tun_read_with_some_for_nobody();
  EXPECT_EQ(client.route_batch(read.batch), read.want.size());
  EXPECT_EQ(c.out.size(), read.want.size()) << "one data message per packet for the peer";
  EXPECT_EQ(pump(c, s), 0) << "every message sealed in place opens";
  expect_server_got(read.want, "one packet each");
}

// With crypto threads (crypto-threads 2), a TUN read's packets are sealed on them and a
// turn's datagrams opened on them, and nothing a user sees changes: one message per packet,
// counters in order, every packet arrives in order; what is forged, tampered or replayed
// in the batch is dropped exactly as on the loop (the replay window is kept in order
// there), and a whole batch said again brings nothing.
TEST_F(ThreadedPair, SealedAndOpenedOnThreadsInOrderWithTheReplayWindowKept) {
  Path c = connect();
  Path s = responder("198.18.1.2:5000");
  pump(c, s);
  server_tun.clear();
  const TunRead read = tun_read_with_some_for_nobody();
  const std::vector<Bytes>& want = read.want;
  EXPECT_EQ(client.route_batch(read.batch), want.size());
  EXPECT_EQ(client.threaded_crypto().sealed, want.size()) << "sealed on the threads";
  ASSERT_EQ(c.out.size(), want.size());
  std::vector<Bytes> sent(c.out.begin(), c.out.end());
  c.out.clear();
  auto counter_of = [](const Bytes& m) {
    std::uint64_t v = 0;
    for (int b = 7; b >= 0; --b) v = (v << 8) | m[8 + static_cast<std::size_t>(b)];  // little-endian
    return v;
  };
  for (std::size_t i = 1; i < sent.size(); ++i) {
    EXPECT_EQ(counter_of(sent[i]), counter_of(sent[i - 1]) + 1) << "counters in the order of the packets";
  }
  // The turn as the server's socket hands it over: the messages, one with a flipped bit,
  // and one said twice.
  Bytes tampered = sent[5];
  tampered[40] ^= 1;
  std::vector<Bytes> turn = sent;
  turn.insert(turn.begin() + 6, tampered);
  turn.push_back(sent[3]);
  auto deliver = [&](const std::vector<Bytes>& msgs) {
    std::vector<net::ReceivedDatagram> batch;
    for (const auto& m : msgs) batch.push_back({ep("198.18.1.2:5000"), net::Address::any(net::Family::v4), m});
    server.open_batch(batch);
    for (const auto& d : batch) (void)s.session->receive(d.data);
  };
  deliver(turn);
  EXPECT_EQ(server.threaded_crypto().opened, turn.size()) << "opened on the threads";
  expect_server_got(want, "the tampered and the repeated message are dropped");
  deliver(turn);  // all of it again
  EXPECT_EQ(server_tun.size(), want.size()) << "a replayed batch brings nothing";
}

// p2p peers that start together both initiate on one path, and each says its hello again
// when the other's arrives (the engine does, in case its first was lost): the answers to
// the first hellos cross and must still complete both handshakes at once.
TEST_F(Pair, CrossingInitiationsCompleteEvenWhenEachHelloIsSaidAgain) {
  auto c = client.make_initiator(0, ep("198.18.2.2:1194"), config::Transport::udp);
  auto s = server.make_initiator(0, ep("198.18.1.2:1194"), config::Transport::udp);
  const Bytes c1 = c->hello(), s1 = s->hello();
  const auto client_answers = c->receive(s1);
  (void)c->hello();  // said again
  const auto server_answers = s->receive(c1);
  (void)s->hello();
  ASSERT_EQ(client_answers.send.size(), 1u);
  ASSERT_EQ(server_answers.send.size(), 1u);
  EXPECT_TRUE(c->receive(server_answers.send[0]).answers_hello) << "the answer to the client's first hello";
  EXPECT_TRUE(s->receive(client_answers.send[0]).answers_hello) << "the answer to the server's first hello";
}

// Cryptokey routing at scale: a peer with 100 000 prefixes is looked up like one with one,
// and a more specific prefix given to another peer on reload takes that address away from
// it (WireGuard's rule): its packets from there are dropped from then on.
TEST_F(Pair, AHundredThousandPrefixesOnOnePeerAndAMoreSpecificOneElsewhere) {
  std::vector<net::Prefix> many{*net::Prefix::parse("198.18.120.0/24")};
  for (std::uint32_t i = 0; i < 100000; ++i) {
    net::Address::Bytes b{0xfd, 0x00, 0x05};
    b[13] = static_cast<std::uint8_t>(i >> 16);
    b[14] = static_cast<std::uint8_t>(i >> 8);
    b[15] = static_cast<std::uint8_t>(i);
    many.push_back({net::Address::v6(b), 128});
  }
  const auto changes = server.update_peers({{cid.public_key, {}, many}});
  EXPECT_EQ(changes.kept, 1u);
  EXPECT_EQ(server.allowed_ips(0).size(), 100001u);
  Path c = connect();
  Path s = responder("198.18.1.2:5000");
  pump(c, s);
  ASSERT_TRUE(client.route(ipv4_udp("198.18.120.2", "198.18.120.1", 1)));
  pump(c, s);
  ASSERT_EQ(server_tun.size(), 1u) << "198.18.120.2 is in the peer's /24";
  // A reload gives 198.18.120.2/32 to a second peer: it is more specific, so it wins.
  const Identity other = Identity::from_private(clamp_private_key(Key{77}));
  server.update_peers({{cid.public_key, {}, many}, {other.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}});
  ASSERT_TRUE(client.route(ipv4_udp("198.18.120.2", "198.18.120.1", 2)));
  ASSERT_TRUE(client.route(ipv4_udp("198.18.120.3", "198.18.120.1", 3)));
  pump(c, s);
  ASSERT_EQ(server_tun.size(), 2u) << "only the packet from .3 (still the first peer's) arrived";
  EXPECT_EQ(server_tun[1][27], 3);
}

TEST_F(Pair, AfterTheHandshakeBothSidesSendAndTheResponderWaitsForConfirmation) {
  Path c = connect();
  Path s = responder("198.18.1.2:5000");
  EXPECT_EQ(pump(c, s), 0);
  EXPECT_EQ(client.peers()[0].handshakes, 1u);
  EXPECT_EQ(server.peers()[0].handshakes, 1u);
  ASSERT_TRUE(server.peers()[0].current) << "the initiator's keepalive confirmed the responder's keys";
  EXPECT_TRUE(server.peers()[0].next.empty());
  ASSERT_TRUE(server.route(ipv4_udp("198.18.120.1", "198.18.120.2", 7)));
  pump(c, s);
  ASSERT_EQ(client_tun.size(), 1u);
  EXPECT_EQ(client_tun[0][27], 7);
}

TEST_F(Pair, StaleKeysAreRenewedByWhoeverHasAPacketToSendAndThePacketWaits) {
  Path c = connect();
  Path s = responder("198.18.1.2:5000");
  pump(c, s);
  w.run_for(200s);  // past Reject-After-Time: nobody may seal with these keys now
  ASSERT_TRUE(server.route(ipv4_udp("198.18.120.1", "198.18.120.2", 1))) << "held, not dropped";
  ASSERT_TRUE(server.route(ipv4_udp("198.18.120.1", "198.18.120.2", 2)));
  ASSERT_EQ(s.out.size(), 1u) << "one initiation, not one per packet";
  EXPECT_EQ(s.out.front()[0], kMessageHandshakeInitiation);
  EXPECT_TRUE(client_tun.empty());
  pump(c, s);
  ASSERT_EQ(client_tun.size(), 2u) << "the held packets, in order, once the new keys exist";
  EXPECT_EQ(client_tun[0][27], 1);
  EXPECT_EQ(client_tun[1][27], 2);
  EXPECT_EQ(server.peers()[0].handshakes, 2u);
}

TEST_F(Pair, AnUnansweredRekeyIsRetriedEveryFiveSecondsThenAbandoned) {
  Path c = connect();
  Path s = responder("198.18.1.2:5000");
  pump(c, s);
  w.run_for(200s);
  ASSERT_TRUE(server.route(ipv4_udp("198.18.120.1", "198.18.120.2", 1)));
  s.out.clear();  // the initiation is lost, and so is every retry
  int initiations = 1;
  for (int i = 0; i < 40; ++i) {
    w.run_for(3s);
    for (const auto& m : s.out) initiations += m[0] == kMessageHandshakeInitiation;
    s.out.clear();
  }
  // 90 s of attempts at 5 s + up to 333 ms: 17 or 18 initiations, then silence.
  EXPECT_GE(initiations, 16);
  EXPECT_LE(initiations, 19);
  EXPECT_FALSE(server.peers()[0].staged) << "the held packet is dropped with the attempt";
}

TEST_F(Pair, APeerThatMovesIsFollowedAfterItsFirstAuthenticatedPacket) {
  Path c = connect();
  Path s = responder("198.18.1.2:5000");
  pump(c, s);
  // The client's NAT now maps it to another port: its packets arrive on a new path.
  Path moved = responder("198.18.1.2:6000");
  ASSERT_TRUE(client.route(ipv4_udp("198.18.120.2", "198.18.120.1", 1)));
  EXPECT_EQ(pump(c, moved), 0) << "a data packet with known keys authenticates the new path";
  ASSERT_EQ(server_tun.size(), 1u);
  ASSERT_TRUE(server.peers()[0].endpoint);
  EXPECT_EQ(*server.peers()[0].endpoint, ep("198.18.1.2:6000"));
  ASSERT_TRUE(server.route(ipv4_udp("198.18.120.1", "198.18.120.2", 2)));
  EXPECT_TRUE(s.out.empty()) << "nothing goes to the old address";
  ASSERT_EQ(moved.out.size(), 1u);

  // Somebody replays the client's packet from a third address: it proves nothing.
  ASSERT_TRUE(client.route(ipv4_udp("198.18.120.2", "198.18.120.1", 3)));
  const Bytes captured = c.out.front();
  pump(c, moved);
  Path attacker = responder("198.18.9.9:7000");
  EXPECT_FALSE(attacker.session->receive(captured).authenticated);
  EXPECT_EQ(*server.peers()[0].endpoint, ep("198.18.1.2:6000"));
  EXPECT_EQ(server_tun.size(), 2u);
}

// duet's path check: a client asks from another address whether that path works; the
// server answers from where it came, keeps no state for it and does not move the peer
// (WireGuard's rules would, for a handshake or data there). Replayed or forged checks get
// nothing, and a peer not known to be duet's is never asked.
TEST_F(Pair, APathCheckIsAnsweredFromAnotherAddressWithoutMovingThePeer) {
  Path c = connect();
  Path s = responder("198.18.1.2:5000");
  pump(c, s);
  auto standby = client.make_initiator(0, ep("198.18.2.3:1194"), config::Transport::udp);
  EXPECT_TRUE(standby->path_check().empty()) << "not yet seen answering a keepalive: maybe WireGuard";
  c.out.push_back(c.session->keepalive());
  pump(c, s);
  ASSERT_TRUE(client.peers()[0].answers_keepalives);
  const Bytes ask = standby->path_check();
  ASSERT_EQ(ask.size(), 32u) << "as small as a keepalive";
  EXPECT_EQ(ask[0], 0xd0);
  Path other = responder("198.18.3.2:5000");  // the client's other address, as the server sees it
  auto r = other.session->receive(ask);
  EXPECT_FALSE(r.authenticated) << "no state kept for the path";
  ASSERT_EQ(r.send.size(), 1u);
  EXPECT_EQ(r.send[0].size(), 32u) << "no amplification";
  EXPECT_EQ(*server.peers()[0].endpoint, ep("198.18.1.2:5000")) << "the peer was not moved";
  const auto back = standby->receive(r.send[0]);
  EXPECT_TRUE(back.answers_check);
  EXPECT_FALSE(back.authenticated);
  EXPECT_TRUE(back.send.empty());
  // A replay, and a check with one bit changed, get nothing.
  EXPECT_TRUE(other.session->receive(ask).send.empty());
  Bytes forged = standby->path_check();
  forged.back() ^= 1;
  EXPECT_TRUE(other.session->receive(forged).send.empty());
  // Traffic still goes where it went.
  ASSERT_TRUE(server.route(ipv4_udp("198.18.120.1", "198.18.120.2", 1)));
  EXPECT_EQ(s.out.size(), 1u);
  EXPECT_TRUE(other.out.empty());
}

// Between p2p peers keepalives prove nothing (each side sends its own), so a p2p node asks
// its peer path checks before knowing it is duet's: twice at most while none is answered
// (WireGuard drops the unknown type), and without limit once one is.
TEST_F(Pair, AP2pPeerIsAskedTwiceUntilItAnswersAPathCheck) {
  DeviceLimits p2p_limits;
  p2p_limits.peers_may_answer_path_checks = true;
  std::vector<Bytes> tun;
  const auto p2p_device = [&] {
    return std::make_unique<Device>(
        cid, std::vector<PeerConfig>{{sid.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}},
        w.stack("c").clock(), [&](std::span<const std::uint8_t> p) { tun.emplace_back(p.begin(), p.end()); }, seeded(3),
        p2p_limits);
  };
  const auto connected = [&](Device& d) {
    w.run_for(1s);  // a newer initiation than the last one the server took (its replay rule)
    Path c{d.make_initiator(0, ep("198.18.2.2:1194"), config::Transport::udp), {}};
    c.attach();
    c.out.push_back(c.session->hello());
    Path s = responder("198.18.1.2:5000");
    pump(c, s);
    c.out.push_back(c.session->keepalive());  // confirms the responder's keys, as the engine's first keepalive
    pump(c, s);
    return d.make_initiator(0, ep("198.18.2.3:1194"), config::Transport::udp);
  };
  {  // A peer that never answers (its checks lost here): asked twice, then no more.
    auto d = p2p_device();
    auto standby = connected(*d);
    ASSERT_FALSE(d->peers()[0].answers_keepalives);
    EXPECT_FALSE(standby->path_check().empty());
    EXPECT_FALSE(standby->path_check().empty());
    EXPECT_TRUE(standby->path_check().empty()) << "two unanswered: perhaps WireGuard";
  }
  {  // A peer that answers: asked as often as the engine likes.
    auto d = p2p_device();
    auto standby = connected(*d);
    Path other = responder("198.18.3.2:5000");
    auto r = other.session->receive(standby->path_check());
    ASSERT_EQ(r.send.size(), 1u);
    EXPECT_TRUE(standby->receive(r.send[0]).answers_check);
    EXPECT_TRUE(d->peers()[0].answers_path_checks);
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(standby->path_check().empty());
  }
}

class RekeyOver : public ::testing::TestWithParam<const char*> {
protected:
  void SetUp() override { ASSERT_TRUE(crypto_init()); }
};

TEST_P(RekeyOver, SevenMinutesOfTrafficCrossThreeRekeysWithoutLossOrReconnect) {
  sim::SimWorld w(31);
  build_three_hosts(w);
  const Identity s = Identity::from_private(clamp_private_key(Key{3}));
  const Identity c = Identity::from_private(clamp_private_key(Key{4}));
  const std::string proto = GetParam();
  Side server(w, "server", "mode server\nproto " + proto + "\n", s,
              {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}});
  Side client(w, "client", "mode client\nremote 198.18.2.2 1194 " + proto + "\n", c,
              {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}});
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s));
  for (int i = 0; i < 420; ++i) {
    EXPECT_TRUE(client.device.route(ipv4_udp("198.18.120.2", "198.18.120.1", static_cast<std::uint8_t>(i))));
    EXPECT_TRUE(server.device.route(ipv4_udp("198.18.120.1", "198.18.120.2", static_cast<std::uint8_t>(i))));
    w.run_for(1s);
  }
  EXPECT_EQ(server.tun.size(), 420u);
  EXPECT_EQ(client.tun.size(), 420u);
  EXPECT_EQ(client.client->connections_made(), 1u);
  EXPECT_GE(client.device.peers()[0].handshakes, 4u) << "one at the start, then one every 120 s";
  EXPECT_LE(client.device.peers()[0].handshakes, 5u);
  EXPECT_EQ(server.device.peers()[0].handshakes, client.device.peers()[0].handshakes);
}

INSTANTIATE_TEST_SUITE_P(Transports, RekeyOver, ::testing::Values("udp", "tcp"));

/// A client side by hand, for the roaming tests: its device (what reaches its TUN is kept
/// in `tun`) and one initiator session to the server at 198.18.2.2:1194, not yet attached.
struct HandClient {
  HandClient(sim::SimWorld& w, const Identity& me, const Key& server, std::uint64_t seed)
      : device(
            me, {{server, {}, {*net::Prefix::parse("198.18.120.0/24")}}}, w.stack("client").clock(),
            [this](std::span<const std::uint8_t> p) { tun.emplace_back(p.begin(), p.end()); }, seeded(seed)),
        session(device.make_initiator(0, ep("198.18.2.2:1194"), config::Transport::udp)) {}
  std::vector<Bytes> tun;
  Device device;
  std::unique_ptr<transport::Session> session;
};

TEST(Roaming, AServerFollowsAClientWhoseSourcePortChanges) {
  ASSERT_TRUE(crypto_init());
  sim::SimWorld w(32);
  build_three_hosts(w);
  const Identity s = Identity::from_private(clamp_private_key(Key{5}));
  const Identity c = Identity::from_private(clamp_private_key(Key{6}));
  Side server(w, "server", "mode server\nproto udp\n", s,
              {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}});
  // The client side by hand: one session, and two sockets standing for a NAT's mappings.
  HandClient client(w, c, s.public_key, 8);
  auto& session = client.session;
  std::vector<std::unique_ptr<net::DatagramSocket>> nat;
  for (const char* local : {"198.18.1.2:5000", "198.18.1.2:6000"}) {
    nat.push_back(std::move(*w.stack("client").open_datagram(net::Family::v4)));
    ASSERT_FALSE(nat.back()->bind(ep(local)));
  }
  const auto server_ep = ep("198.18.2.2:1194");
  std::function<void(net::DatagramSocket&)> listen = [&](net::DatagramSocket& sock) {
    sock.receive([&](std::error_code ec, const net::Endpoint&, std::span<const std::uint8_t> d) {
      if (!ec) {
        for (const auto& m : session->receive(d).send) (void)sock.send_to(server_ep, m);
      }
      listen(sock);
    });
  };
  for (auto& sock : nat) listen(*sock);
  auto via = [&](net::DatagramSocket& sock) {
    session->attach([&sock, server_ep](std::span<const std::uint8_t> m) { (void)sock.send_to(server_ep, m); });
  };
  via(*nat[0]);
  (void)nat[0]->send_to(server_ep, session->hello());
  w.run_for(100ms);
  ASSERT_TRUE(server.device.peers()[0].endpoint);
  EXPECT_EQ(*server.device.peers()[0].endpoint, ep("198.18.1.2:5000"));

  via(*nat[1]);  // the mapping changes
  ASSERT_TRUE(client.device.route(ipv4_udp("198.18.120.2", "198.18.120.1", 1)));
  w.run_for(100ms);
  ASSERT_EQ(server.tun.size(), 1u);
  EXPECT_EQ(*server.device.peers()[0].endpoint, ep("198.18.1.2:6000"));
  ASSERT_TRUE(server.device.route(ipv4_udp("198.18.120.1", "198.18.120.2", 2)));
  w.run_for(100ms);
  ASSERT_EQ(client.tun.size(), 1u) << "the answer reached the client at its new address";
  EXPECT_EQ(client.tun[0][27], 2);
  EXPECT_EQ(server.device.peers()[0].handshakes, 1u) << "no new handshake was needed";
}

// A NAT (or a host) gives a source port that one client left to another client: the
// server takes the second client's handshake from it and answers there, as WireGuard does,
// instead of keeping the source for a peer that is gone (before, never: the second client
// could not connect from it until the server forgot the path, 180 s later).
TEST(Roaming, ASourceOnePeerLeftServesTheNextPeerThatAuthenticatesFromIt) {
  ASSERT_TRUE(crypto_init());
  sim::SimWorld w(34);
  build_three_hosts(w);
  const Identity s = Identity::from_private(clamp_private_key(Key{5}));
  const Identity c1 = Identity::from_private(clamp_private_key(Key{6}));
  const Identity c2 = Identity::from_private(clamp_private_key(Key{9}));
  Side server(w, "server", "mode server\nproto udp\n", s,
              {{c1.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}},
               {c2.public_key, {}, {*net::Prefix::parse("198.18.120.3/32")}}});
  const auto server_ep = ep("198.18.2.2:1194");
  auto sock = std::move(*w.stack("client").open_datagram(net::Family::v4));
  ASSERT_FALSE(sock->bind(ep("198.18.1.2:5000")));
  // Each client by hand, on the same socket in turn.
  auto make = [&](const Identity& id, std::uint8_t seed) {
    auto c = std::make_unique<HandClient>(w, id, s.public_key, seed);
    c->session->attach([&sock, server_ep](std::span<const std::uint8_t> m) { (void)sock->send_to(server_ep, m); });
    return c;
  };
  HandClient* current = nullptr;
  std::function<void()> listen = [&] {
    sock->receive([&](std::error_code ec, const net::Endpoint&, std::span<const std::uint8_t> d) {
      if (!ec && current != nullptr) {
        for (const auto& m : current->session->receive(d).send) (void)sock->send_to(server_ep, m);
      }
      listen();
    });
  };
  listen();

  auto first = make(c1, 10);
  current = first.get();
  (void)sock->send_to(server_ep, first->session->hello());
  w.run_for(100ms);
  ASSERT_TRUE(server.device.route(ipv4_udp("198.18.120.1", "198.18.120.2", 1)));
  w.run_for(100ms);
  ASSERT_EQ(first->tun.size(), 1u) << "the first client is connected from 198.18.1.2:5000";

  // Another configured peer from that source while the first is live (a spoofed address):
  // the path stays the first client's.
  auto second = make(c2, 11);
  current = second.get();
  (void)sock->send_to(server_ep, second->session->hello());
  w.run_for(100ms);
  EXPECT_FALSE(server.device.peers()[1].endpoint) << "a live peer's source is not handed over";

  // The first client is gone; after 10 s of its silence the second takes its source port.
  first.reset();
  w.run_for(10s);
  (void)sock->send_to(server_ep, second->session->hello());
  w.run_for(100ms);
  ASSERT_TRUE(server.device.peers()[1].endpoint) << "the second client's handshake was answered";
  EXPECT_EQ(*server.device.peers()[1].endpoint, ep("198.18.1.2:5000"));
  ASSERT_TRUE(server.device.route(ipv4_udp("198.18.120.1", "198.18.120.3", 2)));
  w.run_for(100ms);
  ASSERT_EQ(second->tun.size(), 1u) << "packets for the second client reach it";
  EXPECT_EQ(second->tun[0][27], 2);
  // Packets for the first client no longer go to a source that is not its own.
  const auto sent = server.device.peers()[0].tx_bytes;
  (void)server.device.route(ipv4_udp("198.18.120.1", "198.18.120.2", 3));
  w.run_for(100ms);
  EXPECT_EQ(server.device.peers()[0].tx_bytes, sent);
  EXPECT_FALSE(server.device.peers()[0].endpoint) << "the first client is no longer where it was";
  ASSERT_TRUE(server.device.route(ipv4_udp("198.18.120.1", "198.18.120.3", 4)));
  w.run_for(100ms);
  EXPECT_EQ(second->tun.size(), 2u) << "and the second client keeps the source";
}

TEST(Cookies, AFloodGetsCookieRepliesAndARealClientStillConnects) {
  ASSERT_TRUE(crypto_init());
  sim::SimWorld w(33);
  build_three_hosts(w);
  add_stranger(w, "attacker", 64);
  const Identity s = Identity::from_private(clamp_private_key(Key{7}));
  const Identity c = Identity::from_private(clamp_private_key(Key{8}));
  Side server(w, "server", "mode server\nproto udp\n", s,
              {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}});

  // 64 sources send initiations with a valid mac1 (anyone who knows the server's public
  // key can), 2560 a second, for 8 seconds.
  InitiationFlood flood(w, "attacker", 64, s.public_key, ep("198.18.2.2:1194"));
  std::size_t cookies_seen = 0;
  for (const auto& sock : flood.sockets()) {
    std::function<void()> arm = [&, raw = sock.get()] {
      raw->receive([&, raw](std::error_code ec, const net::Endpoint&, std::span<const std::uint8_t> d) {
        if (!ec && !d.empty() && d[0] == kMessageHandshakeCookie) ++cookies_seen;
        (void)raw;
      });
    };
    arm();
  }
  flood.start(25ms, 320);
  w.run_for(500ms);
  EXPECT_TRUE(server.device.under_load());

  Side client(w, "client", "mode client\nremote 198.18.2.2 1194 udp\n", c,
              {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}});
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s)) << "connected during the flood";
  EXPECT_TRUE(server.device.under_load());
  EXPECT_TRUE(client.device.peers()[0].cookie) << "it was asked for a cookie, and used it";
  EXPECT_GT(cookies_seen, 0u) << "a cookie reply goes to the address the initiation came from";
  EXPECT_TRUE(client.device.route(ipv4_udp("198.18.120.2", "198.18.120.1", 5)));
  w.run_for(100ms);
  ASSERT_EQ(server.tun.size(), 1u);
  w.run_for(10s);
  // 20 480 initiations: the first thousand of the first second were handshakes (each an
  // unknown key: one Diffie-Hellman), every later one got a cookie.
  EXPECT_GT(server.device.cookie_replies_sent(), 19000u) << "the flood got cookies, not handshakes";
  EXPECT_FALSE(server.device.under_load()) << "a second after the flood ends, no cookies are asked";
}

// Handshakes a busy server sees in normal life (here 320 a second from 64 addresses) are
// not a flood: nobody, the real client included, is asked for a cookie round trip.
TEST(Cookies, AServerBelowTheThresholdAsksNoOneForACookie) {
  ASSERT_TRUE(crypto_init());
  sim::SimWorld w(35);
  build_three_hosts(w);
  add_stranger(w, "busy", 64);
  const Identity s = Identity::from_private(clamp_private_key(Key{7}));
  const Identity c = Identity::from_private(clamp_private_key(Key{8}));
  Side server(w, "server", "mode server\nproto udp\n", s,
              {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}});
  InitiationFlood busy(w, "busy", 64, s.public_key, ep("198.18.2.2:1194"));
  busy.start(200ms, 15);
  w.run_for(1s);
  Side client(w, "client", "mode client\nremote 198.18.2.2 1194 udp\n", c,
              {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}});
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s));
  w.run_for(2s);
  EXPECT_EQ(busy.rounds(), 15);
  EXPECT_FALSE(server.device.under_load());
  EXPECT_EQ(server.device.cookie_replies_sent(), 0u) << "960 initiations in 3 s: no cookie asked";
  EXPECT_FALSE(client.device.peers()[0].cookie) << "the real client connected in one round trip";
}

}  // namespace

// A host that answers its cookie is a real address, but it may still ask for handshakes
// faster than anyone needs: under load each source gets 20 a second after a burst of 5,
// so it cannot make the responder do a Diffie-Hellman per packet; other sources, like a
// real client, keep their own allowance.
TEST(Cookies, AHostThatAnswersItsCookieIsHeldToTwentyHandshakesASecond) {
  ASSERT_TRUE(crypto_init());
  sim::SimWorld w(34);
  build_three_hosts(w);
  add_stranger(w, "eager", 1);
  const Identity s = Identity::from_private(clamp_private_key(Key{7}));
  const Identity c = Identity::from_private(clamp_private_key(Key{8}));
  // Under load from the second initiation in a second, so one host is enough to show it.
  Side server(w, "server", "mode server\nproto udp\n", s,
              {{c.public_key, {}, {*net::Prefix::parse("198.18.120.2/32")}}}, DeviceLimits{.handshakes_per_second = 1});

  auto& eager = w.stack("eager");
  auto sock = std::move(*eager.open_datagram(net::Family::v4));
  ASSERT_FALSE(sock->bind(ep("198.18.9.2:4000")));
  const Identity stranger = Identity::from_private(clamp_private_key(Key{10}));
  std::optional<Mac> cookie;
  Mac sent_mac1{};
  std::uint32_t n = 0;
  auto send_initiation = [&] {
    InitiatorState st;
    ++n;
    const Bytes m = create_initiation(stranger, s.public_key, Key{}, n, tai64n(1000 + n, 0),
                                      clamp_private_key(Key{static_cast<std::uint8_t>(n)}), st, cookie);
    sent_mac1 = *mac1_of(m);
    (void)sock->send_to(ep("198.18.2.2:1194"), m);
  };
  std::function<void()> listen = [&] {
    sock->receive([&](std::error_code ec, const net::Endpoint&, std::span<const std::uint8_t> d) {
      if (!ec && !cookie && !d.empty() && d[0] == kMessageHandshakeCookie)
        cookie = consume_cookie_reply(s.public_key, d, sent_mac1);
      listen();
    });
  };
  listen();
  send_initiation();
  send_initiation();  // the second one in the second: a cookie reply
  w.run_for(50ms);
  ASSERT_TRUE(cookie) << "the eager host was asked for a cookie and took it";

  // 100 cookie-carrying initiations a second for 3 seconds.
  auto timer = eager.clock().make_timer();
  int sent = 0;
  std::function<void()> tick = [&] {
    send_initiation();
    if (++sent < 300) timer->start(10ms, tick);
  };
  tick();
  w.run_for(1s);
  Side client(w, "client", "mode client\nremote 198.18.2.2 1194 udp\n", c,
              {{s.public_key, {}, {*net::Prefix::parse("198.18.120.0/24")}}});
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s))
      << "a real client is not held back by the eager one";
  EXPECT_TRUE(server.device.under_load());
  w.run_for(3s);
  ASSERT_EQ(sent, 300);
  // At most 5 + 3 × 20 of the 300 got a Diffie-Hellman.
  const auto limited = server.device.handshakes_rate_limited();
  EXPECT_GE(limited, 300u - 66u);
  EXPECT_LE(limited, 300u - 60u) << "and no fewer than the rate allows";
}
