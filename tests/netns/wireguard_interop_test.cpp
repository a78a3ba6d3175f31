// duet's WireGuard protocol core against a stock wireguard-go, in network namespaces this
// test creates and deletes:
//
//   duet ns: 198.18.100.2 (this process, PosixStack) ── veth ── wg ns: 198.18.100.1:51820
//                                                                 wireguard-go wg0 198.18.101.1/24
//   duet's tunnel address 198.18.101.2 (allowed-ips on the wireguard-go side)
//
// An ICMP echo request sealed by duet must come back as an echo reply from the wg
// namespace's kernel (through wireguard-go's TUN), and the other way round.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "../support/driver.hpp"
#include "../support/topology.hpp"
#include "duet/net/checksum.hpp"
#include "duet/net/ping.hpp"
#include "duet/tunnel/noise.hpp"

extern char** environ;

using namespace duet;
using namespace duet::test;
using namespace duet::tunnel;

namespace {

Bytes icmp_echo(std::uint8_t type, const char* src, const char* dst, std::uint16_t id, std::uint16_t seq) {
  return net::ipv4_icmp_echo(type, *net::Address::parse(src), *net::Address::parse(dst), id, seq);
}

Timestamp now_tai64n() {
  const auto t = std::chrono::system_clock::now().time_since_epoch();
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(t);
  return tai64n(static_cast<std::uint64_t>(s.count()),
                static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t - s).count()));
}

class WireguardGo : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!Netns::available(why)) FAIL() << why;
    if (std::system("command -v wireguard-go >/dev/null && command -v wg >/dev/null") != 0) {
      FAIL() << "needs wireguard-go and wireguard-tools (apt-get install wireguard-go wireguard-tools)";
    }
    ASSERT_TRUE(crypto_init());
    Topology t;
    t.hosts = {{"duet", false, 1000, 100}, {"wg", false, 1000, 100}};
    t.links = {{"duet", "eth0", "wg", "eth0"}};
    t.addresses = {{"duet", "eth0", "198.18.100.2/24"}, {"wg", "eth0", "198.18.100.1/24"}};
    netns_ = std::make_unique<Netns>(t);
    // wireguard-go in the foreground, as our child, in the wg namespace. Its control
    // socket lives at a global path (/var/run/wireguard/NAME.sock), so the interface
    // name must be unique among tests running at the same time.
    const std::string ns = netns_->name("wg");
    wg_if_ = "wgt" + std::to_string(getpid() % 1000000) + std::to_string(++instance_counter_);
    const char* argv[] = {"ip", "netns", "exec", ns.c_str(), "wireguard-go", "-f", wg_if_.c_str(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    ASSERT_EQ(posix_spawnp(&wg_pid_, "ip", &fa, nullptr, const_cast<char**>(argv), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      up = std::system(("ip -n " + ns + " link show " + wg_if_ + " >/dev/null 2>&1").c_str()) == 0;
      if (!up) usleep(50000);
    }
    ASSERT_TRUE(up) << "wireguard-go did not create " << wg_if_;
    wg_ = Identity::from_private(generate_private_key());
    me_ = Identity::from_private(generate_private_key());
    key_file_ = ::testing::TempDir() + "/duet-wg-key-" + std::to_string(getpid());
    std::ofstream(key_file_) << key_to_base64(wg_.private_key) << "\n";
    netns_->exec("wg", "wg set " + wg_if_ + " private-key " + key_file_ + " listen-port 51820 peer " +
                           key_to_base64(me_.public_key) + " allowed-ips 198.18.101.2/32");
    netns_->exec("wg", "ip addr add 198.18.101.1/24 dev " + wg_if_);
    netns_->exec("wg", "ip link set " + wg_if_ + " up");
    netns_->enter("duet");
    driver_ = std::make_unique<PosixDriver>();
    socket_ = std::move(*driver_->stack().open_datagram(net::Family::v4));
    ASSERT_FALSE(socket_->bind(*net::Endpoint::parse("198.18.100.2:0")));
  }

  void TearDown() override {
    socket_.reset();
    driver_.reset();
    if (wg_pid_ > 0) {
      kill(wg_pid_, SIGTERM);
      int status = 0;
      waitpid(wg_pid_, &status, 0);
    }
    std::remove(key_file_.c_str());
    netns_.reset();  // leaves the namespace and deletes both
  }

  /// The next datagram from wireguard-go, within `limit`.
  std::optional<Bytes> receive(Duration limit = 5s) {
    std::optional<Bytes> got;
    socket_->receive([&](std::error_code ec, const net::Endpoint&, std::span<const std::uint8_t> d) {
      got = ec ? Bytes{} : Bytes(d.begin(), d.end());
    });
    driver_->run_until([&] { return got.has_value(); }, limit);
    return got;
  }

  std::unique_ptr<Netns> netns_;
  pid_t wg_pid_ = -1;
  std::string wg_if_;
  static inline int instance_counter_ = 0;
  Identity wg_, me_;
  std::string key_file_;
  std::unique_ptr<PosixDriver> driver_;
  std::unique_ptr<net::DatagramSocket> socket_;
  const net::Endpoint wg_endpoint_ = *net::Endpoint::parse("198.18.100.1:51820");
};

TEST_F(WireguardGo, DuetInitiatesAndAPingComesBack) {
  InitiatorState st;
  const Bytes init =
      create_initiation(me_, wg_.public_key, Key{}, 0x0d0e0001, now_tai64n(), generate_private_key(), st);
  ASSERT_FALSE(socket_->send_to(wg_endpoint_, init));
  auto resp = receive();
  ASSERT_TRUE(resp && !resp->empty()) << "no handshake response from wireguard-go";
  ASSERT_EQ(resp->size(), kResponseLength);
  auto keys = consume_response(me_, st, *resp);
  ASSERT_TRUE(keys) << "duet could not verify wireguard-go's response";

  ASSERT_FALSE(
      socket_->send_to(wg_endpoint_, encrypt_data(*keys, 0, icmp_echo(8, "198.18.101.2", "198.18.101.1", 0x1234, 1))));
  ReplayWindow window;
  for (int i = 0; i < 5; ++i) {
    auto msg = receive();
    ASSERT_TRUE(msg && !msg->empty()) << "nothing came back through the tunnel";
    auto data = decrypt_data(*keys, *msg);
    ASSERT_TRUE(data) << "duet could not decrypt wireguard-go's data";
    ASSERT_TRUE(window.accept(data->counter));
    if (data->packet.empty()) continue;  // a keepalive
    ASSERT_GE(data->packet.size(), 28u);
    EXPECT_EQ(data->packet[9], 1) << "ICMP";
    EXPECT_EQ(data->packet[20], 0) << "an echo reply";
    EXPECT_EQ((data->packet[24] << 8) | data->packet[25], 0x1234);
    EXPECT_EQ(net::Address::v4(data->packet[12], data->packet[13], data->packet[14], data->packet[15]).to_string(),
              "198.18.101.1");
    return;
  }
  FAIL() << "no echo reply among the first messages";
}

TEST_F(WireguardGo, WireguardGoInitiatesAndItsTrafficArrives) {
  const auto local = *socket_->local_endpoint();
  netns_->exec("wg", "wg set " + wg_if_ + " peer " + key_to_base64(me_.public_key) + " endpoint " + local.to_string());
  // Traffic for the peer makes wireguard-go start a handshake: UDP datagrams from bash
  // (no ping needed) to duet's tunnel address.
  netns_->exec("wg",
               "bash -c 'for i in 1 2 3 4; do echo duet > /dev/udp/198.18.101.2/9; sleep 0.5; done >/dev/null 2>&1 &'");
  auto init = receive();
  ASSERT_TRUE(init && init->size() == kInitiationLength) << "no handshake initiation from wireguard-go";
  auto got = consume_initiation(me_, *init);
  ASSERT_TRUE(got) << "duet could not verify wireguard-go's initiation";
  EXPECT_EQ(got->peer_static, wg_.public_key);
  Keypair keys;
  ASSERT_FALSE(
      socket_->send_to(wg_endpoint_, create_response(me_, *got, Key{}, 0x0d0e0002, generate_private_key(), keys)));
  for (int i = 0; i < 8; ++i) {
    auto msg = receive();
    ASSERT_TRUE(msg && !msg->empty()) << "no data after the handshake";
    if ((*msg)[0] != kMessageData) continue;  // a retried initiation
    auto data = decrypt_data(keys, *msg);
    ASSERT_TRUE(data) << "duet could not decrypt wireguard-go's data";
    if (data->packet.size() < 28) continue;
    EXPECT_EQ(data->packet[9], 17) << "wireguard-go carried the UDP datagram";
    EXPECT_EQ((data->packet[22] << 8) | data->packet[23], 9) << "to port 9";
    EXPECT_EQ(net::Address::v4(data->packet[16], data->packet[17], data->packet[18], data->packet[19]).to_string(),
              "198.18.101.2");
    return;
  }
  FAIL() << "no datagram arrived through the tunnel";
}

}  // namespace
