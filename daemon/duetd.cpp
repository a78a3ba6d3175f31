// duetd: the daemon. One node::Node (the engine with the WireGuard data channel) on
// PosixStack with a Linux TUN, and the operating system around it: the command line
// (command_line.cpp), the TUN's addresses and routes (tun_setup.cpp), duetctl's control
// socket (control_socket.cpp), the event log and status file (reporting.cpp), privileges
// and systemd (privileges.cpp), WireGuard's configuration socket (uapi_socket.cpp); SIGHUP
// reloads the configuration, SIGINT/SIGTERM stop. `duetd [-f] IFNAME` starts as
// wireguard-go does: a device with no key and no peer, configured with `wg` or `wg-quick`.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <fstream>
#include <iostream>
#include <thread>

#include "command_line.hpp"
#include "config_check.hpp"
#include "control_socket.hpp"
#include "duet/config/loader.hpp"
#include "duet/node/node.hpp"
#include "duet/node/uapi.hpp"
#include "duet/policy/review.hpp"
#include "duet/posix/linux_tun.hpp"
#include "duet/posix/posix_stack.hpp"
#include "duet/tunnel/crypto.hpp"
#include "duet/tunnel/crypto_pool.hpp"
#include "privileges.hpp"
#include "reporting.hpp"
#include "status.hpp"
#include "tun_setup.hpp"
#include "uapi_socket.hpp"

#ifndef DUET_VERSION
#define DUET_VERSION "0"
#endif

using namespace duet;

namespace {

spdlog::level::level_enum level_for_verb(int verb) {
  if (verb <= 0) return spdlog::level::err;
  if (verb <= 2) return spdlog::level::warn;
  if (verb == 3) return spdlog::level::info;
  if (verb == 4) return spdlog::level::debug;
  return spdlog::level::trace;
}

/// `private-key KEY|FILE`: the key itself, or a file holding it.
std::optional<config::Key> read_private_key(const std::string& value, std::string& error) {
  if (auto k = config::key_from_base64(value)) return k;
  std::ifstream in(value);
  std::string text;
  if (!in || !(in >> text)) {
    error = "cannot read the private key file '" + value + "'";
    return std::nullopt;
  }
  if (auto k = config::key_from_base64(text)) return k;
  error = "'" + value + "' does not hold a WireGuard private key";
  return std::nullopt;
}

int keys(daemon::Invocation::Kind kind) {
  if (kind == daemon::Invocation::Kind::genkey) {
    std::cout << config::key_to_base64(tunnel::generate_private_key()) << "\n";
    return 0;
  }
  std::string text;
  std::cin >> text;
  auto k = config::key_from_base64(text);
  if (!k) {
    std::cerr << "duetd: standard input is not a WireGuard private key\n";
    return 1;
  }
  std::cout << config::key_to_base64(tunnel::public_key(*k)) << "\n";
  return 0;
}

/// Where `wg` finds userspace WireGuard implementations.
constexpr const char* kWireGuardSocketDir = "/var/run/wireguard";

int run(const daemon::Invocation& inv, const std::function<void()>& ready = {}) {
  // `duetd IFNAME`: a UDP listener on both families, keys and peers to come from `wg`.
  const bool wg_launch = inv.kind == daemon::Invocation::Kind::interface;
  auto loaded = policy::reviewed(
      wg_launch ? config::load_text("mode server\nproto udp\ndev " + inv.interface + "\n", "duetd " + inv.interface)
                : config::load_command_line(inv.config));
  for (const auto& d : loaded.diagnostics.all()) std::cerr << d.to_string() << "\n";
  if (!loaded.ok()) return 1;
  config::Config& cfg = loaded.config;  // moves into the node below; node.config() from then on

  auto log = spdlog::stdout_color_mt("duetd");
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  log->set_level(level_for_verb(cfg.verb));
  log->flush_on(spdlog::level::trace);  // a daemon's log is read while it runs
  spdlog::set_default_logger(log);

  node::NodeOptions options;
  options.runtime_configured = wg_launch;
  // Crypto beside the loop (crypto-threads): only where there are cores for it.
  const std::size_t crypto_helpers =
      cfg.crypto_threads < 0 ? tunnel::CryptoPool::automatic() : static_cast<std::size_t>(cfg.crypto_threads);
  std::unique_ptr<tunnel::CryptoPool> crypto_pool;
  if (crypto_helpers > 0) {
    crypto_pool = std::make_unique<tunnel::CryptoPool>(crypto_helpers);
    options.limits.crypto = crypto_pool.get();
  }
  log->info("crypto: {}", crypto_helpers == 0 ? std::string("on the event loop's thread")
                                              : std::to_string(crypto_helpers) + " threads beside the event loop");
  if (!wg_launch) {
    if (cfg.private_key.empty()) {
      log->error("no 'private-key': make one with 'duetd genkey' (or start 'duetd IFNAME' and use wg)");
      return 1;
    }
    std::string key_error;
    options.private_key = read_private_key(cfg.private_key, key_error);
    if (!options.private_key) {
      log->error("{}", key_error);
      return 1;
    }
  }
  daemon::Identity drop_to;
  std::string identity_error;
  if (!daemon::lookup_identity(cfg.user, cfg.group, drop_to, identity_error)) {
    log->error("{}", identity_error);
    return 1;
  }
  std::unique_ptr<daemon::EventLog> event_log;
  if (!inv.events_file.empty()) {
    event_log = std::make_unique<daemon::EventLog>(inv.events_file);
    if (!event_log->ok()) {
      log->error("cannot write events to '{}'", inv.events_file);
      return 1;
    }
  }

  boost::asio::io_context io;
  posix::StackOptions stack_options{.udp_gso = cfg.offload.gso, .udp_gro = cfg.offload.gro};
  if (cfg.sndbuf != 0) stack_options.udp_send_buffer = cfg.sndbuf;
  if (cfg.rcvbuf != 0) stack_options.udp_receive_buffer = cfg.rcvbuf;
  posix::PosixStack stack(io, stack_options);
  auto tun = posix::LinuxTun::open(io, cfg.dev, cfg.offload.tun);
  if (!tun) {
    log->error("cannot open TUN device '{}': {} (needs CAP_NET_ADMIN and /dev/net/tun)", cfg.dev,
               tun.error().message());
    return 1;
  }
  const std::string dev = (*tun)->name();
  log->info("TUN {} offloads: {}", dev, (*tun)->offloads());
  // Deleting the interface (ip link del) ends the daemon, as it ends wireguard-go.
  (*tun)->on_gone([&io, &log, dev](std::error_code ec) {
    log->info("interface {} is gone ({}): stopping", dev, ec.message());
    io.stop();
  });
  std::set<std::string> routes;
  if (wg_launch) {
    // As WireGuard: a port of the system's choosing, one for both families (wg may change it).
    const auto port = node::uapi::free_port(stack);
    if (!port) {
      log->error("no UDP port free on both families");
      return 1;
    }
    for (auto& l : cfg.listens) {
      l.port = *port;
      l.without_address = true;
    }
  } else {
    // The interface is set up from the file; in a WireGuard launch, wg-quick (or ip) does it.
    if (!daemon::configure_device(*log, dev, cfg)) return 1;
    routes = daemon::allowed_ip_routes(cfg);
    daemon::sync_routes(*log, dev, {}, routes);
  }

  options.events = [&log, &event_log](const transport::Event& e) {
    transport::log_event(*log, e);
    if (event_log) event_log->write(e);
  };
  options.listening = [&io, &log](bool ok) {
    if (!ok) {
      log->error("no listening socket: stopping");
      io.stop();
    }
  };
  const std::size_t peer_count = cfg.peers.size();
  node::Node node(stack, tun->get(), std::move(cfg), std::move(options));
  const config::Config& running = node.config();
  if (inv.start_at) {
    // The testbed starts several daemons' engines together, as the simulator does.
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(std::chrono::milliseconds(*inv.start_at)));
  }
  std::string why;
  if (!node.start(why)) {
    log->error("{}", why);
    return 1;
  }
  // Reading a big configuration leaves freed memory behind in the heap: give it back.
  malloc_trim(0);

  auto status_text = [&] { return daemon::status_text(daemon::status_json(node.status(), &stack)); };
  const std::string control_path =
      running.control_socket.empty() ? "/run/duetd-" + dev + ".sock" : running.control_socket;
  daemon::ControlSocket control(io, *log, control_path, running.group.empty() ? -1 : static_cast<int>(drop_to.gid),
                                [&](const std::string& request) { return daemon::answer(request, node, &stack); });
  // WireGuard's configuration socket, for wg and wg-quick.
  std::string uapi_error;
  daemon::UapiSocket uapi_socket(
      io, *log, kWireGuardSocketDir, dev,
      [&](node::uapi::Connection::Op op, std::string_view body) {
        if (op == node::uapi::Connection::Op::get) return node::uapi::get(node, stack) + node::uapi::errno_line(0);
        const auto e = node::uapi::set(node, stack, body);
        if (!e.ok()) {
          log->warn("wg: set refused, nothing changed (errno={}): {}", e.code, e.message);
        } else {
          log->info("wg: set applied: {} peers", node.status({.all = false}).peers_configured);
          if (node.config().route_allowed_ips) {
            config::Config now = node.config();
            now.peers = node.peers();
            auto after = daemon::allowed_ip_routes(now);
            daemon::sync_routes(*log, dev, routes, after);
            routes = std::move(after);
          }
        }
        return node::uapi::errno_line(e.code);
      },
      uapi_error);
  if (!uapi_error.empty()) {
    if (wg_launch) {
      log->error("{}", uapi_error);
      return 1;
    }
    log->warn("{} (wg will not reach this daemon)", uapi_error);
  }
  std::unique_ptr<daemon::StatusFile> status_file;
  if (running.status) {
    status_file = std::make_unique<daemon::StatusFile>(stack.clock(), running.status->path, running.status->interval,
                                                       status_text);
  }

  // SIGHUP: read the configuration again; keep what did not change.
  boost::asio::signal_set hangup(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (wg_launch) {
        log->info("SIGHUP: no configuration file to read again (this device is configured with wg)");
        on_hangup();
        return;
      }
      log->info("SIGHUP: reloading the configuration (changes made with wg since are replaced by the file's)");
      const auto again = policy::reviewed(config::load_command_line(inv.config));
      for (const auto& d : again.diagnostics.all()) log->warn("{}", d.to_string());
      if (!again.ok()) {
        log->error("the new configuration has errors: keeping the running one");
      } else {
        const auto status_before = node.config().status;
        const auto r = node.reload(again.config);
        if (!r.applied) {
          log->warn("{} changed: restart duetd to apply them", r.restart_needed);
        } else {
          log->info("peers: {} kept, {} added, {} removed", r.peers.kept, r.peers.added, r.peers.removed);
          auto after = daemon::allowed_ip_routes(again.config);
          daemon::sync_routes(*log, dev, routes, after);
          routes = std::move(after);
          if (r.listeners_reopened) log->info("listen blocks changed: reopened the listening sockets");
          if (r.reconnected) log->info("connections (or the sockets they share) changed: reconnecting");
          if (!r.listeners_reopened && !r.reconnected)
            log->info("listeners and connections unchanged: kept as they are");
          if (node.config().status != status_before) log->warn("'status' changed: restart duetd to apply it");
        }
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
  if (!running.user.empty() || !running.group.empty()) {
    std::string drop_error;
    if (!daemon::drop_privileges(drop_to, drop_error)) {
      log->error("{}", drop_error);
      return 1;
    }
    log->info("running as uid {} gid {}", drop_to.uid, drop_to.gid);
  }
  log->info("duetd running: mode {}, device {}, {} peer{}", config::to_string(running.mode), dev, peer_count,
            peer_count == 1 ? "" : "s");
  if (daemon::notify_ready("running: mode " + std::string(config::to_string(running.mode)) + ", device " + dev)) {
    log->debug("told systemd we are ready");
  }
  if (ready) ready();
  io.run();
  return 0;
}

/// `duetd IFNAME` without -f: as wireguard-go, the daemon goes to the background and the
/// command returns once the interface and its configuration socket exist (0), or the
/// daemon failed to start (1, its error on standard error).
int launch_in_background(const daemon::Invocation& inv) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) {
    std::perror("duetd: pipe");
    return 1;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("duetd: fork");
    return 1;
  }
  if (pid > 0) {
    ::close(pipe_fds[1]);
    char c = 0;
    const ssize_t n = ::read(pipe_fds[0], &c, 1);
    ::close(pipe_fds[0]);
    return n == 1 && c == '1' ? 0 : 1;
  }
  ::close(pipe_fds[0]);
  ::setsid();
  if (const int null = ::open("/dev/null", O_RDONLY); null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::close(null);
  }
  const int ready_fd = pipe_fds[1];
  return run(inv, [ready_fd] {
    const char one = '1';
    (void)!::write(ready_fd, &one, 1);
    ::close(ready_fd);
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (!tunnel::crypto_init()) {
    std::cerr << "duetd: cannot initialise libsodium\n";
    return 1;
  }
  const auto inv = daemon::parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
  if (!inv.error.empty()) {
    std::cerr << "duetd: " << inv.error << "\n" << daemon::kUsage;
    return 2;
  }
  switch (inv.kind) {
    case daemon::Invocation::Kind::help:
      std::cout << daemon::kUsage;
      return 0;
    case daemon::Invocation::Kind::version:
      std::cout << "duetd " << DUET_VERSION << "\n";
      return 0;
    case daemon::Invocation::Kind::test_config:
      return daemon::config_check(inv.config);
    case daemon::Invocation::Kind::genkey:
    case daemon::Invocation::Kind::pubkey:
      return keys(inv.kind);
    case daemon::Invocation::Kind::interface:
      return inv.foreground ? run(inv) : launch_in_background(inv);
    case daemon::Invocation::Kind::run:
      break;
  }
  return run(inv);
}
