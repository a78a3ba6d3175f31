#include "duet/transport/client.hpp"

#include <algorithm>

#include "duet/net/error.hpp"
#include "duet/policy/bind_plan.hpp"
#include "duet/policy/compatibility.hpp"
#include "duet/policy/remote_order.hpp"

namespace duet::transport {

using namespace std::chrono_literals;
using HE = policy::HappyEyeballs;

namespace {
constexpr net::Duration kHelloInterval = 1s;  // UDP hellos are repeated until answered
}

struct Client::Attempt {
  std::size_t index = 0;
  Candidate candidate;
  std::unique_ptr<Session> session;
  std::unique_ptr<net::DatagramSocket> udp;  // owned
  net::DatagramSocket* shared_udp = nullptr;  // a p2p listening socket, not owned
  std::unique_ptr<net::StreamSocket> tcp;
  Deframer deframer;
  std::unique_ptr<net::Timer> hello_timer;
  bool tcp_connected = false;
  bool nudged = false;  ///< the hello was repeated early because the peer spoke first

  net::DatagramSocket* datagram() { return udp ? udp.get() : shared_udp; }
  /// Tunnel traffic and keepalives: batched with the rest of this turn (see send_soon).
  void send(std::span<const std::uint8_t> m) {
    if (auto* d = datagram()) {
      d->send_soon(candidate.remote, m);
    } else if (tcp && tcp_connected) {
      (void)send_framed(*tcp, m);
    }
  }
};

Client::Client(net::NetworkStack& stack, SocketFactory& sockets, const config::Config& config,
               SessionFactory& sessions, EventSink events, Server* shared)
    : stack_(stack),
      sockets_(sockets),
      config_(config),
      sessions_(sessions),
      events_(std::move(events)),
      shared_(shared),
      race_timer_(stack.clock().make_timer()),
      keepalive_timer_(stack.clock().make_timer()),
      retry_timer_(stack.clock().make_timer()),
      poll_timer_(stack.clock().make_timer()) {
  if (shared_) shared_->set_datagram_hook([this](const net::Endpoint& from, std::span<const std::uint8_t> d) {
    return offer(from, d);
  });
}

Client::~Client() {
  if (shared_) shared_->set_datagram_hook(nullptr);
}

void Client::emit(Event e) {
  e.time = stack_.clock().now();
  if (events_) events_(e);
}

void Client::start() { begin_round(); }

bool Client::connected() const { return active_ != nullptr; }
std::optional<net::Endpoint> Client::remote() const {
  return active_ ? std::optional(active_->candidate.remote) : std::nullopt;
}
std::optional<config::Transport> Client::transport() const {
  return active_ ? std::optional(active_->candidate.transport) : std::nullopt;
}

bool Client::send(std::span<const std::uint8_t> message) {
  if (!active_) return false;
  active_->send(message);
  return true;
}

void Client::begin_round() {
  ++generation_;
  resolved_any_ = false;
  round_started_ = stack_.clock().now();
  begin_connection(0);
}

void Client::begin_connection(std::size_t index) {
  connection_ = index;
  candidates_.clear();
  locals_.clear();
  attempts_.clear();
  race_.reset();
  race_timer_->cancel();
  poll_timer_->cancel();
  if (connection_ >= config_.connections.size()) {
    connection_failed();
    return;
  }
  // remote-random: a new order of the remotes every round (Fisher-Yates on the stack's
  // random numbers, so the simulator replays it).
  remote_order_.resize(config_.connections[connection_].remotes.size());
  for (std::size_t i = 0; i < remote_order_.size(); ++i) remote_order_[i] = i;
  if (config_.remote_random) {
    for (std::size_t i = remote_order_.size(); i > 1; --i) {
      std::swap(remote_order_[i - 1], remote_order_[stack_.random() % i]);
    }
  }
  // Literal locals need no resolver; names are left to a later version of the engine.
  for (const auto& l : config_.connections[connection_].locals) {
    if (auto a = net::Address::parse(l)) locals_.push_back({*a, 0});
  }
  resolve_remote(0);
}

void Client::resolve_remote(std::size_t r) {
  const config::Connection& c = config_.connections[connection_];
  if (r >= c.remotes.size()) {
    race();
    return;
  }
  const config::Remote& remote = c.remotes[remote_order_[r]];
  const auto transport = config::transport_of(remote.proto);
  // Through a proxy, the proxy's addresses are the ones resolved and raced; the remote's
  // name goes to the proxy as it is (it may resolve names we cannot).
  const auto via = sockets_.via(transport);
  const std::string resolve_host = via ? via->host : remote.host;
  const std::uint16_t resolve_port = via ? via->port : remote.port;
  emit({.kind = EventKind::resolving,
        .detail = via ? via->name + " " + via->host + " (for " + remote.host + ")" : remote.host});
  const auto generation = generation_;
  resolving_ = stack_.resolve(
      resolve_host, std::to_string(resolve_port),
      {config::family_hint(c.family), false,
       transport == config::Transport::udp ? net::SocketType::datagram : net::SocketType::stream},
      [this, r, transport, generation, &remote, &c, via, resolve_host](net::Result<std::vector<net::Endpoint>> res) {
        if (generation != generation_) return;
        if (!res) {
          emit({.kind = EventKind::resolve_failed, .error = res.error(), .detail = resolve_host});
          resolve_remote(r + 1);
          return;
        }
        resolved_any_ = true;
        std::vector<net::Endpoint> usable = *res;
        // Rule 6 at run time, in the words used at load time.
        std::vector<net::Address> addrs;
        for (const auto& e : *res) addrs.push_back(e.address);
        const auto check = policy::check_bind_remote(policy::bound_families(c, config_.mode, locals_), addrs);
        if (check.verdict == policy::Compatibility::error) {
          emit({.kind = EventKind::bind_remote_error, .detail = remote.host + ": " + check.message});
          usable.clear();
        } else if (check.verdict == policy::Compatibility::warning) {
          emit({.kind = EventKind::bind_remote_warning, .detail = remote.host + ": " + check.message});
          std::erase_if(usable, [&](const net::Endpoint& e) {
            return std::find(check.unusable.begin(), check.unusable.end(), e.address) != check.unusable.end();
          });
        }
        const auto order = policy::order_remotes(usable, c.happy_eyeballs_delay);
        std::string list;
        for (const auto& e : order.order) {
          candidates_.push_back({e, transport, via ? remote.host : "", via ? remote.port : std::uint16_t{0}});
          list += " " + e.to_string();
        }
        emit({.kind = EventKind::resolved, .detail = resolve_host + " ->" + list});
        resolve_remote(r + 1);
      });
}

void Client::race() {
  const config::Connection& c = config_.connections[connection_];
  const auto delay = policy::clamp_attempt_delay(c.happy_eyeballs_delay);
  race_ = std::make_unique<HE>(candidates_.size(), delay, c.connect_timeout);
  attempts_.clear();
  attempts_.resize(candidates_.size());
  // server-poll-timeout bounds the whole <connection>, however many addresses are left.
  poll_timer_->start(c.server_poll_timeout, [this] { poll_timed_out(); });
  execute(race_->start(stack_.clock().now()), false);
}

void Client::execute(const std::vector<HE::Action>& actions, bool cancels_are_timeouts) {
  for (const auto& a : actions) {
    switch (a.kind) {
      case HE::Action::start: begin_attempt(a.index); break;
      case HE::Action::cancel:
        if (cancels_are_timeouts && attempts_[a.index]) {
          emit({.kind = EventKind::attempt_failed, .endpoint = candidates_[a.index].remote,
                .transport = candidates_[a.index].transport, .error = net::errc(std::errc::timed_out)});
        }
        attempts_[a.index].reset();
        break;
      case HE::Action::succeeded: established(a.index); return;
      case HE::Action::failed:
        begin_connection(connection_ + 1);
        return;
    }
  }
  arm_race_timer();
}

void Client::poll_timed_out() {
  const config::Connection& c = config_.connections[connection_];
  for (std::size_t i = 0; i < attempts_.size(); ++i) {
    if (!attempts_[i]) continue;
    emit({.kind = EventKind::attempt_failed, .endpoint = candidates_[i].remote, .transport = candidates_[i].transport,
          .error = net::errc(std::errc::timed_out),
          .detail = "server-poll-timeout " +
                    std::to_string(static_cast<long long>(net::to_ms(c.server_poll_timeout) / 1000)) + " s"});
  }
  begin_connection(connection_ + 1);
}

void Client::arm_race_timer() {
  if (!race_) return;
  auto deadline = race_->next_deadline();
  if (!deadline) {
    race_timer_->cancel();
    return;
  }
  const auto generation = generation_;
  race_timer_->start(*deadline - stack_.clock().now(), [this, generation] {
    if (generation != generation_ || !race_) return;
    execute(race_->on_timer(stack_.clock().now()), true);
  });
}

void Client::begin_attempt(std::size_t i) {
  auto a = std::make_unique<Attempt>();
  a->index = i;
  a->candidate = candidates_[i];
  a->session = sessions_.create(a->candidate.remote, a->candidate.transport);
  Attempt& ref = *a;
  attempts_[i] = std::move(a);
  emit({.kind = EventKind::attempt_started, .endpoint = ref.candidate.remote, .transport = ref.candidate.transport,
        .detail = ref.candidate.via_host.empty()
                      ? ""
                      : "via proxy to " + ref.candidate.via_host + ":" + std::to_string(ref.candidate.via_port)});
  if (ref.candidate.transport == config::Transport::udp) begin_udp(ref);
  else begin_tcp(ref);
}

void Client::attempt_failed(std::size_t i, std::error_code ec, const std::string& why) {
  // Reported from inside socket callbacks: let the race machine see it on a clean stack.
  const auto generation = generation_;
  stack_.clock().post([this, i, ec, why, generation] {
    if (generation != generation_ || !race_ || i >= attempts_.size() || !attempts_[i]) return;
    emit({.kind = EventKind::attempt_failed, .endpoint = candidates_[i].remote,
          .transport = candidates_[i].transport, .error = ec, .detail = why});
    attempts_[i].reset();
    execute(race_->on_failure(i, stack_.clock().now()), false);
  });
}

void Client::begin_udp(Attempt& a) {
  const config::Connection& c = config_.connections[connection_];
  const net::Family f = a.candidate.remote.family();
  if (shared_ != nullptr && a.candidate.via_host.empty()) a.shared_udp = shared_->udp_socket(f);
  if (a.shared_udp == nullptr) {
    auto s = a.candidate.via_host.empty() ? sockets_.open_datagram(f, a.candidate.remote)
                                          : sockets_.open_datagram_via(f, a.candidate.via_host, a.candidate.via_port);
    if (!s) return attempt_failed(a.index, s.error());
    a.udp = std::move(*s);
    if (auto plan = policy::client_bind(c, config_.mode, f, locals_)) {
      if (f == net::Family::v6) (void)a.udp->set_v6only(true);
      if (auto ec = a.udp->bind(plan->local)) {
        emit({.kind = EventKind::bind_failed, .endpoint = plan->local, .transport = config::Transport::udp, .error = ec});
        return attempt_failed(a.index, ec);
      }
      auto bound = a.udp->local_endpoint();
      emit({.kind = EventKind::bind_ok, .endpoint = bound ? *bound : plan->local, .transport = config::Transport::udp});
    }
    // Connected, so the kernel reports ICMP errors (refused, prohibited) to us.
    if (auto ec = a.udp->connect(a.candidate.remote)) return attempt_failed(a.index, ec);
    udp_receive(a);
  }
  auto hello = a.session->hello();
  if (auto* d = a.datagram()) {
    if (auto ec = d->send_to(a.candidate.remote, hello)) return attempt_failed(a.index, ec);
  }
  a.hello_timer = stack_.clock().make_timer();
  struct Resend {
    static void arm(Client* self, Attempt& at) {
      at.hello_timer->start(kHelloInterval, [self, &at] {
        if (auto* d = at.datagram()) (void)d->send_to(at.candidate.remote, at.session->hello());
        arm(self, at);
      });
    }
  };
  Resend::arm(this, a);
}

void Client::udp_receive(Attempt& a) {
  a.udp->receive([this, &a](std::error_code ec, const net::Endpoint& from, std::span<const std::uint8_t> data) {
    if (ec) {
      if (&a == active_.get()) return lost(ec, "");
      return attempt_failed(a.index, ec);
    }
    if (from == a.candidate.remote) on_message(a, data);
    udp_receive(a);
  });
}

bool Client::offer(const net::Endpoint& from, std::span<const std::uint8_t> data) {
  if (active_ && active_->shared_udp && active_->candidate.remote == from) {
    on_message(*active_, data);
    return true;
  }
  for (auto& a : attempts_) {
    if (a && a->shared_udp && a->candidate.remote == from) {
      on_message(*a, data);
      return true;
    }
  }
  return false;
}

void Client::begin_tcp(Attempt& a) {
  const config::Connection& c = config_.connections[connection_];
  const net::Family f = a.candidate.remote.family();
  auto s = a.candidate.via_host.empty() ? sockets_.open_stream(f, a.candidate.remote)
                                        : sockets_.open_stream_via(f, a.candidate.via_host, a.candidate.via_port);
  if (!s) return attempt_failed(a.index, s.error());
  a.tcp = std::move(*s);
  if (auto plan = policy::client_bind(c, config_.mode, f, locals_)) {
    if (auto ec = a.tcp->bind(plan->local)) {
      emit({.kind = EventKind::bind_failed, .endpoint = plan->local, .transport = config::Transport::tcp, .error = ec});
      return attempt_failed(a.index, ec);
    }
    emit({.kind = EventKind::bind_ok, .endpoint = plan->local, .transport = config::Transport::tcp});
  }
  a.tcp->connect(a.candidate.remote, c.connect_timeout, [this, &a](std::error_code ec) {
    if (ec) return attempt_failed(a.index, ec, a.tcp->error_detail());
    a.tcp_connected = true;
    a.tcp->write(frame(a.session->hello()), [](std::error_code) {});
    tcp_read(a);
  });
}

void Client::tcp_read(Attempt& a) {
  a.tcp->read_some([this, &a](std::error_code ec, std::span<const std::uint8_t> data) {
    if (ec || data.empty()) {
      const std::string why = ec ? "" : "the server closed the connection (EOF)";
      if (&a == active_.get()) return lost(ec, why);
      return attempt_failed(a.index, ec, why);
    }
    const bool is_active = &a == active_.get();
    const auto generation = generation_;
    const auto bad = a.deframer.feed(data, [&](std::span<const std::uint8_t> m) { on_message(a, m); });
    // on_message may have promoted or dropped this attempt; only go on with a live one.
    if (generation != generation_) return;
    if (bad) {
      emit({.kind = EventKind::framing_error, .endpoint = a.candidate.remote, .transport = config::Transport::tcp,
            .error = bad, .detail = bad.message()});
      if (is_active || &a == active_.get()) return lost(bad, bad.message());
      return attempt_failed(a.index, bad, bad.message());
    }
    tcp_read(a);
  });
}

void Client::on_message(Attempt& a, std::span<const std::uint8_t> message) {
  auto reply = a.session->receive(message);
  for (const auto& m : reply.send) a.send(m);
  if (&a == active_.get()) {
    last_received_ = stack_.clock().now();
    return;
  }
  if (!reply.answers_hello && !a.nudged && a.candidate.transport == config::Transport::udp) {
    // The peer spoke on this path, so it is up now: if our hello reached it before it was
    // (p2p peers starting together), say it again at once instead of after a second.
    a.nudged = true;
    a.send(a.session->hello());
  }
  if (reply.answers_hello && race_) {
    // Defer to a clean stack: the race may destroy the attempt we are inside of.
    const auto generation = generation_;
    const std::size_t i = a.index;
    stack_.clock().post([this, i, generation] {
      if (generation != generation_ || !race_ || i >= attempts_.size() || !attempts_[i]) return;
      execute(race_->on_success(i, stack_.clock().now()), false);
    });
  }
}

void Client::established(std::size_t i) {
  active_ = std::move(attempts_[i]);
  if (active_->hello_timer) active_->hello_timer->cancel();
  attempts_.clear();
  race_.reset();
  race_timer_->cancel();
  poll_timer_->cancel();
  failed_rounds_ = 0;
  ++connections_made_;
  last_received_ = stack_.clock().now();
  emit({.kind = EventKind::connected, .endpoint = active_->candidate.remote,
        .transport = active_->candidate.transport, .elapsed = stack_.clock().now() - round_started_});
  active_->session->attach([a = active_.get()](std::span<const std::uint8_t> m) { a->send(m); });
  keepalive_tick();
}

void Client::keepalive_tick() {
  const config::Connection& c = config_.connections[connection_];
  const auto now = stack_.clock().now();
  if (now - last_received_ >= c.keepalive_timeout) {
    return lost({}, "no message for " + std::to_string(static_cast<long long>(net::to_ms(c.keepalive_timeout) / 1000)) +
                        " s (keepalive timeout)");
  }
  active_->send(active_->session->keepalive());
  keepalive_timer_->start(std::min(c.keepalive_interval, c.keepalive_timeout - (now - last_received_)),
                          [this] { keepalive_tick(); });
}

void Client::lost(std::error_code ec, const std::string& why) {
  const net::Endpoint remote = active_->candidate.remote;
  const auto transport = active_->candidate.transport;
  emit({.kind = EventKind::disconnected, .endpoint = remote, .transport = transport, .error = ec, .detail = why});
  keepalive_timer_->cancel();
  active_->session->attach(nullptr);
  // The socket may be the one whose callback we are in: let go of it on a clean stack.
  stack_.clock().post([this, dead = std::shared_ptr<Attempt>(std::move(active_))] {
    emit({.kind = EventKind::reconnecting, .detail = "resolving again and walking the list again"});
    begin_round();
  });
}

void Client::connection_failed() {
  ++failed_rounds_;
  // resolv-retry: how long names may keep failing to resolve before the client gives up.
  const auto now = stack_.clock().now();
  if (resolved_any_) {
    resolve_failing_since_.reset();
  } else if (!resolve_failing_since_) {
    resolve_failing_since_ = now;
  }
  if (config_.resolv_retry && resolve_failing_since_ && now - *resolve_failing_since_ >= *config_.resolv_retry) {
    gave_up_ = true;
    emit({.kind = EventKind::startup_failed,
          .detail = "no remote could be resolved for " +
                    std::to_string(static_cast<long long>(net::to_ms(*config_.resolv_retry) / 1000)) +
                    " s (resolv-retry); giving up"});
    return;
  }
  const config::Connection& c = config_.connections.empty() ? config::Connection{} : config_.connections.front();
  net::Duration wait = c.connect_retry;
  for (int i = 1; i < failed_rounds_ && wait < c.connect_retry_max; ++i) wait *= 2;
  wait = std::min(wait, c.connect_retry_max);
  emit({.kind = EventKind::round_failed,
        .detail = "retrying in " + std::to_string(static_cast<long long>(net::to_ms(wait))) + " ms"});
  const auto generation = generation_;
  retry_timer_->start(wait, [this, generation] {
    if (generation != generation_) return;
    emit({.kind = EventKind::reconnecting, .detail = "connect-retry"});
    begin_round();
  });
}

}  // namespace duet::transport
