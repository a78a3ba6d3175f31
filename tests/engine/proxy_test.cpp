// The proxy plugins on the engine, in the simulator: a client reaches its server through
// an HTTP CONNECT or SOCKS5 proxy on the router, honest or lying. Every lie, refusal,
// stall or drop gives a clear error and a retry; never a connection, a crash or a hang.
#include <gtest/gtest.h>

#include <fstream>

#include "../sim/world_fixture.hpp"
#include "../support/fake_proxy.hpp"
#include "duet/config/loader.hpp"
#include "duet/node/node.hpp"
#include "duet/plugin/host.hpp"
#include "duet/sim/probe_session.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/server.hpp"

using namespace duet;
using namespace duet::test;
using transport::EventKind;
using namespace std::chrono_literals;

namespace {

/// One duet instance (the daemon's own wiring, with probe sessions), recording its events.
struct Peer {
  Peer(sim::SimWorld& w, const std::string& host, const std::string& text, std::uint64_t id)
      : config(loaded(text, host)), sessions(id), node(w.stack(host), nullptr, config, options()) {
    std::string why;
    EXPECT_TRUE(node.start(why)) << why;
    server = node.server();
    client = node.client();
  }
  static config::Config loaded(const std::string& text, const std::string& host) {
    auto r = config::load_text(text, host + ".conf");
    for (const auto& d : r.diagnostics.all()) ADD_FAILURE() << d.to_string();
    return r.config;
  }
  node::NodeOptions options() {
    node::NodeOptions o;
    o.events = [this](const transport::Event& e) { events.push_back(e); };
    o.sessions = &sessions;
    return o;
  }
  std::vector<transport::Event> of(EventKind k) const {
    std::vector<transport::Event> out;
    for (const auto& e : events) {
      if (e.kind == k) out.push_back(e);
    }
    return out;
  }
  std::string log() const {
    std::string s;
    for (const auto& e : events) s += e.describe() + "\n";
    return s;
  }
  config::Config config;
  sim::ProbeSessionFactory sessions;
  std::vector<transport::Event> events;
  node::Node node;
  transport::Server* server = nullptr;
  transport::Client* client = nullptr;
};

std::string credentials(const std::string& user, const std::string& password) {
  const std::string path = ::testing::TempDir() + "/duet-proxy-auth-" + user + "-" + password;
  std::ofstream(path) << user << "\n" << password << "\n";
  return path;
}

class Proxy : public ::testing::Test {
protected:
  void SetUp() override {
    build_three_hosts(w);
    server = std::make_unique<Peer>(w, "server", "mode server\nproto tcp\nport 443\n", 1000);
  }
  sim::SimWorld w{41};
  std::unique_ptr<Peer> server;
};

TEST_F(Proxy, HttpConnectCarriesTheTunnelAndTheRemoteNameGoesToTheProxy) {
  FakeProxy proxy(w.stack("router"), FakeProxy::Kind::http, ep("198.18.1.1:3128"));
  Peer client(w, "client", "mode client\nremote 198.18.2.2 443 tcp\nhttp-proxy 198.18.1.1 3128\n", 1);
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s)) << client.log();
  ASSERT_EQ(proxy.requests.size(), 1u);
  EXPECT_EQ(proxy.requests[0].substr(0, proxy.requests[0].find("\r\n")), "CONNECT 198.18.2.2:443 HTTP/1.1");
  EXPECT_NE(client.log().find("trying 198.18.1.1:3128/tcp via proxy to 198.18.2.2:443"), std::string::npos)
      << client.log();
  client.client->send(sim::ProbeSession::data(1));
  w.run_for(100ms);
  EXPECT_EQ(server->sessions.stats.data_received, 1u) << "data crosses the proxy";
}

TEST_F(Proxy, HttpBasicAuthenticationRightAndWrongAndTheSecretNeverShows) {
  // "user:s3cret" in base64.
  FakeProxy proxy(w.stack("router"), FakeProxy::Kind::http, ep("198.18.1.1:3128"),
                  {.need_auth = "Basic dXNlcjpzM2NyZXQ="});
  Peer good(
      w, "client",
      "mode client\nremote 198.18.2.2 443 tcp\nhttp-proxy 198.18.1.1 3128 " + credentials("user", "s3cret") + "\n", 1);
  ASSERT_TRUE(w.run_until([&] { return good.client->connected(); }, 5s)) << good.log();
  EXPECT_NE(proxy.requests[0].find("\r\nProxy-Authorization: Basic dXNlcjpzM2NyZXQ="), std::string::npos);

  Peer bad(w, "client",
           "mode client\nremote 198.18.2.2 443 tcp\nconnect-retry 1\nhttp-proxy 198.18.1.1 3128 " +
               credentials("user", "wrong") + "\n",
           2);
  Peer none(w, "client", "mode client\nremote 198.18.2.2 443 tcp\nconnect-retry 1\nhttp-proxy 198.18.1.1 3128\n", 3);
  w.run_for(5s);
  EXPECT_FALSE(bad.client->connected());
  EXPECT_FALSE(none.client->connected());
  EXPECT_NE(bad.log().find("proxy authentication failed"), std::string::npos) << bad.log();
  EXPECT_NE(none.log().find("proxy requires authentication"), std::string::npos) << none.log();
  EXPECT_GE(bad.of(EventKind::round_failed).size(), 2u) << "it retries";
  for (const auto* n : {&good, &bad, &none}) {
    EXPECT_EQ(n->log().find("s3cret"), std::string::npos);
    EXPECT_EQ(n->log().find("wrong"), std::string::npos);
    EXPECT_EQ(n->log().find("dXNlcjpzM2NyZXQ"), std::string::npos);
  }
}

struct Lie {
  const char* name;
  FakeProxy::Kind kind;
  FakeProxy::Behaviour behaviour;
  const char* error;  ///< what the user reads
};

class ProxyLies : public Proxy, public ::testing::WithParamInterface<Lie> {};

TEST_P(ProxyLies, GiveAClearErrorAndARetryNeverAConnection) {
  const Lie& lie = GetParam();
  FakeProxy proxy(w.stack("router"), lie.kind, ep("198.18.1.1:1080"), lie.behaviour);
  const std::string directive = lie.kind == FakeProxy::Kind::http ? "http-proxy" : "socks-proxy";
  Peer client(
      w, "client",
      "mode client\nremote 198.18.2.2 443 tcp\nconnect-timeout 3\nconnect-retry 1\n" + directive + " 198.18.1.1 1080\n",
      1);
  w.run_for(10s);
  EXPECT_FALSE(client.client->connected());
  EXPECT_GE(proxy.connections, 2) << "it came back for another try";
  const auto failed = client.of(EventKind::attempt_failed);
  ASSERT_FALSE(failed.empty()) << client.log();
  EXPECT_NE(failed[0].describe().find(lie.error), std::string::npos) << failed[0].describe();
}

std::string big_header() {
  std::string s = "HTTP/1.1 200 OK\r\n";
  while (s.size() < 10000) s += "X-Filler: " + std::string(100, 'a') + "\r\n";
  return s + "\r\n";
}

INSTANTIATE_TEST_SUITE_P(
    Table, ProxyLies,
    ::testing::Values(
        Lie{"http_forbidden",
            FakeProxy::Kind::http,
            {.reply = "HTTP/1.1 403 Forbidden\r\n\r\n"},
            "proxy forbids this destination"},
        Lie{"http_bad_gateway",
            FakeProxy::Kind::http,
            {.reply = "HTTP/1.1 502 Bad Gateway\r\n\r\n"},
            "proxy cannot reach the remote"},
        Lie{"http_unavailable",
            FakeProxy::Kind::http,
            {.reply = "HTTP/1.0 503 Service Unavailable\r\n\r\n"},
            "proxy cannot reach the remote"},
        Lie{"http_not_http", FakeProxy::Kind::http, {.reply = "SSH-2.0-OpenSSH_9.2\r\n\r\n"}, "proxy reply malformed"},
        Lie{"http_huge_header", FakeProxy::Kind::http, {.reply = big_header()}, "proxy reply too large"},
        Lie{"http_truncated",
            FakeProxy::Kind::http,
            {.reply = "HTTP/1.1 200 Conn", .close_after_reply = true},
            "closed the connection during the handshake"},
        Lie{"http_stall", FakeProxy::Kind::http, {.stall = true}, "ETIMEDOUT"},
        Lie{"http_drop", FakeProxy::Kind::http, {.drop = true}, "closed the connection during the handshake"},
        Lie{"socks_not_socks", FakeProxy::Kind::socks, {.reply = "HTTP/1.1 400 Bad\r\n\r\n"}, "proxy reply malformed"},
        Lie{"socks_ruleset",
            FakeProxy::Kind::socks,
            {.reply = std::string("\x05\x00\x05\x02\x00\x01\0\0\0\0\0\0", 12)},
            "proxy forbids this destination"},
        Lie{"socks_refused",
            FakeProxy::Kind::socks,
            {.reply = std::string("\x05\x00\x05\x05\x00\x01\0\0\0\0\0\0", 12)},
            "remote refused"},
        Lie{"socks_bad_atyp",
            FakeProxy::Kind::socks,
            {.reply = std::string("\x05\x00\x05\x00\x00\x07\0\0\0\0\0\0", 12)},
            "proxy reply malformed"},
        Lie{"socks_unasked_method",
            FakeProxy::Kind::socks,
            {.reply = std::string("\x05\x02", 2)},
            "proxy reply malformed"},
        Lie{"socks_no_method",
            FakeProxy::Kind::socks,
            {.reply = std::string("\x05\xff", 2)},
            "proxy requires authentication"},
        Lie{"socks_truncated",
            FakeProxy::Kind::socks,
            {.reply = std::string("\x05\x00\x05\x00\x00\x03\x20zz", 9), .close_after_reply = true},
            "closed the connection during the handshake"},
        Lie{"socks_stall", FakeProxy::Kind::socks, {.stall = true}, "ETIMEDOUT"}),
    [](const ::testing::TestParamInfo<Lie>& i) { return std::string(i.param.name); });

TEST_F(Proxy, SocksConnectSendsNamesForTheProxyToResolve) {
  w.set_dns("vpn.test", {sim::DnsAnswer::Kind::records, {*net::Address::parse("198.18.2.2")}});
  FakeProxy proxy(w.stack("router"), FakeProxy::Kind::socks, ep("198.18.1.1:1080"), {.need_auth = "alice:pw"});
  Peer client(w, "client",
              "mode client\nremote vpn.test 443 tcp\nsocks-proxy 198.18.1.1 1080 " + credentials("alice", "pw") + "\n",
              1);
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s)) << client.log();
  ASSERT_EQ(proxy.requests.size(), 1u);
  EXPECT_EQ(proxy.requests[0], "vpn.test:443") << "ATYP 3: the name, not an address";
  client.client->send(sim::ProbeSession::data(1));
  w.run_for(100ms);
  EXPECT_EQ(server->sessions.stats.data_received, 1u);
}

TEST_F(Proxy, SocksUdpAssociateCarriesAUdpTunnelAndItsLossIsNoticed) {
  Peer udp_server(w, "server", "mode server\nproto udp\nport 1194\n", 2000);
  FakeProxy proxy(w.stack("router"), FakeProxy::Kind::socks, ep("198.18.1.1:1080"));
  Peer client(w, "client", "mode client\nremote 198.18.2.2 1194 udp\nkeepalive 1 3\nsocks-proxy 198.18.1.1 1080\n", 1);
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s)) << client.log();
  EXPECT_EQ(proxy.requests.at(0), "udp");
  EXPECT_EQ(client.client->transport(), config::Transport::udp);
  client.client->send(sim::ProbeSession::data(1));
  w.run_for(100ms);
  EXPECT_EQ(udp_server.sessions.stats.data_received, 1u) << "through the relay";
  EXPECT_GT(proxy.relayed, 1);
  // The proxy ends the association: the client notices and builds a new one.
  proxy.close_all();
  ASSERT_TRUE(w.run_until([&] { return !client.of(EventKind::disconnected).empty(); }, 5s)) << client.log();
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 15s)) << client.log();
  EXPECT_EQ(client.client->connections_made(), 2u);
}

TEST_F(Proxy, AnHttpProxyCannotCarryUdpAndSaysSo) {
  auto r = config::load_text("mode client\nremote 198.18.2.2 1194 udp\nhttp-proxy 198.18.1.1 3128\n", "c.conf");
  EXPECT_FALSE(r.ok()) << "refused when the configuration is read";
}

TEST_F(Proxy, TheProxysOwnAddressesAreRacedWhenOneFamilyIsBroken) {
  w.set_dns("proxy.test",
            {sim::DnsAnswer::Kind::records, {*net::Address::parse("fd00:1::1"), *net::Address::parse("198.18.1.1")}});
  w.add_route("client", "fd00:1::1/128", sim::RouteVerdict::blackhole);
  FakeProxy v4(w.stack("router"), FakeProxy::Kind::http, ep("198.18.1.1:3128"));
  Peer client(w, "client", "mode client\nremote 198.18.2.2 443 tcp\nhttp-proxy proxy.test 3128\n", 1);
  ASSERT_TRUE(w.run_until([&] { return client.client->connected(); }, 5s)) << client.log();
  const auto c = client.of(EventKind::connected).at(0);
  EXPECT_EQ(c.endpoint->to_string(), "198.18.1.1:3128");
  EXPECT_LT(c.elapsed, 1s) << "Happy Eyeballs over the proxy's addresses, not a 120 s timeout";
}

TEST(PluginLoading, ClearErrorsForMissingFilesAndNonPlugins) {
  std::string why;
  EXPECT_FALSE(plugin::Library::load("/nonexistent/duet-nothing.so", why));
  EXPECT_NE(why.find("cannot load plugin '/nonexistent/duet-nothing.so'"), std::string::npos) << why;
  EXPECT_FALSE(plugin::Library::load("libc.so.6", why));
  EXPECT_NE(why.find("is not a duet plugin"), std::string::npos) << why;
  EXPECT_FALSE(plugin::Library::load(DUET_TEST_OLD_PLUGIN, why));
  EXPECT_NE(why.find("speaks plugin ABI version 99, this duet speaks version 1"), std::string::npos) << why;
  auto lib = plugin::Library::load(plugin::plugin_dir() + "/duet-socks.so", why);
  ASSERT_TRUE(lib) << why;
  EXPECT_FALSE(plugin::Instance::create(lib, {"proxy.test"}, why));
  EXPECT_NE(why.find("socks: expected HOST PORT [AUTHFILE]"), std::string::npos) << why;
  EXPECT_FALSE(plugin::Instance::create(lib, {"proxy.test", "99999"}, why));
  EXPECT_NE(why.find("port '99999'"), std::string::npos) << why;
}

TEST(PluginLoading, ADaemonWithoutAProxyLoadsNoPlugin) {
  sim::SimWorld w(1);
  w.add_host("h");
  std::string why;
  auto r = config::load_text("mode client\nremote 198.18.2.2 443 tcp\n", "c.conf");
  auto s = plugin::sockets_for(r.config, w.stack("h"), why);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->via(config::Transport::tcp)) << "remotes are reached directly";
}

}  // namespace
