// WireGuard's configuration protocol on nodes in the simulator: what `wg set`, `wg
// setconf` and `wg show` send and read, as text, against node::Node with a simulated TUN.
// (tests/netns/wg_tools_test.sh drives the real duetd with the real `wg`.)
#include <gtest/gtest.h>

#include <sstream>

#include "../sim/world_fixture.hpp"
#include "duet/config/loader.hpp"
#include "duet/net/ping.hpp"
#include "duet/node/node.hpp"
#include "duet/node/uapi.hpp"
#include "duet/sim/tun.hpp"
#include "duet/tunnel/crypto.hpp"

using namespace duet;
using namespace std::chrono_literals;
namespace uapi = duet::node::uapi;

namespace {

std::string hex(const config::Key& k) {
  std::ostringstream o;
  for (auto b : k) o << "0123456789abcdef"[b >> 4] << "0123456789abcdef"[b & 15];
  return o.str();
}

config::Key key_of(std::uint8_t seed) {
  config::Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed * 31 + i * 7 + 1);
  return tunnel::clamp_private_key(k);
}

config::Key pub(const config::Key& priv) { return tunnel::Identity::from_private(priv).public_key; }

/// A node as `duetd IFNAME` makes it: listening on UDP `port`, no key, no peer, all set by
/// the configuration protocol; its TUN answers pings to `inner`.
struct WgNode {
  WgNode(sim::SimWorld& w, const std::string& host, std::uint16_t port, const char* inner)
      : world(w),
        stack(w.stack(host)),
        tun(stack.clock(), "wg0", {*net::Address::parse(inner)}),
        node(stack, &tun, load(port), options()) {
    std::string why;
    EXPECT_TRUE(node.start(why)) << why;
  }
  static config::Config load(std::uint16_t port) {
    auto r = config::load_text("mode server\nproto udp\nlport " + std::to_string(port) + "\n", "wg.conf");
    EXPECT_TRUE(r.ok());
    return r.config;
  }
  static node::NodeOptions options() {
    node::NodeOptions o;
    o.runtime_configured = true;
    return o;
  }
  uapi::Error set(const std::string& body) { return uapi::set(node, stack, body); }
  std::string get() { return uapi::get(node, stack); }
  /// The value of every `key=` line of get, in order.
  std::vector<std::string> values(const std::string& key) {
    std::vector<std::string> out;
    std::istringstream in(get());
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(key + "=", 0) == 0) out.push_back(line.substr(key.size() + 1));
    }
    return out;
  }
  sim::SimWorld& world;
  net::NetworkStack& stack;
  sim::SimTun tun;
  node::Node node;
};

/// client 198.18.1.2 / fd00:1::2 (a: wg 10.0.0.1) -- router -- server 198.18.2.2 / fd00:2::2 (b: wg 10.0.0.2)
struct WgPair : ::testing::Test {
  void configure_both(const std::string& b_endpoint = "198.18.2.2:51821") {
    ASSERT_TRUE(a.set("private_key=" + hex(ka) + "\npublic_key=" + hex(pub(kb)) + "\nendpoint=" + b_endpoint +
                      "\nallowed_ip=10.0.0.2/32\n")
                    .ok());
    ASSERT_TRUE(b.set("private_key=" + hex(kb) + "\npublic_key=" + hex(pub(ka)) + "\nallowed_ip=10.0.0.1/32\n").ok());
  }
  /// A pings B's inner address from A's; true when the reply came back within `limit`.
  bool ping(std::uint16_t seq, net::Duration limit = 2s) {
    const auto before = a.tun.echo_replies().count(*net::Address::parse("10.0.0.2"))
                            ? a.tun.echo_replies().at(*net::Address::parse("10.0.0.2"))
                            : 0;
    a.tun.inject(net::ipv4_icmp_echo(8, *net::Address::parse("10.0.0.1"), *net::Address::parse("10.0.0.2"), 1, seq));
    return w.run_until(
        [&] {
          auto it = a.tun.echo_replies().find(*net::Address::parse("10.0.0.2"));
          return it != a.tun.echo_replies().end() && it->second > before;
        },
        limit);
  }
  sim::SimWorld w{7};
  bool built = (test::build_three_hosts(w), true);  // before the nodes below
  config::Key ka = key_of(1), kb = key_of(2);
  WgNode a{w, "client", 51820, "10.0.0.1"};
  WgNode b{w, "server", 51821, "10.0.0.2"};
  bool listening = (w.run_for(10ms), true);  // the listeners open on the loop
};

TEST_F(WgPair, AFreshNodeAnswersGetWithItsPortOnly) {
  EXPECT_EQ(a.get(), "listen_port=51820\n");
  EXPECT_FALSE(ping(1, 500ms)) << "no key, no peer: nothing goes through";
}

TEST_F(WgPair, SetThenGetGivesBackEveryKey) {
  const config::Key psk = key_of(9);
  ASSERT_TRUE(a.set("private_key=" + hex(ka) + "\nfwmark=51820\npublic_key=" + hex(pub(kb)) +
                    "\nprotocol_version=1\npreshared_key=" + hex(psk) +
                    "\nendpoint=[fd00:2::2]:51821\npersistent_keepalive_interval=25\nallowed_ip=10.0.0.2/32\n"
                    "allowed_ip=fd00:99::/64\n")
                  .ok());
  const std::string expected_head =
      "private_key=" + hex(ka) + "\nlisten_port=51820\nfwmark=51820\npublic_key=" + hex(pub(kb)) +
      "\npreshared_key=" + hex(psk) + "\nprotocol_version=1\nendpoint=[fd00:2::2]:51821\n";
  EXPECT_EQ(a.get().substr(0, expected_head.size()), expected_head) << a.get();
  EXPECT_EQ(a.values("persistent_keepalive_interval"), std::vector<std::string>{"25"});
  EXPECT_EQ(a.values("allowed_ip"), (std::vector<std::string>{"10.0.0.2/32", "fd00:99::/64"}));
  EXPECT_EQ(a.values("last_handshake_time_sec").size(), 1u);
}

TEST_F(WgPair, NodesConfiguredOnlyBySetCarryTraffic) {
  configure_both();
  ASSERT_TRUE(ping(1)) << "A's endpoint for B starts the handshake; B answers";
  // B learned where A is from the handshake: its get shows A's address and port.
  EXPECT_EQ(b.values("endpoint"), std::vector<std::string>{"198.18.1.2:51820"});
  EXPECT_NE(b.values("last_handshake_time_sec").front(), "0");
  EXPECT_NE(a.values("tx_bytes").front(), "0");
  EXPECT_NE(b.values("rx_bytes").front(), "0");
}

TEST_F(WgPair, TheEndpointCanMoveToTheOtherFamily) {
  configure_both();
  ASSERT_TRUE(ping(1));
  ASSERT_TRUE(a.set("public_key=" + hex(pub(kb)) + "\nendpoint=[fd00:2::2]:51821\n").ok());
  EXPECT_EQ(a.values("endpoint"), std::vector<std::string>{"[fd00:2::2]:51821"});
  ASSERT_TRUE(ping(2));
  EXPECT_EQ(b.values("endpoint"), std::vector<std::string>{"[fd00:1::2]:51820"}) << "B follows A to IPv6 (roaming)";
}

TEST_F(WgPair, ABadLineAnywhereChangesNothing) {
  configure_both();
  const std::string before = a.get();
  const std::string add = "public_key=" + hex(pub(key_of(5))) + "\nallowed_ip=10.9.0.0/16\n";
  const auto e1 = a.set("listen_port=40000\n" + add + "endpoint=nowhere\n");
  EXPECT_EQ(e1.code, uapi::kInvalid);
  EXPECT_EQ(a.set(add + "allowed_ip 10.1.0.0/16\n").code, uapi::kProtocol);
  EXPECT_EQ(a.set(add + "allowed_ips=10.1.0.0/16\n").code, uapi::kInvalid) << "an unknown key";
  EXPECT_EQ(a.set("public_key=abc\n").code, uapi::kInvalid);
  EXPECT_EQ(a.set("private_key=" + hex(ka).substr(2) + "zz\n").code, uapi::kInvalid);
  EXPECT_EQ(a.set(add + "persistent_keepalive_interval=65536\n").code, uapi::kInvalid);
  EXPECT_EQ(a.set(add + "allowed_ip=10.1.0.0/33\n").code, uapi::kInvalid);
  EXPECT_EQ(a.set(add + "protocol_version=2\n").code, uapi::kInvalid);
  EXPECT_EQ(a.set("replace_peers=yes\n").code, uapi::kInvalid);
  EXPECT_EQ(a.get(), before) << "not one of these requests may have changed anything";
  EXPECT_TRUE(ping(1));
}

TEST_F(WgPair, RemoveUpdateOnlyReplaceAndPrefixesThatMove) {
  const config::Key p1 = pub(key_of(11)), p2 = pub(key_of(12)), p3 = pub(key_of(13));
  ASSERT_TRUE(a.set("private_key=" + hex(ka) + "\npublic_key=" + hex(p1) +
                    "\nallowed_ip=10.1.0.0/16\nallowed_ip=10.2.0.0/16\npublic_key=" + hex(p2) +
                    "\nallowed_ip=10.3.0.0/16\n")
                  .ok());
  // update_only: an unknown peer is not created; a known one is updated.
  ASSERT_TRUE(a.set("public_key=" + hex(p3) + "\nupdate_only=true\nallowed_ip=10.4.0.0/16\npublic_key=" + hex(p2) +
                    "\nupdate_only=true\nallowed_ip=10.5.0.0/16\n")
                  .ok());
  EXPECT_EQ(a.values("public_key").size(), 2u);
  // A prefix given to p2 leaves p1; "-PREFIX" removes one; the node's own key is ignored.
  ASSERT_TRUE(a.set("public_key=" + hex(p2) + "\nallowed_ip=10.1.0.0/16\nallowed_ip=-10.3.0.0/16\npublic_key=" +
                    hex(pub(ka)) + "\nallowed_ip=10.7.0.0/16\n")
                  .ok());
  EXPECT_EQ(a.values("allowed_ip"), (std::vector<std::string>{"10.2.0.0/16", "10.1.0.0/16", "10.5.0.0/16"}));
  EXPECT_EQ(a.values("public_key").size(), 2u);
  // replace_allowed_ips, then remove, then replace_peers.
  ASSERT_TRUE(a.set("public_key=" + hex(p1) + "\nreplace_allowed_ips=true\nallowed_ip=10.8.0.0/16\n").ok());
  EXPECT_EQ(a.values("allowed_ip"), (std::vector<std::string>{"10.8.0.0/16", "10.1.0.0/16", "10.5.0.0/16"}));
  ASSERT_TRUE(a.set("public_key=" + hex(p1) + "\nremove=true\n").ok());
  EXPECT_EQ(a.values("public_key"), std::vector<std::string>{hex(p2)});
  ASSERT_TRUE(a.set("replace_peers=true\npublic_key=" + hex(p3) + "\nallowed_ip=10.9.0.0/16\n").ok());
  EXPECT_EQ(a.values("public_key"), std::vector<std::string>{hex(p3)});
  EXPECT_EQ(a.values("allowed_ip"), std::vector<std::string>{"10.9.0.0/16"});
}

TEST_F(WgPair, BigSetconfsAreAppliedAndReadBackWhole) {
  // One peer with 130 000 allowed IPs (10.0.0.0/15 in /32s, and some more).
  std::string body = "private_key=" + hex(ka) + "\nreplace_peers=true\npublic_key=" + hex(pub(key_of(3))) + "\n";
  for (int i = 0; i < 130'000; ++i) {
    body += "allowed_ip=10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
            std::to_string(i & 255) + "/32\n";
  }
  ASSERT_TRUE(a.set(body).ok());
  EXPECT_EQ(a.values("allowed_ip").size(), 130'000u);
  // 40 peers of 52 prefixes each.
  body = "replace_peers=true\n";
  for (int p = 0; p < 40; ++p) {
    body += "public_key=" + hex(pub(key_of(static_cast<std::uint8_t>(100 + p)))) + "\n";
    for (int i = 0; i < 52; ++i)
      body += "allowed_ip=172." + std::to_string(16 + p % 16) + "." + std::to_string(p * 4 + i / 13 % 4) + "." +
              std::to_string(i % 13 * 16) + "/28\n";
  }
  ASSERT_TRUE(a.set(body).ok());
  EXPECT_EQ(a.values("public_key").size(), 40u);
  EXPECT_EQ(a.values("allowed_ip").size(), 40u * 52u);
}

TEST_F(WgPair, AListenPortInUseIsRefusedAndTheOldOneKept) {
  auto squatter = std::move(*a.stack.open_datagram(net::Family::v4));
  ASSERT_FALSE(squatter->bind(*net::Endpoint::parse("0.0.0.0:40001")));
  EXPECT_EQ(a.set("listen_port=40001\n").code, uapi::kPortInUse);
  EXPECT_EQ(a.values("listen_port"), std::vector<std::string>{"51820"});
  ASSERT_TRUE(a.set("listen_port=40002\n").ok());
  w.run_for(10ms);
  EXPECT_EQ(a.values("listen_port"), std::vector<std::string>{"40002"});
  ASSERT_TRUE(a.set("listen_port=0\n").ok());
  w.run_for(10ms);
  const int chosen = std::stoi(a.values("listen_port").front());
  EXPECT_GE(chosen, 32768);
  EXPECT_LE(chosen, 60999);
}

TEST_F(WgPair, ANewPrivateKeyStartsOverWithPeersThatKnowIt) {
  configure_both();
  ASSERT_TRUE(ping(1));
  const config::Key ka2 = key_of(21);
  ASSERT_TRUE(a.set("private_key=" + hex(ka2) + "\n").ok());
  EXPECT_EQ(a.values("private_key"), std::vector<std::string>{hex(ka2)});
  EXPECT_FALSE(ping(2, 2s)) << "B still expects A's old key";
  ASSERT_TRUE(
      b.set("public_key=" + hex(pub(ka)) + "\nremove=true\npublic_key=" + hex(pub(ka2)) + "\nallowed_ip=10.0.0.1/32\n")
          .ok());
  EXPECT_TRUE(ping(3, 10s)) << "a handshake with the new key";
  ASSERT_TRUE(a.set("private_key=" + std::string(64, '0') + "\n").ok());
  EXPECT_TRUE(a.values("private_key").empty()) << "all zeros removes the key";
}

TEST_F(WgPair, PersistentKeepaliveHandshakesWithoutTraffic) {
  configure_both();
  w.run_for(3s);
  EXPECT_EQ(b.values("last_handshake_time_sec").front(), "0") << "no traffic, no keepalive: no handshake";
  ASSERT_TRUE(a.set("public_key=" + hex(pub(kb)) + "\npersistent_keepalive_interval=2\n").ok());
  w.run_for(500ms);
  EXPECT_NE(b.values("last_handshake_time_sec").front(), "0") << "turned on: a keepalive at once";
  const auto rx = std::stoull(b.values("rx_bytes").front());
  w.run_for(5s);
  EXPECT_GE(std::stoull(b.values("rx_bytes").front()), rx + 2 * 32) << "and one every 2 s";
}

// --- the connection's framing ----------------------------------------------------------

std::string run_echo(uapi::Connection::Op op, std::string_view body) {
  return std::string(op == uapi::Connection::Op::get ? "GET" : "SET[") + std::string(body) + "]" + uapi::errno_line(0);
}

TEST(UapiConnection, OperationsArriveInAnyPiecesAndInTurn) {
  uapi::Connection c;
  const std::string stream = "get=1\n\nset=1\na=1\nb=2\n\nget=1\n\n";
  std::string out;
  for (char ch : stream) out += c.feed(std::string_view(&ch, 1), run_echo);
  EXPECT_EQ(out, "GET]errno=0\n\nSET[a=1\nb=2\n]errno=0\n\nGET]errno=0\n\n");
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(c.pending(), 0u);
}

TEST(UapiConnection, BadInputGetsAnErrnoOrAClosedConnection) {
  {
    uapi::Connection c;
    EXPECT_EQ(c.feed("get=1\nx", run_echo), uapi::errno_line(uapi::kInvalid));
    EXPECT_FALSE(c.closed());
  }
  {
    uapi::Connection c;
    EXPECT_EQ(c.feed("delete=1\n", run_echo), "");
    EXPECT_TRUE(c.closed()) << "an unknown operation ends the connection";
  }
  {
    uapi::Connection c;
    EXPECT_EQ(c.feed(std::string(100, 'g'), run_echo), "");
    EXPECT_TRUE(c.closed()) << "an operation line that never ends";
  }
  {
    uapi::Connection c(64, 1024);
    EXPECT_EQ(c.feed("set=1\n" + std::string(65, 'a'), run_echo), "");
    EXPECT_TRUE(c.closed()) << "a line over the limit";
  }
  {
    uapi::Connection c(64, 1024);
    std::string endless = "set=1\n";
    for (int i = 0; i < 100; ++i) endless += "allowed_ip=10.0.0.0/8\n";
    EXPECT_EQ(c.feed(endless, run_echo), "");
    EXPECT_TRUE(c.closed()) << "a request over the limit";
    EXPECT_EQ(c.pending(), 0u) << "and its bytes are freed";
  }
  {
    uapi::Connection c;
    EXPECT_EQ(c.feed("set=1\na=1\n", run_echo), "");
    EXPECT_EQ(c.finish(run_echo), "SET[a=1\n]errno=0\n\n") << "EOF ends a set as a blank line would";
  }
}

}  // namespace
