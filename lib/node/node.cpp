#include "duet/node/node.hpp"

#include "duet/plugin/host.hpp"

namespace duet::node {

std::vector<tunnel::PeerConfig> peer_configs(const config::Config& c) {
  std::vector<tunnel::PeerConfig> out;
  for (const auto& p : c.peers)
    out.push_back(
        {p.public_key, p.preshared.value_or(config::Key{}), p.allowed_ips, p.endpoint, p.persistent_keepalive});
  return out;
}

namespace {

bool has_remote(const config::Config& c) {
  for (const auto& x : c.connections) {
    if (!x.remotes.empty()) return true;
  }
  return false;
}

}  // namespace

Node::Node(net::NetworkStack& stack, net::Tun* tun, config::Config config, NodeOptions options)
    : stack_(stack),
      tun_(tun),
      options_(std::move(options)),
      flow_(stack.clock()),
      stuck_timer_(stack.clock().make_timer()),
      flow_timer_(stack.clock().make_timer()),
      initial_peers_(peer_configs(config)) {
  current_ = keep(std::move(config));
  server_config_ = client_config_ = current_;
  flow_.on_change([this] { flow_changed(); });
}

namespace {
// A paused TUN waits this long for some full stream to take data before it reads again
// anyway: a stream that does not drain (a peer gone silent, a zero window) must not hold
// up the other peers; its own messages are dropped at its cap instead.
constexpr net::Duration kStuckAfter = std::chrono::milliseconds(200);
// While the TUN is paused for one busy peer, a node with more peers reads it again this
// often, for this long: a packet for another peer may be waiting behind the busy one's
// (one queue for all), and once it is read that peer counts as taking traffic. While a
// congested outlet is not waited for (others take traffic), this is also how often the
// node looks whether the others have gone quiet (then the TUN waits for it again).
constexpr net::Duration kLookEvery = std::chrono::milliseconds(50);
constexpr net::Duration kLookFor = std::chrono::milliseconds(2);
}  // namespace

// The timers are left to run out rather than cancelled when the congestion ends: their
// next start then needs no new memory (see PosixTimer), and a late tick finds nothing to do.
void Node::flow_changed() {
  if (tun_ == nullptr || !device_) return;
  if (!flow_.congested()) {
    stuck_released_ = looking_ = false;
  } else {
    if (!flow_timer_->pending()) flow_timer_->start(kLookEvery, [this] { flow_tick(); });
    if (flow_.pausing() && !stuck_released_ && !stuck_timer_->pending()) watch_progress();
  }
  apply_reading();
}

void Node::apply_reading() {
  const bool read = !flow_.pausing() || looking_ || stuck_released_;
  if (read == reading_) return;
  reading_ = read;
  tun_->pause_reading(!read);
}

void Node::flow_tick() {
  if (!flow_.congested()) return;
  if (looking_) {
    looking_ = false;
  } else if (flow_.pausing() && device_->peers().size() > 1) {
    looking_ = true;
    ++looks_;
    apply_reading();
    flow_timer_->start(kLookFor, [this] { flow_tick(); });
    return;
  }
  flow_.review();  // re-arms the timer and pauses or reads as it finds (flow_changed)
}

void Node::watch_progress() {
  progress_at_check_ = flow_.progress();
  stuck_timer_->start(kStuckAfter, [this] { check_stuck(); });
}

void Node::check_stuck() {
  if (!flow_.pausing()) return;
  if (flow_.progress() == progress_at_check_) {
    ++stuck_overrides_;
    stuck_released_ = true;
    apply_reading();
    return;
  }
  watch_progress();
}

std::shared_ptr<const config::Config> Node::keep(config::Config c) {
  has_peers_ = !c.peers.empty();
  first_peer_.reset();
  if (has_peers_) first_peer_ = c.peers.front().public_key;
  c.peers.clear();
  c.peers.shrink_to_fit();
  return std::make_shared<const config::Config>(std::move(c));
}

Node::~Node() {
  flow_.on_change(nullptr);
  // The client and the server hold sessions of the device: they go first.
  client_.reset();
  server_.reset();
  initiators_.reset();
  responders_.reset();
}

void Node::emit(const transport::Event& e) {
  if (transport::level_of(e.kind) >= transport::EventLevel::warning) last_error_ = e.describe();
  if (options_.events) options_.events(e);
}

bool Node::fail(std::string& why, std::string text) {
  why = std::move(text);
  emit({.time = stack_.clock().now(), .kind = transport::EventKind::startup_failed, .detail = why});
  return false;
}

bool Node::start(std::string& why) {
  const config::Config& cfg = *current_;
  if (!cfg.private_key.empty() || options_.runtime_configured) {
    auto key = options_.private_key ? options_.private_key : config::key_from_base64(cfg.private_key);
    if (!key && !cfg.private_key.empty())
      return fail(why, "private-key must be the key itself (base64) here, not '" + cfg.private_key + "'");
    if (!has_peers_ && !options_.runtime_configured)
      return fail(why, "no 'peer PUBLIC_KEY ALLOWED_IPS': nobody to talk to");
    if (tun_ == nullptr) return fail(why, "a tunnel needs a TUN device");
    tunnel::DeviceLimits limits = options_.limits;
    limits.mtu = static_cast<std::size_t>(cfg.tun_mtu);
    if (cfg.max_clients != 0) limits.max_clients = cfg.max_clients;
    limits.peers_may_answer_keepalives = cfg.mode == config::Mode::client;
    limits.peers_may_answer_path_checks = cfg.mode == config::Mode::p2p;
    device_ = std::make_unique<tunnel::Device>(
        tunnel::Identity::from_private(key.value_or(config::Key{})), std::move(initial_peers_), stack_.clock(),
        [this](std::span<const std::uint8_t> p) { tun_->write(p); },
        [this](std::span<std::uint8_t> out) { stack_.random_fill(out); }, limits);
    if (!key) device_->set_identity(std::nullopt);  // until the configuration protocol sets one
    device_->set_path_needed([this](std::size_t peer) { open_path(peer); });
    responders_ = std::make_unique<tunnel::DeviceSessions>(*device_, std::nullopt);
  } else if (options_.sessions == nullptr) {
    return fail(why, "no 'private-key': make one with 'duetd genkey'");
  }
  std::string plugin_error;
  sockets_ = plugin::sockets_for(cfg, stack_, plugin_error);
  if (!sockets_) return fail(why, plugin_error);
  start_server();
  start_client();
  if (device_) {
    tun_->start_reading_batches([this](std::span<const std::span<const std::uint8_t>> packets) {
      flow_.begin_batch();
      (void)device_->route_batch(packets);
      flow_.end_batch();
    });
  }
  return true;
}

void Node::start_server() {
  server_.reset();
  if (server_config_->listens.empty()) return;
  transport::SessionFactory& sessions = device_ ? *responders_ : *options_.sessions;
  server_ = std::make_unique<transport::Server>(stack_, *server_config_, sessions,
                                                [this](const transport::Event& e) { emit(e); });
  server_->set_flow(&flow_);
  listening_ = false;
  server_->start([this](bool ok) {
    listening_ = true;
    if (options_.listening) options_.listening(ok);
    // Peers with a persistent keepalive speak first (also after the sockets were reopened).
    if (ok && device_) {
      for (std::size_t i = 0; i < device_->peers().size(); ++i) {
        const auto& p = device_->peers()[i];
        if (!p.removed && p.config.persistent_keepalive != 0) device_->send_keepalive(i);
      }
    }
    // A p2p client's attempts send from the listening sockets: they begin once those exist.
    if (client_ && !client_started_) {
      client_started_ = true;
      client_->start();
    }
  });
}

void Node::start_client() {
  client_.reset();
  if (!has_remote(*client_config_)) return;
  transport::SessionFactory* sessions = options_.sessions;
  if (device_) {
    // A client talks to its first peer; after a reload, found by key.
    initiators_ = std::make_unique<tunnel::DeviceSessions>(*device_, device_->peer_index(*first_peer_));
    sessions = initiators_.get();
  }
  client_ = std::make_unique<transport::Client>(
      stack_, *sockets_, *client_config_, *sessions, [this](const transport::Event& e) { emit(e); }, server_.get());
  client_->set_flow(&flow_);
  client_started_ = !server_ || listening_;
  if (client_started_) client_->start();
}

void Node::open_path(std::size_t peer) {
  if (!server_ || !device_) return;
  const auto& ps = device_->peers()[peer];
  // The client's own peer is reached through the client's connection.
  if (client_ && first_peer_ && ps.config.public_key == *first_peer_) return;
  std::optional<net::Endpoint> to;
  if (ps.endpoint && ps.transport == config::Transport::udp) to = ps.endpoint;  // where it was last heard
  if (!to) to = ps.config.endpoint;
  if (!to) return;
  (void)server_->open_path(*to, device_->make_path(peer, *to));
}

bool Node::use_endpoint(const config::Key& peer, const net::Endpoint& endpoint) {
  if (!server_ || !device_) return false;
  const auto i = device_->peer_index(peer);
  if (!i) return false;
  return server_->open_path(endpoint, device_->make_path(*i, endpoint));
}

void Node::set_private_key(const std::optional<config::Key>& key) {
  if (!device_) return;
  device_->set_identity(key ? std::optional(tunnel::Identity::from_private(*key)) : std::nullopt);
}

std::optional<config::Key> Node::private_key() const {
  if (!device_ || !device_->has_identity()) return std::nullopt;
  return device_->identity().private_key;
}

std::optional<std::uint16_t> Node::listen_port() const {
  if (!server_) return std::nullopt;
  for (const auto& l : server_->listening()) {
    if (l.transport == config::Transport::udp) return l.local.port;
  }
  // Being (re)opened: the port asked for.
  for (const auto& l : server_config_->listens) {
    if (l.port != 0) return l.port;
  }
  return std::nullopt;
}

std::vector<config::Peer> Node::peers() const {
  std::vector<config::Peer> out;
  if (!device_) return out;
  const auto& peers = device_->peers();
  for (std::size_t i = 0; i < peers.size(); ++i) {
    const auto& p = peers[i];
    if (p.removed) continue;
    config::Peer c;
    c.public_key = p.config.public_key;
    c.allowed_ips = device_->allowed_ips(i);
    if (p.config.preshared != config::Key{}) c.preshared = p.config.preshared;
    c.endpoint = p.config.endpoint;
    c.persistent_keepalive = p.config.persistent_keepalive;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace duet::node
