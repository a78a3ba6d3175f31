// libFuzzer target: any bytes on WireGuard's configuration socket. The stream is cut
// into operations (node::uapi::Connection) and each runs against a real node in a
// simulated world, as duetd runs them: never a crash or a hang, a refused set changes
// nothing (get answers the same before and after), and get always answers.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "duet/config/loader.hpp"
#include "duet/node/node.hpp"
#include "duet/node/uapi.hpp"
#include "duet/sim/tun.hpp"
#include "duet/sim/world.hpp"

using namespace duet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sim::SimWorld world(1);
  world.add_host("h");
  world.add_address("h", "eth0", "198.18.0.1/24");
  world.add_address("h", "eth0", "fd00::1/64");
  auto& stack = world.stack("h");
  sim::SimTun tun(stack.clock(), "wg0");
  node::NodeOptions options;
  options.runtime_configured = true;
  auto cfg = config::load_text("mode server\nproto udp\nlport 51820\n", "fuzz");
  node::Node node(stack, &tun, cfg.config, options);
  std::string why;
  if (!node.start(why)) std::abort();
  world.run_for(std::chrono::milliseconds(1));

  node::uapi::Connection connection(4096, 1 << 20);
  const auto run = [&](node::uapi::Connection::Op op, std::string_view body) {
    if (op == node::uapi::Connection::Op::get) return node::uapi::get(node, stack) + node::uapi::errno_line(0);
    const std::string before = node::uapi::get(node, stack);
    const auto e = node::uapi::set(node, stack, body);
    if (!e.ok() && node::uapi::get(node, stack) != before) std::abort();  // half-applied
    world.run_for(std::chrono::milliseconds(1));
    return node::uapi::errno_line(e.code);
  };
  // In two pieces, as a socket may deliver it.
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)connection.feed(input.substr(0, size / 2), run);
  (void)connection.feed(input.substr(size / 2), run);
  (void)connection.finish(run);
  (void)node::uapi::get(node, stack);
  return 0;
}
