// duetd: the daemon. The engine (lib/transport) on PosixStack, the WireGuard data
// channel (lib/tunnel) as its session, and a TUN device.
//
//   duetd genkey                      a new private key (WireGuard base64)
//   duetd pubkey < private.key        its public key
//   duetd --config FILE [--directive args...]
//
// Not built yet (see README): SIGHUP reload, privilege drop, systemd notification,
// duetctl and the status socket, cookie replies under load, rekey timers.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <fstream>
#include <set>
#include <thread>
#include <iostream>
#include <spawn.h>

#include "duet/config/loader.hpp"
#include "duet/plugin/host.hpp"
#include "duet/posix/posix_stack.hpp"
#include "duet/posix/tun.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/server.hpp"
#include "duet/tunnel/device.hpp"
#include "config_check.hpp"
#include "privileges.hpp"
#include "status.hpp"

extern char** environ;

using namespace duet;

namespace {

constexpr const char* kUsage =
    "usage: duetd genkey | duetd pubkey < KEY | duetd [--events FILE] [--start-at UNIX_MS] --config FILE [--directive args...]\n"
    "       duetd --test-config [--json] [--no-resolve] [FILE] [--directive args...]\n";

spdlog::level::level_enum level_for_verb(int verb) {
  if (verb <= 0) return spdlog::level::err;
  if (verb <= 2) return spdlog::level::warn;
  if (verb == 3) return spdlog::level::info;
  if (verb == 4) return spdlog::level::debug;
  return spdlog::level::trace;
}

/// Runs a command without a shell and waits; the daemon logs each one it runs.
bool run(spdlog::logger& log, std::vector<std::string> argv) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  log.info("running: {}", line);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return false;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// The prefixes `route-allowed-ips` routes into the TUN: every peer's allowed IPs, except
/// the subnets the device's own addresses already give it.
std::set<std::string> allowed_ip_routes(const config::Config& cfg) {
  std::set<std::string> out;
  if (!cfg.route_allowed_ips) return out;
  for (const auto& p : cfg.peers) {
    for (const auto& prefix : p.allowed_ips) {
      bool connected = false;
      for (const auto& a : cfg.ifconfig) connected = connected || a.network() == prefix.network();
      if (!connected) out.insert(prefix.network().to_string());
    }
  }
  return out;
}

/// Makes the TUN's allowed-IP routes go from `before` to `after` (a reload), logging each.
void sync_routes(spdlog::logger& log, const std::string& dev, const std::set<std::string>& before,
                 const std::set<std::string>& after) {
  for (const auto& r : before) {
    if (!after.contains(r) && !run(log, {"ip", "route", "del", r, "dev", dev})) log.warn("could not remove the route to {}", r);
  }
  for (const auto& r : after) {
    if (!before.contains(r) && !run(log, {"ip", "route", "replace", r, "dev", dev})) {
      log.warn("could not route {} into {} (after 'user', duetd lacks CAP_NET_ADMIN)", r, dev);
    }
  }
}

std::optional<tunnel::Key> read_private_key(const std::string& value, std::string& error) {
  if (auto k = tunnel::key_from_base64(value)) return k;
  std::ifstream in(value);
  std::string text;
  if (!in || !(in >> text)) {
    error = "cannot read the private key file '" + value + "'";
    return std::nullopt;
  }
  if (auto k = tunnel::key_from_base64(text)) return k;
  error = "'" + value + "' does not hold a WireGuard private key";
  return std::nullopt;
}

/// What decides whether a reload must rebuild the listeners...
std::string listens_key(const config::Config& c) {
  std::string k = std::string(config::to_string(c.mode));
  for (const auto& l : c.listens) {
    k += "|" + std::string(config::to_string(l.proto)) + "," + std::string(config::to_string(l.family)) + "," +
         std::to_string(l.port);
    for (const auto& a : l.locals) k += "," + a;
  }
  return k;
}

/// ...and whether it must rebuild the outgoing connections.
std::string connections_key(const config::Config& c) {
  std::string k = std::string(config::to_string(c.mode)) + (c.remote_random ? "r" : "");
  for (const auto& x : c.connections) {
    k += "|" + std::string(config::to_string(x.proto)) + "," + std::string(config::to_string(x.family)) + "," +
         std::to_string(x.lport) + "," + std::to_string(static_cast<int>(x.bind)) + "," +
         std::to_string(x.connect_timeout.count()) + "," + std::to_string(x.happy_eyeballs_delay.count()) + "," +
         std::to_string(x.keepalive_interval.count()) + "," + std::to_string(x.keepalive_timeout.count());
    for (const auto& r : x.remotes) k += "," + r.host + ":" + std::to_string(r.port) + "/" + std::string(config::to_string(r.proto));
    for (const auto& a : x.locals) k += ",l" + a;
  }
  return k;
}

std::vector<tunnel::PeerConfig> peer_configs(const config::Config& c) {
  std::vector<tunnel::PeerConfig> out;
  for (const auto& p : c.peers) out.push_back({*tunnel::key_from_base64(p.public_key), {}, p.allowed_ips});
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (!tunnel::crypto_init()) {
    std::cerr << "duetd: cannot initialise libsodium\n";
    return 1;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--test-config") {
    args.erase(args.begin());
    return daemon::config_check(args);
  }
  if (args[0] == "genkey") {
    std::cout << tunnel::key_to_base64(tunnel::generate_private_key()) << "\n";
    return 0;
  }
  if (args[0] == "pubkey") {
    std::string text;
    std::cin >> text;
    auto k = tunnel::key_from_base64(text);
    if (!k) {
      std::cerr << "duetd: standard input is not a WireGuard private key\n";
      return 1;
    }
    std::cout << tunnel::key_to_base64(tunnel::public_key(*k)) << "\n";
    return 0;
  }

  // --events FILE: every engine event as a JSON line (for the namespace testbed, which
  // judges scenario sentences from them as the simulator does).
  // --start-at UNIX_MS: open everything, then start the engine at that wall-clock time
  // (the testbed starts several daemons' engines together, as the simulator does).
  std::unique_ptr<std::ofstream> event_file;
  std::optional<long long> start_at;
  while (args.size() >= 2 && (args[0] == "--events" || args[0] == "--start-at")) {
    if (args[0] == "--events") {
      event_file = std::make_unique<std::ofstream>(args[1], std::ios::app);
      if (!*event_file) {
        std::cerr << "duetd: cannot write events to '" << args[1] << "'\n";
        return 1;
      }
    } else {
      try {
        start_at = std::stoll(args[1]);
      } catch (const std::exception&) {
        std::cerr << "duetd: --start-at wants milliseconds since 1970, not '" << args[1] << "'\n";
        return 1;
      }
    }
    args.erase(args.begin(), args.begin() + 2);
  }

  const auto loaded = config::load_command_line(args);
  for (const auto& d : loaded.diagnostics.all()) std::cerr << d.to_string() << "\n";
  if (!loaded.ok()) return 1;
  // The server and the client each keep the configuration they were built from, so a
  // reload can replace one without the other.
  auto server_cfg = std::make_shared<const config::Config>(loaded.config);
  auto client_cfg = server_cfg;
  const config::Config& cfg = *server_cfg;  // what cannot change without a restart

  auto log = spdlog::stdout_color_mt("duetd");
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  log->set_level(level_for_verb(cfg.verb));
  log->flush_on(spdlog::level::trace);  // a daemon's log is read while it runs

  std::string key_error;
  if (cfg.private_key.empty()) {
    log->error("no 'private-key': make one with 'duetd genkey'");
    return 1;
  }
  const auto private_key = read_private_key(cfg.private_key, key_error);
  if (!private_key) {
    log->error("{}", key_error);
    return 1;
  }
  daemon::Identity drop_to;
  std::string identity_error;
  if (!daemon::lookup_identity(cfg.user, cfg.group, drop_to, identity_error)) {
    log->error("{}", identity_error);
    return 1;
  }
  if (cfg.peers.empty()) {
    log->error("no 'peer PUBLIC_KEY ALLOWED_IPS': nobody to talk to");
    return 1;
  }
  const std::vector<tunnel::PeerConfig> peers = peer_configs(cfg);

  boost::asio::io_context io;
  posix::PosixStack stack(io, posix::StackOptions{cfg.offload.gso, cfg.offload.gro});
  auto tun = posix::Tun::open(io, cfg.dev, cfg.offload.tun);
  if (!tun) {
    log->error("cannot open TUN device '{}': {} (needs CAP_NET_ADMIN and /dev/net/tun)", cfg.dev, tun.error().message());
    return 1;
  }
  const std::string dev = (*tun)->name();
  log->info("TUN {} offloads: {}", dev, (*tun)->offloads().describe());
  for (const auto& a : cfg.ifconfig) {
    if (!run(*log, {"ip", "address", "add", a.to_string(), "dev", dev})) log->warn("could not add {} to {}", a.to_string(), dev);
  }
  if (!run(*log, {"ip", "link", "set", "dev", dev, "mtu", std::to_string(cfg.tun_mtu), "up"})) {
    log->error("could not bring {} up", dev);
    return 1;
  }
  std::set<std::string> routes = allowed_ip_routes(cfg);
  sync_routes(*log, dev, {}, routes);

  tunnel::DeviceLimits limits;
  limits.mtu = static_cast<std::size_t>(cfg.tun_mtu);
  tunnel::Device device(tunnel::Identity::from_private(*private_key), peers, stack.clock(),
                        [&tun](std::span<const std::uint8_t> p) { (*tun)->write(p); }, tunnel::random_bytes, limits);
  tunnel::DeviceSessions responders(device, std::nullopt);
  auto initiators = std::make_unique<tunnel::DeviceSessions>(device, std::size_t{0});
  // Sockets straight from the stack, or through a proxy plugin (http-proxy, socks-proxy,
  // plugin): the daemon itself holds no proxy code.
  std::string plugin_error;
  auto sockets_ptr = plugin::sockets_for(cfg, stack, plugin_error);
  if (!sockets_ptr) {
    log->error("{}", plugin_error);
    return 1;
  }
  transport::SocketFactory& sockets = *sockets_ptr;
  std::string last_error;
  auto events = [&log, &last_error, &event_file](const transport::Event& e) {
    transport::log_event(*log, e);
    if (event_file) {
      const auto unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count();
      nlohmann::json j = {{"unix_ms", unix_ms},
                          {"kind", std::string(transport::to_string(e.kind))},
                          {"elapsed_ms", net::to_ms(e.elapsed)},
                          {"detail", e.detail},
                          {"text", e.describe()}};
      if (e.endpoint) j["endpoint"] = e.endpoint->to_string();
      if (e.transport) j["transport"] = std::string(config::to_string(*e.transport));
      *event_file << j.dump() << "\n" << std::flush;
    }
    if (transport::level_of(e.kind) >= transport::EventLevel::warning) {
      last_error = e.describe();
    }
  };

  std::unique_ptr<transport::Server> server;
  std::unique_ptr<transport::Client> client;
  auto start_server = [&] {
    server.reset();
    if (server_cfg->listens.empty()) return;
    server = std::make_unique<transport::Server>(stack, *server_cfg, responders, events);
    server->start([&io, &log](bool ok) {
      if (!ok) {
        log->error("no listening socket: stopping");
        io.stop();
      }
    });
  };
  auto start_client = [&] {
    client.reset();
    bool has_remote = false;
    for (const auto& c : client_cfg->connections) has_remote = has_remote || !c.remotes.empty();
    if (!has_remote) return;
    // A client talks to its first peer; after a reload, find it by key.
    const auto first = tunnel::key_from_base64(client_cfg->peers.front().public_key);
    initiators = std::make_unique<tunnel::DeviceSessions>(device, device.peer_index(*first));
    client = std::make_unique<transport::Client>(stack, sockets, *client_cfg, *initiators, events, server.get());
    client->start();
  };
  if (start_at) {
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(std::chrono::milliseconds(*start_at)));
  }
  start_server();
  start_client();
  (*tun)->start_reading([&device, &log](std::span<const std::uint8_t> packet) {
    if (!device.route(packet)) log->trace("no peer (or no session) for a {}-byte packet", packet.size());
  });

  // duetctl's control socket: root or the daemon's group only (0660).
  namespace local = boost::asio::local;
  const std::string control = cfg.control_socket.empty() ? "/run/duetd-" + dev + ".sock" : cfg.control_socket;
  ::unlink(control.c_str());
  boost::system::error_code control_ec;
  local::stream_protocol::acceptor control_acceptor(io);
  control_acceptor.open(local::stream_protocol(), control_ec);
  if (!control_ec) control_acceptor.bind(local::stream_protocol::endpoint(control), control_ec);
  if (!control_ec) control_acceptor.listen(8, control_ec);
  if (control_ec) {
    log->warn("no control socket at {}: {} (duetctl will not reach this daemon)", control, control_ec.message());
  } else {
    ::chmod(control.c_str(), 0660);
    if (!cfg.group.empty() && ::chown(control.c_str(), static_cast<uid_t>(-1), drop_to.gid) != 0) {
      log->warn("cannot give {} to group {}", control, cfg.group);
    }
    log->info("control socket {}", control);
  }
  std::function<void()> serve_control = [&] {
    control_acceptor.async_accept([&](const boost::system::error_code& ec, local::stream_protocol::socket peer) {
      if (ec) return;
      auto sock = std::make_shared<local::stream_protocol::socket>(std::move(peer));
      auto request = std::make_shared<boost::asio::streambuf>(256);
      // Read the request line first: closing a Unix socket with unread data resets the peer.
      boost::asio::async_read_until(*sock, *request, '\n', [&, sock, request](const boost::system::error_code& rec, std::size_t) {
        if (rec) return;
        const auto status = daemon::status_json({cfg, dev, device, server.get(), client.get(), stack.clock().now(), last_error,
                                                       &(*tun)->offloads(), &(*tun)->counters(), &stack.udp_counters()});
        auto reply = std::make_shared<std::string>(status.dump());
        boost::asio::async_write(*sock, boost::asio::buffer(*reply), [sock, reply](const boost::system::error_code&, std::size_t) {
          boost::system::error_code ignored;
          sock->shutdown(local::stream_protocol::socket::shutdown_send, ignored);
        });
      });
      serve_control();
    });
  };
  if (!control_ec) serve_control();

  // SIGHUP: read the configuration again; keep what did not change.
  boost::asio::signal_set hangup(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      log->info("SIGHUP: reloading the configuration");
      const auto again = config::load_command_line(args);
      for (const auto& d : again.diagnostics.all()) log->warn("{}", d.to_string());
      if (!again.ok()) {
        log->error("the new configuration has errors: keeping the running one");
      } else if (again.config.private_key != cfg.private_key || again.config.dev != cfg.dev ||
                 again.config.ifconfig != cfg.ifconfig || again.config.peers.empty() ||
                 !(again.config.offload == cfg.offload)) {
        log->warn("private-key, dev, ifconfig, offload or the peer list's presence changed: restart duetd to apply them");
      } else {
        auto next = std::make_shared<const config::Config>(again.config);
        const auto changes = device.update_peers(peer_configs(*next));
        log->info("peers: {} kept, {} added, {} removed", changes.kept, changes.added, changes.removed);
        auto new_routes = allowed_ip_routes(*next);
        sync_routes(*log, dev, routes, new_routes);
        routes = std::move(new_routes);
        const bool listens_changed = listens_key(*next) != listens_key(*server_cfg);
        const bool connections_changed = connections_key(*next) != connections_key(*client_cfg);
        if (listens_changed) {
          log->info("listen blocks changed: reopening the listening sockets");
          server_cfg = next;
          start_server();
        }
        if (connections_changed || listens_changed) {
          log->info("{}: reconnecting", connections_changed ? "connections changed" : "the shared sockets changed");
          client_cfg = next;
          start_client();
        }
        if (!listens_changed && !connections_changed) log->info("listeners and connections unchanged: kept as they are");
      }
      on_hangup();
    });
  };
  on_hangup();

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log->info("signal {}: shutting down", sig);
    io.stop();
  });
  // Everything privileged is done: the TUN, its addresses, the listening sockets.
  if (!cfg.user.empty() || !cfg.group.empty()) {
    std::string drop_error;
    if (!daemon::drop_privileges(drop_to, drop_error)) {
      log->error("{}", drop_error);
      return 1;
    }
    log->info("running as uid {} gid {}", drop_to.uid, drop_to.gid);
  }
  log->info("duetd running: mode {}, device {}, {} peer{}", config::to_string(cfg.mode), dev, peers.size(),
            peers.size() == 1 ? "" : "s");
  if (daemon::notify_ready("running: mode " + std::string(config::to_string(cfg.mode)) + ", device " + dev)) {
    log->debug("told systemd we are ready");
  }
  io.run();
  ::unlink(control.c_str());
  return 0;
}
