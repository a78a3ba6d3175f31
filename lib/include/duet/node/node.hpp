// One duet instance: from a Config, a NetworkStack, a Tun and the stack's Clock it builds
// and owns everything the engine needs — the WireGuard device and its sessions, the
// sockets (the stack's, or a proxy plugin's), the listeners and the connector — starts
// them, applies a new Config on reload (keeping what did not change), and answers for
// its state. duetd runs it on PosixStack with a Linux TUN, duet-sim's runner and the
// engine tests on the simulator with a simulated TUN: the same wiring in both worlds.
//
// Randomness (ephemeral keys, session indices, cookie secrets, timer jitter) comes from the
// stack: the kernel's on PosixStack, the world's seeded generator in the simulator.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/network_stack.hpp"
#include "duet/net/tun.hpp"
#include "duet/transport/client.hpp"
#include "duet/transport/events.hpp"
#include "duet/transport/flow.hpp"
#include "duet/transport/server.hpp"
#include "duet/transport/session.hpp"
#include "duet/transport/socket_factory.hpp"
#include "duet/tunnel/device.hpp"

namespace duet::node {

struct NodeOptions {
  /// Every engine event (also kept for status(): the last warning or error).
  transport::EventSink events;
  /// The private key when the configuration names a file the caller has read (the
  /// daemon); otherwise `private-key` must hold the key itself.
  std::optional<config::Key> private_key;
  /// Sessions for an instance without `private-key` (the scenario runner's probe
  /// sessions); with a key the node's WireGuard device makes them.
  transport::SessionFactory* sessions = nullptr;
  /// Called once the listeners are open: false when not one socket could be.
  std::function<void(bool ok)> listening;
  /// The device's limits (the MTU always comes from `tun-mtu`).
  tunnel::DeviceLimits limits;
  /// Configured at run time (WireGuard's tools, `duetd IFNAME`): the device starts even
  /// without a private key or peers, which the configuration protocol sets later.
  bool runtime_configured = false;
};

/// What a reload did.
struct ReloadOutcome {
  bool applied = false;
  std::string restart_needed;  ///< the directives that changed and need a restart
  tunnel::Device::PeerChanges peers;
  bool listeners_reopened = false;
  bool reconnected = false;
};

struct PeerStatus {
  config::Key public_key{};
  std::vector<net::Prefix> allowed_ips;
  std::optional<net::Endpoint> endpoint;  ///< where it was last heard, else the configured one
  config::Transport transport = config::Transport::udp;
  std::optional<net::Duration> since_handshake;
  std::optional<config::Key> preshared;
  std::uint16_t persistent_keepalive = 0;
  std::uint64_t rx_bytes = 0, tx_bytes = 0;
};

/// A snapshot for `duetctl status` and the status file.
struct Status {
  std::string interface;
  std::optional<config::Key> public_key;
  config::Mode mode = config::Mode::p2p;
  std::vector<std::string> listening;
  std::optional<bool> connected;  ///< absent without a client
  /// The client's path now (absent when not connected), and what path health did.
  struct Path {
    net::Endpoint remote;
    config::Transport transport = config::Transport::udp;
    net::Duration smoothed_rtt{0};  ///< 0: not measured yet
    std::uint64_t declared_dead = 0, moves_back = 0;
    std::optional<net::Endpoint> standby;  ///< another address that answered a path check
    net::Duration standby_age{0};          ///< since it last answered
    std::uint64_t standby_moves = 0;       ///< failovers straight to a checked standby
  };
  std::optional<Path> path;
  std::vector<PeerStatus> peers;                     ///< as asked (every peer, none, or one)
  std::size_t peers_configured = 0, peers_live = 0;  ///< live: holding keys
  double handshakes_per_second = 0;                  ///< over the last 10 s
  std::uint64_t handshakes = 0, refused_max_clients = 0;
  std::uint64_t cookie_replies_sent = 0, handshakes_rate_limited = 0;
  std::string last_error;
  std::string tun_offloads;
  net::TunCounters tun_counters;
  std::uint64_t streams_congested = 0;   ///< times an outer TCP stream or UDP socket filled up (TUN reads paused)
  std::uint64_t stuck_overrides = 0;     ///< times reading resumed past a stream that did not drain
  std::uint64_t stream_drops = 0;        ///< messages dropped because their stream was full
  std::uint64_t congested_unpaused = 0;  ///< times one filled up while others took traffic (TUN kept reading)
  std::uint64_t tun_looks = 0;           ///< times a paused TUN was read for a moment (for other peers)
  std::size_t crypto_threads = 0;        ///< helper threads sealing and opening (crypto-threads)
  std::uint64_t sealed_on_threads = 0, opened_on_threads = 0;  ///< data messages they did
};

/// Which peers a status lists: every one, none (a summary), or the one with `key`.
struct PeerSelection {
  bool all = true;
  std::optional<config::Key> key;
};

/// The device's peers as a configuration states them.
std::vector<tunnel::PeerConfig> peer_configs(const config::Config& c);

class Node {
public:
  /// `tun` is needed (and used) only with a private key. The peer list moves into the
  /// device: the node keeps no second copy of it (a big server's peers are most of its memory).
  Node(net::NetworkStack& stack, net::Tun* tun, config::Config config, NodeOptions options = {});
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Builds and starts everything; false (with the reason, also sent as a startup_failed
  /// event) when the node cannot run: an unreadable key, no peer, a plugin that will not load.
  bool start(std::string& why);
  /// Applies `next` (already loaded without errors).
  ReloadOutcome reload(const config::Config& next);
  [[nodiscard]] Status status(const PeerSelection& which = {}) const;

  /// A new private key (nullopt: none), at once: every peer's keys are dropped (see
  /// tunnel::Device::set_identity).
  void set_private_key(const std::optional<config::Key>& key);
  /// The private key in use, if any.
  [[nodiscard]] std::optional<config::Key> private_key() const;
  /// Sends `peer`'s traffic to `endpoint` from now on (over the listening UDP socket of
  /// its family), as WireGuard does when its endpoint is set. False without such a socket.
  bool use_endpoint(const config::Key& peer, const net::Endpoint& endpoint);
  /// The UDP port the listeners are bound to, if any.
  [[nodiscard]] std::optional<std::uint16_t> listen_port() const;
  /// The peers as a configuration would state them now: allowed IPs as held (a prefix
  /// moved to a later peer is listed there only), endpoints as last known.
  [[nodiscard]] std::vector<config::Peer> peers() const;

  /// The configuration last applied, without its peer list (device()->peers() has the peers).
  [[nodiscard]] const config::Config& config() const { return *current_; }
  [[nodiscard]] tunnel::Device* device() { return device_.get(); }
  [[nodiscard]] const tunnel::Device* device() const { return device_.get(); }
  [[nodiscard]] transport::Server* server() { return server_.get(); }
  [[nodiscard]] const transport::Server* server() const { return server_.get(); }
  [[nodiscard]] transport::Client* client() { return client_.get(); }
  [[nodiscard]] const transport::Client* client() const { return client_.get(); }

private:
  void emit(const transport::Event& e);
  bool fail(std::string& why, std::string text);
  void start_server();
  void start_client();
  /// Keeps a configuration as it will be held: peers moved out, the first one's key noted.
  std::shared_ptr<const config::Config> keep(config::Config c);
  /// The device asks for a path to a peer: one to its endpoint over the listening socket.
  void open_path(std::size_t peer);

  /// Backpressure: the TUN is paused while every outlet it feeds is full (see flow.hpp).
  void flow_changed();
  /// Reads the TUN or pauses it, as the flow control, a look and a stuck stream say.
  void apply_reading();
  /// While paused: a short look at the TUN (a server); while not: a review of who is busy.
  void flow_tick();
  /// Notes the streams' progress and looks again after kStuckAfter.
  void watch_progress();
  void check_stuck();

  net::NetworkStack& stack_;
  net::Tun* tun_;
  NodeOptions options_;
  transport::FlowControl flow_;
  std::unique_ptr<net::Timer> stuck_timer_, flow_timer_;
  std::uint64_t progress_at_check_ = 0, stuck_overrides_ = 0, looks_ = 0;
  bool reading_ = true;          ///< the TUN is being read
  bool looking_ = false;         ///< read for a moment while paused (flow_tick)
  bool stuck_released_ = false;  ///< read past a stream that did not drain (check_stuck)
  // The server and the client each keep the configuration they were built from, so a
  // reload can replace one without the other.
  std::shared_ptr<const config::Config> current_, server_config_, client_config_;
  std::unique_ptr<tunnel::Device> device_;
  std::unique_ptr<tunnel::DeviceSessions> responders_, initiators_;
  std::unique_ptr<transport::SocketFactory> sockets_;
  std::unique_ptr<transport::Server> server_;
  std::unique_ptr<transport::Client> client_;
  std::string last_error_;
  std::vector<tunnel::PeerConfig> initial_peers_;  ///< until start() hands them to the device
  bool has_peers_ = false;                         ///< the configuration names peers
  std::optional<config::Key> first_peer_;          ///< the one a client talks to
  bool listening_ = false;                         ///< the server's sockets are open (or failed to)
  bool client_started_ = false;                    ///< a p2p client waits for them
};

}  // namespace duet::node
