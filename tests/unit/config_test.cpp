#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "duet/config/lexer.hpp"
#include "duet/config/loader.hpp"
#include "duet/policy/review.hpp"

using namespace duet;
using namespace duet::config;

namespace {

/// A configuration as the daemon sees it: loaded, then reviewed by the socket policy.
LoadResult load(const std::string& text, const std::vector<std::string>& args = {}) {
  return duet::policy::reviewed(load_text(text, "test.conf", args));
}

/// All diagnostics of one severity, rendered "file:line:col: severity: message".
std::vector<std::string> said(const LoadResult& r, Severity s) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics.all()) {
    if (d.severity == s) out.push_back(d.where.to_string() + ": " + d.message);
  }
  return out;
}
std::string errors(const LoadResult& r) {
  std::string s;
  for (const auto& e : said(r, Severity::error)) s += e + "\n";
  return s;
}

TEST(Lexer, SplitsWordsQuotesCommentsAndBlocks) {
  Diagnostics d;
  auto ds =
      lex("remote \"vpn example\" 1194 # trailing\n"
          "  ; a comment line\n"
          "plugin 'a b' \"c\\\"d\" e\\ f\n"
          "<connection>\n  remote x\n</connection>\n"
          "--proto udp\n",
          "f", d);
  ASSERT_FALSE(d.has_errors());
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds[0].name, "remote");
  ASSERT_EQ(ds[0].args.size(), 2u);
  EXPECT_EQ(ds[0].args[0].text, "vpn example");
  EXPECT_EQ(ds[0].args[0].column, 8);
  EXPECT_EQ(ds[1].args[0].text, "a b");
  EXPECT_EQ(ds[1].args[1].text, "c\"d");
  EXPECT_EQ(ds[1].args[2].text, "e f");
  EXPECT_TRUE(ds[2].is_block);
  EXPECT_EQ(ds[2].block.size(), 1u);
  EXPECT_EQ(ds[2].block[0].where.line, 5);
  EXPECT_EQ(ds[3].name, "proto");
}

TEST(Lexer, ReportsBrokenStructureWithLineAndColumn) {
  struct Case {
    const char* text;
    const char* expected;
  } cases[] = {
      {"remote \"vpn\n", "f:1:8: unterminated double quote"},
      {"remote 'vpn\n", "f:1:8: unterminated single quote"},
      {"<connection>\nremote a\n", "f:1:1: <connection> is never closed (expected </connection>)"},
      {"</listen>\n", "f:1:1: </listen> without a matching <listen>"},
      {"<listen>\n<connection>\n</connection>\n</listen>\n",
       "f:2:1: <connection> inside <listen> (opened at line 1): blocks do not nest"},
      {"<listen>\n</connection>\n", "f:2:1: </connection> closes <listen> opened at line 1"},
      {"a\0b\n", "f:1:1: NUL byte in configuration text"},
  };
  for (const auto& c : cases) {
    Diagnostics d;
    lex(std::string_view(c.text, std::string_view(c.text).size() + (c.text[1] == '\0' ? 4 : 0)), "f", d);
    ASSERT_FALSE(d.all().empty()) << c.text;
    EXPECT_EQ(d.all()[0].where.to_string() + ": " + d.all()[0].message, c.expected);
  }
}

TEST(Loader, EveryRemovedProtoSaysWhatToWriteInstead) {
  struct Case {
    const char* proto;
    const char* advice;
  } cases[] = {
      {"udp6", "use 'proto udp' with '--ipv6'"},
      {"udp4", "use 'proto udp' with '--ipv4'"},
      {"tcp6", "use 'proto tcp' with '--ipv6'"},
      {"tcp4", "use 'proto tcp' with '--ipv4'"},
      {"tcp6-server", "use 'proto tcp-server' with '--ipv6'"},
      {"tcp4-server", "use 'proto tcp-server' with '--ipv4'"},
      {"tcp6-client", "use 'proto tcp-client' with '--ipv6'"},
      {"tcp4-client", "use 'proto tcp-client' with '--ipv4'"},
      {"udp6-server", "use 'proto udp-server' with '--ipv6'"},
      {"udp4-server", "use 'proto udp-server' with '--ipv4'"},
      {"udp6-client", "use 'proto udp-client' with '--ipv6'"},
      {"udp4-client", "use 'proto udp-client' with '--ipv4'"},
  };
  for (const auto& c : cases) {
    auto r = load(std::string("remote vpn.test\nproto ") + c.proto + "\n");
    EXPECT_EQ(errors(r), "test.conf:2:7: '" + std::string(c.proto) + "' is no longer a proto: " + c.advice + "\n");
  }
  EXPECT_EQ(errors(load("proto sctp\n")),
            "test.conf:1:7: unknown proto 'sctp' (udp, tcp, udp-server, udp-client, tcp-server, tcp-client)\n");
}

TEST(Loader, OffloadsDefaultToAllAndCanBeNamed) {
  using O = config::Config::Offloads;
  auto offloads = [](const std::string& text) { return load(text).config.offload; };
  EXPECT_EQ(offloads(""), (O{true, true, true}));
  EXPECT_EQ(offloads("offload none\n"), (O{false, false, false}));
  EXPECT_EQ(offloads("offload all\n"), (O{true, true, true}));
  EXPECT_EQ(offloads("offload tun,gro\n"), (O{true, false, true}));
  EXPECT_EQ(offloads("offload gso\n"), (O{false, true, false}));
  EXPECT_EQ(offloads("offload none\noffload tun\n"), (O{true, false, false})) << "the last one counts";
}

TEST(Loader, UnknownDirectivesGetTheClosestKnownOne) {
  EXPECT_EQ(errors(load("remtoe vpn.test\n")), "test.conf:1:1: unknown directive 'remtoe'; did you mean 'remote'?\n");
  EXPECT_EQ(errors(load("happy-eyeball-delay 300\n")),
            "test.conf:1:1: unknown directive 'happy-eyeball-delay'; did you mean 'happy-eyeballs-delay'?\n");
  EXPECT_EQ(errors(load("  nobnid\n")), "test.conf:1:3: unknown directive 'nobnid'; did you mean 'nobind'?\n");
  EXPECT_EQ(errors(load("xyzzy\n")), "test.conf:1:1: unknown directive 'xyzzy'\n");
}

TEST(Loader, ArgumentsAndNumbersAreChecked) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"remote\n", "test.conf:1:1: missing argument for 'remote' (usage: remote HOST [PORT [PROTO]])"},
      {"nobind now\n", "test.conf:1:8: too many arguments for 'nobind' (usage: nobind)"},
      {"port 0\n", "test.conf:1:6: a port must be a whole number from 1 to 65535, not '0'"},
      {"port 65536\n", "test.conf:1:6: a port must be a whole number from 1 to 65535, not '65536'"},
      {"lport 12ab\n", "test.conf:1:7: a port must be a whole number from 1 to 65535, not '12ab'"},
      {"remote vpn.test -1\n", "test.conf:1:17: a port must be a whole number from 1 to 65535, not '-1'"},
      {"connect-timeout 0\n",
       "test.conf:1:17: 'connect-timeout' (seconds) must be a whole number from 1 to 3600, not '0'"},
      {"verb 12\n", "test.conf:1:6: 'verb' must be a whole number from 0 to 11, not '12'"},
      {"connect-retry 10 5\n", "test.conf:1:18: connect-retry: the maximum (5 s) is below the first delay (10 s)"},
      {"mode bridge\n", "test.conf:1:6: unknown mode 'bridge' (p2p, client, server)"},
      {"dev this-name-is-too-long\n",
       "test.conf:1:5: interface name 'this-name-is-too-long' must be 1 to 15 characters without '/'"},
      {"<connection>\nmode server\n</connection>\n", "test.conf:2:1: 'mode' is not allowed in <connection>"},
      {"<listen>\nremote x\n</listen>\nmode server\n", "test.conf:2:1: 'remote' is not allowed in <listen>"},
      {"<peer>\n</peer>\n", "test.conf:1:1: unknown block <peer> (known: <connection>, <listen>)"},
      {"offload tun,tso\n",
       "test.conf:1:9: 'offload' takes all, none, or a list of tun, gso and gro (such as tun,gro), not 'tso'"},
      {"offload\n", "test.conf:1:1: missing argument for 'offload' (usage: offload all|none|tun,gso,gro)"},
  };
  for (const auto& c : cases) {
    auto r = load(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(said(r, Severity::error).front(), c.error) << c.text;
  }
}

TEST(Loader, ContradictionsAreErrorsNamingBothPlaces) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"remote vpn.test\nipv4\nipv6\n",
       "test.conf:3:1: 'ipv6' contradicts 'ipv4' at test.conf:2:1: give one of them to force a family, or neither for "
       "both"},
      {"remote vpn.test\nbind\nnobind\n",
       "test.conf:3:1: 'bind' and 'nobind' contradict each other (the other is at test.conf:2:1)"},
      {"mode server\nremote vpn.test\n",
       "test.conf:2:1: 'mode server' takes no 'remote' or <connection>: clients connect to it (use 'mode client' or "
       "'mode p2p' to connect out)"},
      {"mode client\n", "test.conf:1:1: 'mode client' needs at least one 'remote'"},
      {"mode client\nremote a\nproto udp-server\n",
       "test.conf:3:1: 'proto udp-server' cannot connect out in 'mode client' (use udp, tcp, udp-client or "
       "tcp-client)"},
      {"mode server\nproto tcp-client\n",
       "test.conf:2:1: 'proto tcp-client' cannot serve: a server uses udp, tcp, udp-server or tcp-server"},
      {"remote a\nproto tcp\n",
       "test.conf:2:1: 'proto tcp' in p2p mode is ambiguous: one peer says 'tcp-server', the other 'tcp-client'"},
      {"proto udp-client\n", "test.conf:1:1: 'proto udp-client' needs a 'remote' to connect to"},
      {"mode client\nremote a\nhttp-proxy p 8080\n",
       "test.conf:3:1: 'http-proxy' carries TCP only: use 'proto tcp-client' (or 'proto tcp' with 'mode client', or "
       "'remote HOST PORT tcp')"},
      {"mode client\nproto tcp\nremote a\nhttp-proxy p 8080\nsocks-proxy s 1080\n",
       "test.conf:5:1: give 'http-proxy' (at test.conf:4:1) or 'socks-proxy', not both"},
      {"remote a\n<connection>\nremote b\n</connection>\n",
       "test.conf:1:1: 'remote' outside <connection> while <connection> blocks exist: move it into a block"},
      {"mode client\nremote a\n<listen>\n</listen>\n",
       "test.conf:3:1: <listen> blocks need 'mode server' (this is mode client)"},
      {"remote fd00::1\nipv4\n", "test.conf:1:1: remote fd00::1 is IPv6 but 'ipv4' is set"},
  };
  for (const auto& c : cases) {
    auto r = load(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(said(r, Severity::error).front(), c.error) << c.text;
  }
}

TEST(Loader, CommandLineComesAfterTheFileAndLaterWins) {
  auto r = load("proto udp\nverb 3\nremote a\n", {"--proto", "udp-client", "--verb", "5", "--remote", "b", "99"});
  ASSERT_TRUE(r.ok()) << errors(r);
  EXPECT_EQ(r.config.connections[0].proto, Proto::udp_client);
  EXPECT_EQ(r.config.verb, 5);
  ASSERT_EQ(r.config.connections[0].remotes.size(), 2u);  // remote accumulates
  EXPECT_EQ(r.config.connections[0].remotes[1].port, 99);
  auto bad = load_command_line({"stray", "--verb", "2"});
  EXPECT_EQ(said(bad, Severity::error).front(), "<command line>:1:1: 'stray' is not an option (options start with --)");
}

TEST(Loader, RemotePortAndProtoDefaults) {
  auto r = load("proto udp\nport 2000\nremote a\nremote b 3000\nremote c 4000 udp-client\n");
  ASSERT_TRUE(r.ok()) << errors(r);
  const auto& rs = r.config.connections[0].remotes;
  EXPECT_EQ(rs[0].port, 2000);
  EXPECT_EQ(rs[1].port, 3000);
  EXPECT_EQ(rs[2].proto, Proto::udp_client);
  EXPECT_EQ(rs[0].proto, Proto::udp);
  auto r2 = load("rport 5000\nport 2000\nremote [fd00::1]\n");
  EXPECT_EQ(r2.config.connections[0].remotes[0].port, 5000);
  EXPECT_EQ(r2.config.connections[0].remotes[0].host, "fd00::1");
  EXPECT_EQ(load("remote a\n").config.connections[0].remotes[0].port, 1194);
}

TEST(Loader, ConnectionBlocksInheritTheTopLevel) {
  auto r = load(
      "mode client\nproto tcp\nconnect-timeout 10\n"
      "<connection>\nremote a\n</connection>\n"
      "<connection>\nremote b 443\nproto udp\nipv6\n</connection>\n");
  ASSERT_TRUE(r.ok()) << errors(r);
  ASSERT_EQ(r.config.connections.size(), 2u);
  EXPECT_EQ(r.config.connections[0].proto, Proto::tcp);
  EXPECT_EQ(r.config.connections[0].connect_timeout, std::chrono::seconds(10));
  EXPECT_EQ(r.config.connections[1].proto, Proto::udp);
  EXPECT_EQ(r.config.connections[1].family, FamilyChoice::v6);
  EXPECT_EQ(r.config.connections[1].remotes[0].proto, Proto::udp);
  EXPECT_EQ(r.config.connections[1].where.line, 7);
}

TEST(Loader, ManyListenBlocksAllActive) {
  auto r = load(
      "mode server\nport 1194\n"
      "<listen>\nproto udp\n</listen>\n"
      "<listen>\nproto tcp\n</listen>\n"
      "<listen>\nproto tcp\nport 443\nlocal 198.18.0.1\n</listen>\n");
  ASSERT_TRUE(r.ok()) << errors(r);
  ASSERT_EQ(r.config.listens.size(), 3u);
  EXPECT_EQ(r.config.listens[0].proto, Proto::udp);
  EXPECT_EQ(r.config.listens[1].proto, Proto::tcp);
  EXPECT_EQ(r.config.listens[1].port, 1194);
  EXPECT_EQ(r.config.listens[2].port, 443);
  EXPECT_EQ(r.config.listens[2].locals, std::vector<std::string>{"198.18.0.1"});
  // Without blocks the top level is the one listener.
  auto single = load("mode server\nproto tcp-server\nlport 443\n");
  ASSERT_EQ(single.config.listens.size(), 1u);
  EXPECT_EQ(single.config.listens[0].port, 443);
}

TEST(Loader, ListenBlocksThatTakeTheSameSocketClash) {
  struct Case {
    const char* blocks;
    bool clash;
  } cases[] = {
      {"<listen>\nproto udp\n</listen>\n<listen>\nproto udp\n</listen>\n", true},
      {"<listen>\nproto udp\n</listen>\n<listen>\nproto tcp\n</listen>\n", false},
      {"<listen>\nproto udp\nipv4\n</listen>\n<listen>\nproto udp\nipv6\n</listen>\n", false},
      {"<listen>\nproto udp\n</listen>\n<listen>\nproto udp\nipv4\n</listen>\n", true},
      {"<listen>\nproto udp\n</listen>\n<listen>\nproto udp\nport 2000\n</listen>\n", false},
      {"<listen>\nlocal 198.18.0.1\n</listen>\n<listen>\nlocal 198.18.0.2\n</listen>\n", false},
      {"<listen>\nlocal 198.18.0.1\n</listen>\n<listen>\nipv4\n</listen>\n", true},
      {"<listen>\nlocal fd00::1\n</listen>\n<listen>\nlocal fd00::1\n</listen>\n", true},
  };
  for (const auto& c : cases) {
    auto r = load(std::string("mode server\n") + c.blocks);
    EXPECT_EQ(!r.ok(), c.clash) << c.blocks << errors(r);
  }
  auto r = load("mode server\n<listen>\nproto udp\n</listen>\n<listen>\nproto udp\nipv4\n</listen>\n");
  EXPECT_EQ(
      said(r, Severity::error).front(),
      "test.conf:5:1: this <listen> would take 0.0.0.0:1194/udp, which the <listen> at test.conf:2:1 already takes");
}

TEST(Loader, LiteralBindAgainstLiteralRemotes) {
  struct Case {
    const char* text;
    Severity severity;
    const char* message;  // nullptr: nothing said
  } cases[] = {
      {"local 198.18.0.1\nremote 198.18.1.1\nremote fd00::1\n", Severity::warning,
       "test.conf:2:1: bound to IPv4 only: remote IPv6 addresses fd00::1 will not be used (using 198.18.1.1)"},
      {"local 198.18.0.1\nremote fd00::1\nremote fd00::2\n", Severity::error,
       "test.conf:2:1: bound to IPv4 only, but the remote has only IPv6 addresses (fd00::1, fd00::2): no address can "
       "be reached"},
      {"local fd00::9\nremote 198.18.1.1\n", Severity::error,
       "test.conf:2:1: bound to IPv6 only, but the remote has only IPv4 addresses (198.18.1.1): no address can be "
       "reached"},
      {"ipv4\nbind\nmode client\nremote 198.18.1.1\n", Severity::error, nullptr},
      {"mode client\nlocal 198.18.0.1\nremote fd00::1\n", Severity::error, nullptr},  // nobind by default
      {"mode client\nbind\nlocal 198.18.0.1\nremote fd00::1\n", Severity::error,
       "test.conf:4:1: bound to IPv4 only, but the remote has only IPv6 addresses (fd00::1): no address can be "
       "reached"},
      {"local 198.18.0.1\nremote vpn.test\n", Severity::error, nullptr},  // a name: checked at run time
  };
  for (const auto& c : cases) {
    auto r = load(c.text);
    auto got = said(r, c.severity);
    if (c.message == nullptr) {
      EXPECT_TRUE(r.ok()) << c.text << errors(r);
      EXPECT_TRUE(said(r, Severity::warning).empty()) << c.text;
    } else {
      ASSERT_FALSE(got.empty()) << c.text;
      EXPECT_EQ(got.front(), c.message);
    }
  }
}

TEST(Loader, HappyEyeballsDelayDefaultsOffAndClamps) {
  EXPECT_EQ(load("remote a\n").config.connections[0].happy_eyeballs_delay, std::chrono::milliseconds(250));
  EXPECT_EQ(load("remote a\nhappy-eyeballs-delay 0\n").config.connections[0].happy_eyeballs_delay,
            std::chrono::milliseconds(0));
  auto low = load("remote a\nhappy-eyeballs-delay 20\n");
  EXPECT_EQ(duet::policy::attempt_delay(low.config.connections[0]), std::chrono::milliseconds(100));
  EXPECT_EQ(said(low, Severity::warning).front(),
            "test.conf:2:1: happy-eyeballs-delay 20 ms is outside 100..2000 ms (RFC 8305); using 100 ms");
  EXPECT_EQ(duet::policy::attempt_delay(load("remote a\nhappy-eyeballs-delay 9000\n").config.connections[0]),
            std::chrono::milliseconds(2000));
}

TEST(Loader, ModesAndBindDefaults) {
  auto client = load("mode client\nremote a\n");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client.config.mode, Mode::client);
  EXPECT_TRUE(client.config.listens.empty());
  auto p2p = load("remote a\n");
  EXPECT_EQ(p2p.config.mode, Mode::p2p);
  ASSERT_EQ(p2p.config.listens.size(), 1u) << "a plain udp peer binds every local result";
  EXPECT_TRUE(load("remote a\nnobind\n").config.listens.empty());
  EXPECT_TRUE(load("remote a\nproto udp-client\n").config.listens.empty());
  EXPECT_EQ(load("proto udp-server\n").config.listens.size(), 1u);
}

TEST(Loader, PluginsAndProxiesAreParsedForThePluginLayer) {
  auto r = load(
      "mode client\nproto tcp\nremote a\nplugin /usr/lib/duet/x.so one two\nhttp-proxy proxy.test 3128 /etc/auth\n");
  ASSERT_TRUE(r.ok()) << errors(r);
  ASSERT_EQ(r.config.plugins.size(), 1u);
  EXPECT_EQ(r.config.plugins[0].args, (std::vector<std::string>{"one", "two"}));
  ASSERT_TRUE(r.config.http_proxy);
  EXPECT_EQ(r.config.http_proxy->port, 3128);
  EXPECT_EQ(r.config.http_proxy->auth_file, "/etc/auth");
  auto s = load("remote a\nsocks-proxy socks.test 1080\n");
  ASSERT_TRUE(s.ok()) << errors(s);
  EXPECT_EQ(s.config.socks_proxy->kind, Proxy::Kind::socks);
}

class TempDir {
public:
  TempDir() : path_(std::filesystem::path(::testing::TempDir()) / ("duet-config-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

private:
  std::filesystem::path path_;
};

TEST(Loader, IncludesAreRelativeAndCyclesAreCaught) {
  TempDir dir;
  dir.write("common.conf", "proto udp-client\nverb 6\n");
  const auto main = dir.write("main.conf", "config common.conf\nremote a\n");
  auto r = load_command_line({"--config", main});
  ASSERT_TRUE(r.ok()) << errors(r);
  EXPECT_EQ(r.config.verb, 6);
  EXPECT_EQ(r.config.connections[0].proto, Proto::udp_client);
  EXPECT_EQ(r.config.files.size(), 2u);

  dir.write("a.conf", "config b.conf\n");
  const auto b = dir.write("b.conf", "verb 1\nconfig a.conf\n");
  auto cyc = load_command_line({"--config", b});
  ASSERT_FALSE(cyc.ok());
  const auto e = said(cyc, Severity::error).front();
  EXPECT_NE(e.find("a.conf:1:8: 'b.conf' is already being read (config cycle: "), std::string::npos) << e;
  EXPECT_NE(e.find("b.conf -> "), std::string::npos) << e;
  EXPECT_NE(e.find("a.conf -> "), std::string::npos) << e;

  auto missing = load_command_line({"--config", "/nonexistent/duet.conf"});
  EXPECT_EQ(said(missing, Severity::error).front(),
            "<command line>:2:1: cannot read config file '/nonexistent/duet.conf': no such file");
}

TEST(Diagnostics, RenderWithTheLineAndACaret) {
  auto r = load("remote vpn.test\n  proto   udp6\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics.all()[0].to_string(),
            "test.conf:2:11: error: 'udp6' is no longer a proto: use 'proto udp' with '--ipv6'\n"
            "      proto   udp6\n"
            "              ^");
}

TEST(Diagnostics, CaretStaysInsideAShortenedLine) {
  // Found by the fuzzer: an error 300 columns in, on a line quoted to 200 characters.
  auto r = load(std::string(300, ' ') + "remtoe x\n");
  ASSERT_FALSE(r.ok());
  const auto text = r.diagnostics.all()[0].to_string();
  EXPECT_EQ(text.rfind("test.conf:1:301: error: unknown directive 'remtoe'", 0), 0u) << text;
}

TEST(Loader, ConnectRetryAloneMayExceedTheDefaultMaximum) {
  // Found by the fuzzer: one argument above 300 s read a second argument that was not there.
  auto r = load("remote a\nconnect-retry 600\n");
  ASSERT_TRUE(r.ok()) << errors(r);
  EXPECT_EQ(r.config.connections[0].connect_retry, std::chrono::seconds(600));
  EXPECT_EQ(r.config.connections[0].connect_retry_max, std::chrono::seconds(600));
}

TEST(Loader, SurvivesGarbage) {
  // Nothing may crash or hang, whatever the bytes.
  std::string junk;
  for (int i = 0; i < 5000; ++i) junk += static_cast<char>((i * 7919) % 256);
  auto r = load(junk);
  EXPECT_FALSE(r.ok());
  auto long_line = load(std::string(10000, 'x'));
  EXPECT_EQ(said(long_line, Severity::error).front(), "test.conf:1:1: line longer than 4096 characters");
}

}  // namespace

namespace {

TEST(Loader, PeersForBigServersAndTheirBadInput) {
  const std::string k1 = "mJ2S5mFYAkE4Rxsb+a9vKO6ObJ6BoQiKJQDPxmIW8mU=",
                    k2 = "G7RXw4dyV+2bGRMm9XBA0zbSVeBkvQwBbKkNHlxGYWQ=";
  // A key given twice is an error that names both lines.
  auto twice = load("mode server\npeer " + k1 + " 198.19.0.1/32\npeer " + k1 + " 198.19.0.2/32\n");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(errors(twice).find("peer " + k1 + " is already given at test.conf:2:1"), std::string::npos)
      << errors(twice);
  // A peer needs its allowed IPs (write 0.0.0.0/32 for none that can be used).
  EXPECT_NE(errors(load("mode server\npeer " + k1 + "\n")).find("missing argument for 'peer'"), std::string::npos);
  // max-clients: 1 or more.
  EXPECT_NE(errors(load("mode server\nmax-clients 0\n")).find("'max-clients' must be a whole number from 1"),
            std::string::npos);
  EXPECT_EQ(load("mode server\nmax-clients 5000\n").config.max_clients, 5000u);
  // sndbuf / rcvbuf (OpenVPN's names): bytes, 4096 or more; unset stays the default (0).
  const auto buffers = load("mode server\nsndbuf 262144\nrcvbuf 1048576\n");
  EXPECT_EQ(buffers.config.sndbuf, 262144);
  EXPECT_EQ(buffers.config.rcvbuf, 1048576);
  EXPECT_EQ(load("mode server\n").config.sndbuf, 0);
  EXPECT_NE(errors(load("mode server\nsndbuf 100\n")).find("test.conf:2"), std::string::npos);
  EXPECT_NE(errors(load("mode server\nsndbuf 100\n")).find("'sndbuf' must be a whole number from 4096"),
            std::string::npos);
  // crypto-threads: a count or auto (the default: -1), anything else named with its line.
  EXPECT_EQ(load("mode server\n").config.crypto_threads, -1);
  EXPECT_EQ(load("mode server\ncrypto-threads 3\n").config.crypto_threads, 3);
  EXPECT_EQ(load("mode server\ncrypto-threads 0\n").config.crypto_threads, 0);
  EXPECT_EQ(load("mode server\ncrypto-threads auto\n").config.crypto_threads, -1);
  EXPECT_NE(errors(load("mode server\ncrypto-threads many\n")).find("test.conf:2"), std::string::npos);
  EXPECT_NE(errors(load("mode server\ncrypto-threads 65\n")).find("'crypto-threads' (a count, or auto)"),
            std::string::npos);
  // 100 000 prefixes on one 'peer' line is 1.7 MB: past the 4096-character line (and the
  // 1 MiB file) a configuration may have, said plainly. (The device itself takes that
  // many: Device.HundredThousandPrefixesOnOnePeer.)
  std::string many;
  for (int i = 0; i < 100000; ++i) {
    many += (many.empty() ? "" : ",") + std::string("198.") + std::to_string(18 + (i >> 16)) + "." +
            std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + "/32";
  }
  EXPECT_EQ(errors(load("mode server\npeer " + k2 + " " + many + "\n")),
            "test.conf:2:1: line longer than 4096 characters\n");
}

TEST(Loader, PeersTakeWireGuardsSettingsAndFwmark) {
  const std::string k1 = "mJ2S5mFYAkE4Rxsb+a9vKO6ObJ6BoQiKJQDPxmIW8mU=",
                    k2 = "G7RXw4dyV+2bGRMm9XBA0zbSVeBkvQwBbKkNHlxGYWQ=";
  auto r = load("mode server\nfwmark 51820\npeer " + k1 +
                " 198.19.0.1/32 endpoint=[fd00::9]:51820 keepalive=25 preshared-key=" + k2 + "\n");
  ASSERT_TRUE(r.ok()) << errors(r);
  EXPECT_EQ(r.config.fwmark, 51820u);
  const auto& p = r.config.peers.at(0);
  EXPECT_EQ(p.endpoint, net::Endpoint::parse("[fd00::9]:51820").value());
  EXPECT_EQ(p.persistent_keepalive, 25);
  EXPECT_EQ(p.preshared, config::key_from_base64(k2));
  EXPECT_NE(errors(load("mode server\npeer " + k1 + " 198.19.0.1/32 endpoint=vpn.example.test:51820\n"))
                .find("a literal: names go in 'remote'"),
            std::string::npos);
  EXPECT_NE(errors(load("mode server\npeer " + k1 + " 198.19.0.1/32 keepalive=70000\n")).find("0 to 65535"),
            std::string::npos);
  EXPECT_NE(errors(load("mode server\npeer " + k1 + " 198.19.0.1/32 psk=x\n")).find("a peer takes endpoint="),
            std::string::npos);
}

}  // namespace

namespace {

// duet.conf(5) documents the language: every directive the loader knows is in it.
TEST(Documentation, EveryDirectiveIsInTheManPage) {
  std::ifstream in(std::string(DUET_SOURCE_DIR) + "/daemon/man/duet.conf.5");
  ASSERT_TRUE(in) << "daemon/man/duet.conf.5";
  std::stringstream text;
  text << in.rdbuf();
  text.seekg(0);
  // The terms the page defines: the words of its bold lines (.B, .BR, .BI).
  std::set<std::string> terms;
  for (std::string line; std::getline(text, line);) {
    if (line.rfind(".B", 0) != 0) continue;
    for (char& c : line) {
      if (c == '"' || c == ',') c = ' ';
    }
    std::istringstream words(line);
    for (std::string w; words >> w;) terms.insert(w);
  }
  for (const auto& d : known_directives()) EXPECT_TRUE(terms.contains(d)) << "duet.conf(5) defines no '" << d << "'";
}

}  // namespace
