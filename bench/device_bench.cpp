// The device's route-and-seal path (a packet from the TUN: find its peer by destination,
// seal it, hand it to the peer's path) with 1 to 100 000 configured peers, each holding an
// IPv4 /32 and an IPv6 /128 (so half the packets look up each family). Traffic goes to 64
// of them, whose handshakes are done; the others are configured and idle, as most of a
// big server's peers are. The target: with 10 000 peers, at least 90 % of one peer's rate.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "duet/sim/random.hpp"
#include "duet/sim/world.hpp"
#include "duet/tunnel/device.hpp"

using namespace duet;
using namespace duet::tunnel;

namespace {

Device::RandomSource seeded(std::uint64_t seed) {
  auto r = std::make_shared<sim::Random>(seed);
  return [r](std::span<std::uint8_t> out) {
    for (auto& b : out) b = static_cast<std::uint8_t>(r->next());
  };
}

net::Address v4_of(std::size_t i) { return net::Address::v4(0x0A000000u + static_cast<std::uint32_t>(i)); }
net::Address v6_of(std::size_t i) {
  net::Address::Bytes b{0xfd, 0x00, 0x0b, 0xe0};
  for (int k = 0; k < 8; ++k) b[static_cast<std::size_t>(8 + k)] = static_cast<std::uint8_t>(i >> (56 - 8 * k));
  return net::Address::v6(b);
}

/// A packet of `size` bytes from the server's side to `dst`.
Bytes packet_to(const net::Address& dst, std::size_t size) {
  Bytes p(size, 0);
  if (dst.is_v4()) {
    p[0] = 0x45;
    p[2] = static_cast<std::uint8_t>(size >> 8);
    p[3] = static_cast<std::uint8_t>(size);
    p[9] = 17;
    std::memcpy(&p[12], net::Address::v4(0xC6128C01u).bytes().data(), 4);
    std::memcpy(&p[16], dst.bytes().data(), 4);
  } else {
    p[0] = 0x60;
    p[4] = static_cast<std::uint8_t>((size - 40) >> 8);
    p[5] = static_cast<std::uint8_t>(size - 40);
    p[6] = 17;
    std::memcpy(&p[24], dst.bytes().data(), 16);
  }
  return p;
}

constexpr std::size_t kActive = 64;

/// A server device with `peers` configured peers and kActive of them connected.
struct Server {
  explicit Server(std::size_t peers) : world(1) {
    world.add_host("s");
    world.add_host("c");
    const Identity me = Identity::from_private(clamp_private_key(Key{1}));
    std::vector<Identity> active;
    std::vector<PeerConfig> configs;
    sim::Random r(7);
    for (std::size_t i = 0; i < peers; ++i) {
      Key pub{};
      if (i < kActive) {
        Key priv{};
        for (auto& b : priv) b = static_cast<std::uint8_t>(r.next());
        active.push_back(Identity::from_private(clamp_private_key(priv)));
        pub = active.back().public_key;
      } else {
        for (auto& b : pub) b = static_cast<std::uint8_t>(r.next());  // idle: never speaks
      }
      configs.push_back({pub, {}, {net::Prefix{v4_of(i), 32}, net::Prefix{v6_of(i), 128}}});
    }
    device = std::make_unique<Device>(
        me, std::move(configs), world.stack("s").clock(), [](std::span<const std::uint8_t>) {}, seeded(2));
    for (std::size_t i = 0; i < active.size(); ++i) {
      auto client = std::make_unique<Device>(
          active[i], std::vector<PeerConfig>{{me.public_key, {}, {}}}, world.stack("c").clock(),
          [](std::span<const std::uint8_t>) {}, seeded(10 + i));
      connect(*client, i);
      clients.push_back(std::move(client));
    }
  }

  /// A handshake between a client and the server over a path that the benchmark pumps.
  void connect(Device& client, std::size_t i) {
    struct Path {
      std::unique_ptr<transport::Session> session;
      std::deque<Bytes> out;
    };
    auto c = std::make_shared<Path>();
    auto s = std::make_shared<Path>();
    const net::Endpoint where{v4_of(1000000 + i), 51820};
    c->session = client.make_initiator(0, {net::Address::v4(0xC6128C01u), 51820}, config::Transport::udp);
    s->session = device->make_responder(where, config::Transport::udp);
    c->session->attach([c](std::span<const std::uint8_t> m) { c->out.emplace_back(m.begin(), m.end()); });
    s->session->attach([s](std::span<const std::uint8_t> m) { s->out.emplace_back(m.begin(), m.end()); });
    c->out.push_back(c->session->hello());
    while (!c->out.empty() || !s->out.empty()) {
      for (auto [from, to] : {std::pair{c.get(), s.get()}, std::pair{s.get(), c.get()}}) {
        while (!from->out.empty()) {
          const Bytes m = std::move(from->out.front());
          from->out.pop_front();
          for (auto& x : to->session->receive(m).send) to->out.push_back(std::move(x));
        }
      }
    }
    // From now on what the server sends on this path is counted and dropped.
    s->session->attach([this](std::span<const std::uint8_t> m) { sent_bytes += m.size(); });
    paths.push_back(s);
    paths.push_back(c);
  }

  sim::SimWorld world;
  std::unique_ptr<Device> device;
  std::vector<std::unique_ptr<Device>> clients;
  std::vector<std::shared_ptr<void>> paths;
  std::uint64_t sent_bytes = 0;
};

void RouteAndSeal(benchmark::State& state) {
  const auto peers = static_cast<std::size_t>(state.range(0));
  const auto size = static_cast<std::size_t>(state.range(1));
  Server s(peers);
  std::vector<Bytes> packets;
  for (std::size_t i = 0; i < std::min(kActive, peers); ++i) {
    packets.push_back(packet_to(v4_of(i), size));
    packets.push_back(packet_to(v6_of(i), size));
  }
  std::size_t k = 0;
  for (auto _ : state) {
    if (!s.device->route(packets[k])) state.SkipWithError("a packet found no peer");
    k = (k + 1) % packets.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
  state.counters["sealed_bytes"] = static_cast<double>(s.sent_bytes);
}

/// The responder's work for one handshake (what bounds handshakes a second on a core):
/// check and open an initiation, make the response (with the static-static Diffie-Hellman
/// kept from an earlier handshake, as the device keeps it). The initiations are made
/// beforehand, so only the responder is timed.
void RespondToHandshake(benchmark::State& state) {
  (void)crypto_init();
  const Identity server = Identity::from_private(clamp_private_key(Key{1}));
  const Identity client = Identity::from_private(clamp_private_key(Key{2}));
  const Key ss = *dh(server.private_key, client.public_key);
  std::vector<Bytes> initiations;
  for (std::uint32_t i = 0; i < 256; ++i) {
    InitiatorState st;
    initiations.push_back(create_initiation(client, server.public_key, Key{}, i, tai64n(1000 + i, 0),
                                            clamp_private_key(Key{static_cast<std::uint8_t>(i), 7}), st));
  }
  std::size_t k = 0;
  for (auto _ : state) {
    auto in = consume_initiation(server, initiations[k], [&](const Key&) -> std::optional<Key> { return ss; });
    Keypair keys;
    benchmark::DoNotOptimize(
        create_response(server, *in, Key{}, 9, clamp_private_key(Key{3, static_cast<std::uint8_t>(k)}), keys));
    k = (k + 1) % initiations.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

/// One X25519 (libsodium), the unit a handshake's cost is made of.
void X25519(benchmark::State& state) {
  (void)crypto_init();
  Key priv = clamp_private_key(Key{5});
  const Key pub = public_key(clamp_private_key(Key{6}));
  for (auto _ : state) {
    auto out = dh(priv, pub);
    benchmark::DoNotOptimize(out);
    priv[1] ^= (*out)[0];
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(RespondToHandshake)->Unit(benchmark::kMicrosecond);
BENCHMARK(X25519)->Unit(benchmark::kMicrosecond);

BENCHMARK(RouteAndSeal)
    ->ArgsProduct({{1, 1000, 10000, 100000}, {128, 1420}})
    ->ArgNames({"peers", "bytes"})
    ->Unit(benchmark::kNanosecond);

BENCHMARK_MAIN();
