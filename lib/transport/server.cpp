#include "duet/transport/server.hpp"

#include "duet/net/error.hpp"
#include "duet/policy/bind_plan.hpp"

#include <unordered_map>

namespace duet::transport {

namespace {
using namespace std::chrono_literals;
// No bound on peers that have authenticated (max-clients bounds them in the tunnel). What
// is bounded is state for those that have not: TCP connections yet to authenticate, at
// most this many at once and this long each.
constexpr std::size_t kMaxUnauthenticatedTcp = 1024;
constexpr net::Duration kTcpAuthenticateWithin = 15s;
// A path its peer has left (roaming, a new connection) is forgotten once idle this long;
// a peer that speaks again is recognised by its first authenticated message.
constexpr net::Duration kStalePathIdle = 180s;
constexpr net::Duration kSweepEvery = 30s;
}  // namespace

std::string ListeningSocket::to_string() const {
  return local.to_string() + "/" + std::string(config::to_string(transport));
}

struct Server::UdpListener {
  struct Peer {
    std::unique_ptr<Session> session;
    net::TimePoint last_authenticated;  ///< for forgetting a path its peer has left
    /// The local address the peer last reached with an authenticated message: what it
    /// expects answers from (a wildcard socket on a host with several addresses would
    /// otherwise answer from whichever the route prefers). Shared with the session's sender.
    std::shared_ptr<net::Address> source;
  };
  std::unique_ptr<net::DatagramSocket> socket;
  net::Family family;
  /// Every source that has authenticated (thousands on a big server: looked up by hash
  /// for each datagram, not by walking a tree).
  std::unordered_map<net::Endpoint, Peer> peers;
};

struct Server::TcpListener {
  std::unique_ptr<net::Listener> listener;
};

struct Server::TcpPeer {
  TcpPeer() = default;
  TcpPeer(const TcpPeer&) = delete;
  TcpPeer& operator=(const TcpPeer&) = delete;
  ~TcpPeer() {
    if (flow != nullptr && stream) flow->forget(*stream);
  }
  FlowControl* flow = nullptr;
  std::uint64_t id = 0;
  std::unique_ptr<net::StreamSocket> stream;
  net::Endpoint remote;
  Deframer deframer;
  std::unique_ptr<Session> session;
  bool accepted = false;
  net::TimePoint since;         ///< accepted by the listener
  net::TimePoint last_message;  ///< the last authenticated message
};

Server::Server(net::NetworkStack& stack, const config::Config& config, SessionFactory& sessions, EventSink events)
    : stack_(stack),
      config_(config),
      sessions_(sessions),
      events_(std::move(events)),
      sweep_timer_(stack.clock().make_timer()) {}

Server::~Server() {
  for (const auto& l : udp_) {
    l->socket->on_blocked(nullptr);  // it reports nothing more to a server that is going
    if (flow_ != nullptr) flow_->forget(*l->socket);
  }
}

void Server::emit(Event e) {
  e.time = stack_.clock().now();
  if (events_) events_(e);
}

void Server::start(std::function<void(bool)> done) {
  done_ = std::move(done);
  passive_.assign(config_.listens.size(), {});
  if (config_.listens.empty()) {
    bind_all();
    return;
  }
  resolve_next(0, 0);
}

void Server::resolve_next(std::size_t listen, std::size_t local) {
  if (listen >= config_.listens.size()) {
    bind_all();
    return;
  }
  const config::Listen& l = config_.listens[listen];
  const std::size_t locals = l.locals.empty() ? 1 : l.locals.size();
  if (local >= locals) {
    resolve_next(listen + 1, 0);
    return;
  }
  const std::string host = l.locals.empty() ? "" : l.locals[local];
  const net::ResolveHints hints{
      config::family_hint(l.family), true,
      config::transport_of(l.proto) == config::Transport::udp ? net::SocketType::datagram : net::SocketType::stream};
  resolving_ = stack_.resolve(
      host, std::to_string(l.port), hints, [this, listen, local, host](net::Result<std::vector<net::Endpoint>> r) {
        if (r) {
          passive_[listen].insert(passive_[listen].end(), r->begin(), r->end());
        } else {
          emit({.kind = EventKind::resolve_failed, .error = r.error(), .detail = "local '" + host + "'"});
        }
        resolve_next(listen, local + 1);
      });
}

void Server::bind_all() {
  auto host = stack_.interface_addresses();
  const auto addresses = host ? *host : std::vector<net::InterfaceAddress>{};
  for (std::size_t i = 0; i < config_.listens.size(); ++i) {
    const auto plan = policy::server_bind_plan(config_.listens[i], passive_[i], addresses);
    for (const auto& note : plan.notes) {
      if (note.severity != config::Severity::error) emit({.kind = EventKind::skipped, .detail = note.text});
    }
    for (const auto& s : plan.sockets) {
      if (s.transport == config::Transport::udp)
        open_udp(s.local, s.v6only);
      else
        open_tcp(s.local, s.v6only);
    }
  }
  std::string list;
  for (const auto& l : listening_) list += (list.empty() ? "" : " ") + l.to_string();
  if (listening_.empty()) {
    emit({.kind = EventKind::startup_failed, .detail = "no listening socket could be opened"});
  } else {
    emit({.kind = EventKind::listening, .detail = list});
  }
  if (done_) done_(!listening_.empty());
}

void Server::record_bound(const net::Result<net::Endpoint>& bound, const net::Endpoint& asked,
                          config::Transport transport, bool v6only) {
  const net::Endpoint actual = bound ? *bound : asked;  // the port the kernel chose for port 0
  emit({.kind = EventKind::bind_ok, .endpoint = actual, .transport = transport, .detail = v6only ? "IPV6_V6ONLY" : ""});
  listening_.push_back({actual, transport, v6only});
}

void Server::open_udp(const net::Endpoint& local, bool v6only) {
  auto s = stack_.open_datagram(local.family());
  std::error_code ec = s ? std::error_code{} : s.error();
  if (!ec && local.family() == net::Family::v6) ec = (*s)->set_v6only(v6only);
  if (!ec && config_.fwmark != 0) ec = (*s)->set_mark(config_.fwmark);
  if (!ec) ec = (*s)->bind(local);
  if (ec) {
    emit({.kind = EventKind::bind_failed, .endpoint = local, .transport = config::Transport::udp, .error = ec});
    return;
  }
  record_bound((*s)->local_endpoint(), local, config::Transport::udp, v6only);
  auto l = std::make_unique<UdpListener>();
  l->socket = std::move(*s);
  l->family = local.family();
  // Backpressure (see flow.hpp): every peer on this socket waits while the kernel refuses it.
  l->socket->on_blocked([this, socket = l->socket.get()](bool blocked) {
    if (flow_ != nullptr) flow_->blocked(*socket, blocked);
  });
  udp_.push_back(std::move(l));
  receive(*udp_.back());
}

void Server::receive(UdpListener& l) {
  // A turn's datagrams as one batch (what one recvmmsg brought).
  l.socket->receive_batch(true, [this, &l](std::error_code, std::span<const net::ReceivedDatagram> batch) {
    sessions_.prepare(batch);
    for (const auto& d : batch) {
      if (!d.data.empty() && !(hook_ && hook_(d.from, d.data))) on_datagram(l, d.from, d.to, d.data);
    }
    receive(l);
  });
}

namespace {
/// A session's sender on a listening socket: tunnel traffic leaves at the end of the turn,
/// batched with the rest (see send_soon), from the address the peer reached.
Session::Sender sender(net::DatagramSocket& socket, const net::Endpoint& to, std::shared_ptr<net::Address> source,
                       FlowControl* flow) {
  return Session::Sender::in_place(
      [&socket, to, source = std::move(source), flow](std::size_t capacity, net::Fill fill) {
        socket.send_soon_filled(*source, to, capacity, fill);
        if (flow != nullptr) flow->sent(socket);
      });
}
}  // namespace

void Server::on_datagram(UdpListener& l, const net::Endpoint& from, const net::Address& to,
                         std::span<const std::uint8_t> data) {
  const auto now = stack_.clock().now();
  auto it = l.peers.find(from);
  if (it == l.peers.end()) {
    // A new source: a session on trial, kept only if this message authenticates it.
    auto session = sessions_.create(from, config::Transport::udp);
    auto source = std::make_shared<net::Address>(to);
    session->attach(sender(*l.socket, from, source, flow_));
    const auto reply = session->receive(data);
    for (const auto& m : reply.send) l.socket->send_soon_from(to, from, m);
    if (!reply.authenticated) return;  // its destructor forgets it
    it = l.peers.emplace(from, UdpListener::Peer{std::move(session), now, std::move(source)}).first;
    ++peers_accepted_;
    arm_sweep();
    emit({.kind = EventKind::peer_accepted, .endpoint = from, .transport = config::Transport::udp});
    return;
  }
  auto reply = it->second.session->receive(data);
  if (reply.authenticated) {
    it->second.last_authenticated = now;
    *it->second.source = to;
  }
  for (const auto& m : reply.send) l.socket->send_soon_from(to, from, m);
}

void Server::arm_sweep() {
  if (!sweep_timer_->pending()) sweep_timer_->start(kSweepEvery, [this] { sweep(); });
}

void Server::sweep() {
  const auto now = stack_.clock().now();
  for (auto& l : udp_) {
    std::erase_if(l->peers, [&](auto& e) {
      const bool forget = now - e.second.last_authenticated >= kStalePathIdle && e.second.session->stale();
      if (forget) e.second.session->attach(nullptr);
      return forget;
    });
  }
  std::vector<std::uint64_t> gone;
  for (auto& [id, p] : tcp_peers_) {
    if ((!p->accepted && now - p->since >= kTcpAuthenticateWithin) ||
        (p->accepted && now - p->last_message >= kStalePathIdle && p->session->stale())) {
      gone.push_back(id);
    }
  }
  for (const auto id : gone) drop_tcp(id);
  bool any = !tcp_peers_.empty();
  for (const auto& l : udp_) any = any || !l->peers.empty();
  if (any) arm_sweep();
}

void Server::drop_tcp(std::uint64_t id) {
  auto it = tcp_peers_.find(id);
  if (it == tcp_peers_.end()) return;
  if (!it->second->accepted) --unauthenticated_tcp_;
  it->second->stream->close();
  it->second->session->attach(nullptr);
  tcp_peers_.erase(it);
}

void Server::open_tcp(const net::Endpoint& local, bool v6only) {
  auto l = stack_.listen(local, {v6only, 128});
  if (!l) {
    emit({.kind = EventKind::bind_failed, .endpoint = local, .transport = config::Transport::tcp, .error = l.error()});
    return;
  }
  record_bound((*l)->local_endpoint(), local, config::Transport::tcp, v6only);
  auto t = std::make_unique<TcpListener>();
  t->listener = std::move(*l);
  tcp_.push_back(std::move(t));
  accept(*tcp_.back());
}

void Server::accept(TcpListener& l) {
  l.listener->accept([this, &l](std::error_code ec, std::unique_ptr<net::StreamSocket> s) {
    if (!ec && s) {
      if (unauthenticated_tcp_ >= kMaxUnauthenticatedTcp) {
        s->reset();  // that many strangers already: authenticated peers are not affected
      } else {
        ++unauthenticated_tcp_;
        auto p = std::make_unique<TcpPeer>();
        p->id = next_peer_++;
        p->flow = flow_;
        p->since = stack_.clock().now();
        auto remote = s->remote_endpoint();
        p->remote = remote ? *remote : net::Endpoint{};
        p->stream = std::move(s);
        p->session = sessions_.create(p->remote, config::Transport::tcp);
        p->session->attach(
            Session::Sender::in_place([stream = p->stream.get(), flow = flow_](std::size_t capacity, net::Fill fill) {
              (void)send_framed_filled(*stream, capacity, fill, flow);
            }));
        TcpPeer& ref = *p;
        tcp_peers_[p->id] = std::move(p);
        arm_sweep();
        read(ref);
      }
    }
    accept(l);
  });
}

void Server::read(TcpPeer& p) {
  p.stream->read_some([this, &p](std::error_code ec, std::span<const std::uint8_t> data) {
    const std::uint64_t id = p.id;
    if (ec || data.empty()) {
      drop_tcp(id);  // EOF or error: this peer is gone, nothing else is touched
      return;
    }
    // One reference in the callback (not three): it fits in std::function without an
    // allocation, and this runs for every read of every TCP peer.
    struct {
      TcpPeer& peer;
      std::vector<std::vector<std::uint8_t>> replies;
      bool answered = false;
    } r{p, {}, false};
    const auto bad = p.deframer.feed(data, [&r](std::span<const std::uint8_t> message) {
      auto reply = r.peer.session->receive(message);
      r.answered = r.answered || reply.authenticated;
      for (auto& m : reply.send) r.replies.push_back(std::move(m));
    });
    for (const auto& m : r.replies) (void)send_framed(*p.stream, m, flow_);
    const bool answered = r.answered;
    if (answered) p.last_message = stack_.clock().now();
    if (answered && !p.accepted) {
      p.accepted = true;
      --unauthenticated_tcp_;
      ++peers_accepted_;
      emit({.kind = EventKind::peer_accepted, .endpoint = p.remote, .transport = config::Transport::tcp});
    }
    if (bad) {
      emit({.kind = EventKind::framing_error,
            .endpoint = p.remote,
            .transport = config::Transport::tcp,
            .error = bad,
            .detail = bad.message()});
      drop_tcp(id);
      return;
    }
    read(p);
  });
}

std::size_t Server::paths() const {
  std::size_t n = tcp_peers_.size();
  for (const auto& l : udp_) n += l->peers.size();
  return n;
}

bool Server::open_path(const net::Endpoint& remote, std::unique_ptr<Session> session) {
  for (auto& l : udp_) {
    if (l->family != remote.family()) continue;
    UdpListener& ref = *l;
    if (auto old = l->peers.find(remote); old != l->peers.end()) {
      old->second.session->attach(nullptr);
      l->peers.erase(old);
    }
    auto& peer = l->peers[remote];
    peer.session = std::move(session);
    peer.last_authenticated = stack_.clock().now();
    peer.source = std::make_shared<net::Address>(net::Address::any(ref.family));  // until the peer answers
    arm_sweep();
    peer.session->attach(sender(*ref.socket, remote, peer.source, flow_));
    return true;
  }
  return false;
}

net::DatagramSocket* Server::udp_socket(net::Family family) {
  for (auto& l : udp_) {
    if (l->family == family) return l->socket.get();
  }
  return nullptr;
}

}  // namespace duet::transport
