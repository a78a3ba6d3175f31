// Simulator speed: events per second of wall time for worlds of 2, 100 and 10 000 hosts
// in pairs, each pair bouncing UDP datagrams back and forth over its own link.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "duet/sim/world.hpp"

using namespace duet;
using namespace std::chrono_literals;

namespace {

/// Bounces every datagram back to its sender, forever.
struct Bouncer {
  std::unique_ptr<net::DatagramSocket> socket;
  void arm() {
    socket->receive([this](std::error_code ec, const net::Endpoint& from, std::span<const std::uint8_t> d) {
      if (!ec) (void)socket->send_to(from, d);
      arm();
    });
  }
};

struct PairedWorld {
  std::unique_ptr<sim::SimWorld> world;
  std::vector<std::unique_ptr<Bouncer>> bouncers;

  explicit PairedWorld(int hosts) : world(std::make_unique<sim::SimWorld>(42)) {
    sim::LinkProperties link;
    link.one_way_delay = 1ms;
    link.jitter = 200us;
    for (int p = 0; p < hosts / 2; ++p) {
      const std::string a = "a" + std::to_string(p);
      const std::string b = "b" + std::to_string(p);
      world->add_host(a);
      world->add_host(b);
      world->connect(a, "eth0", b, "eth0", link);
      // 198.18.0.0/15 holds 2^15 /32 pairs: plenty for 10 000 hosts.
      const int hi = p / 256, lo = p % 256;
      const std::string net = "198." + std::to_string(18 + hi / 256) + "." + std::to_string(hi % 256) + ".";
      (void)lo;
      world->add_address(a, "eth0", net + std::to_string(lo) + "/32");
      world->add_address(b, "eth0", "fd00:" + std::to_string(p) + "::2/64");
      world->add_address(a, "eth0", "fd00:" + std::to_string(p) + "::1/64");
      for (const auto& name : {a, b}) {
        auto bouncer = std::make_unique<Bouncer>();
        bouncer->socket = std::move(*world->stack(name).open_datagram(net::Family::v6));
        (void)bouncer->socket->bind(*net::Endpoint::parse("[::]:7"));
        bouncer->arm();
        bouncers.push_back(std::move(bouncer));
      }
      // Four datagrams in flight per pair.
      const auto target = *net::Endpoint::parse("[fd00:" + std::to_string(p) + "::2]:7");
      const std::uint8_t payload[64] = {};
      for (int k = 0; k < 4; ++k) (void)bouncers[bouncers.size() - 2]->socket->send_to(target, payload);
    }
  }
};

void BM_SimulatorEvents(benchmark::State& state) {
  PairedWorld w(static_cast<int>(state.range(0)));
  const auto before = w.world->events_processed();
  for (auto _ : state) w.world->run_for(10ms);
  const auto events = w.world->events_processed() - before;
  state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.counters["hosts"] = static_cast<double>(state.range(0));
}

BENCHMARK(BM_SimulatorEvents)->Arg(2)->Arg(100)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
