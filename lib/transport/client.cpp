#include "duet/transport/client.hpp"

#include <algorithm>

#include "duet/net/error.hpp"
#include "duet/policy/bind_plan.hpp"
#include "duet/policy/retry.hpp"

namespace duet::transport {

using namespace std::chrono_literals;
using policy::Connector;

namespace {
constexpr net::Duration kHelloInterval = 1s;  // UDP hellos are repeated until answered
// ... and faster in a failover round: the standby's first hello may be lost too, and a
// session waiting for it is a session down.
constexpr net::Duration kFailoverHelloInterval = 250ms;

// Path health. A silence shorter than kMinQuiet is never suspicious (a peer may take that
// long to have something to say); a probe is repeated every probe_interval().
constexpr net::Duration kMinQuiet = 200ms;
constexpr net::Duration kMinProbeInterval = 80ms;
constexpr net::Duration kUnmeasuredRto = 100ms;  // before the first round-trip sample
// Moving back: the first check of the path left behind, growing by half each time it fails.
constexpr net::Duration kFailbackFirst = 2s;
constexpr net::Duration kFailbackMax = 10s;
constexpr net::Duration kNeverWorkedMax = 60s;  // a preferred address that lost the race: rarer checks
constexpr net::Duration kFailbackPenaltyMax = 60s;
constexpr net::Duration kFlapWindow = 60s;  // a path moved back to that dies this soon: penalty
// A standby: checked first this long after connecting, then at most once per interval and
// only while the session carries traffic (an idle one costs what its keepalive costs).
// One that answered within kStandbyFresh is moved to at once when the active path dies;
// the move gives up after kMinMoveTimeout (or three of its round trips), then the race.
constexpr net::Duration kFirstStandbyCheck = 1s;
constexpr net::Duration kStandbyCheckInterval = 15s;
constexpr net::Duration kStandbyFresh = 60s;
constexpr net::Duration kMinStandbyCheckTimeout = 1s;
constexpr net::Duration kMinMoveTimeout = 300ms;
constexpr net::Duration kMinCheckTimeout = 1500ms;
constexpr net::Duration kCheckHelloInterval = 500ms;  // three hellos per check: loss does not fail it

std::optional<policy::Hop> hop_for(const SocketFactory& sockets, config::Transport t) {
  auto via = sockets.via(t);
  if (!via) return std::nullopt;
  return policy::Hop{via->host, via->port, via->name};
}
}  // namespace

struct Client::Attempt {
  std::size_t id = 0;
  policy::Candidate candidate;
  std::unique_ptr<Session> session;
  std::unique_ptr<net::DatagramSocket> udp;   // owned
  net::DatagramSocket* shared_udp = nullptr;  // a p2p listening socket, not owned
  std::unique_ptr<net::StreamSocket> tcp;
  Deframer deframer;
  std::unique_ptr<net::Timer> hello_timer;
  bool tcp_connected = false;
  bool nudged = false;        ///< the hello was repeated early because the peer spoke first
  net::TimePoint hello_at{};  ///< when the first hello went
  int hellos = 0;             ///< how many went (one: its answer times the path)
  net::Duration hello_interval = kHelloInterval;
  /// What a TCP attempt sends once connected when it is not a hello: a standby's check, or
  /// a move's keepalive (the stream exists only then).
  std::vector<std::vector<std::uint8_t>> opening;
  FlowControl* flow = nullptr;  ///< told when the stream or socket is too full (see flow.hpp)

  Attempt() = default;
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;
  ~Attempt() {
    if (flow != nullptr && tcp) flow->forget(*tcp);
    if (flow != nullptr && udp) flow->forget(*udp);
  }

  net::DatagramSocket* datagram() { return udp ? udp.get() : shared_udp; }
  /// Tunnel traffic and keepalives: batched with the rest of this turn (see send_soon).
  void send(std::span<const std::uint8_t> m) {
    if (auto* d = datagram()) {
      d->send_soon(candidate.endpoint, m);
      if (flow != nullptr) flow->sent(*d);
    } else if (tcp && tcp_connected) {
      (void)send_framed(*tcp, m, flow);
    }
  }
  /// send() of the message `fill` writes in place (see Session::Sender).
  void send_filled(std::size_t capacity, net::Fill fill) {
    if (auto* d = datagram()) {
      d->send_soon_filled(net::Address::any(d->family()), candidate.endpoint, capacity, fill);
      if (flow != nullptr) flow->sent(*d);
    } else if (tcp && tcp_connected) {
      (void)send_framed_filled(*tcp, capacity, fill, flow);
    }
  }
};

Client::Client(net::NetworkStack& stack, SocketFactory& sockets, const config::Config& config, SessionFactory& sessions,
               EventSink events, Server* shared)
    : stack_(stack),
      sockets_(sockets),
      config_(config),
      sessions_(sessions),
      events_(std::move(events)),
      shared_(shared),
      race_timer_(stack.clock().make_timer()),
      keepalive_timer_(stack.clock().make_timer()),
      retry_timer_(stack.clock().make_timer()),
      health_timer_(stack.clock().make_timer()),
      failback_timer_(stack.clock().make_timer()),
      failback_first_(kFailbackFirst),
      standby_timer_(stack.clock().make_timer()),
      check_timer_(stack.clock().make_timer()),
      move_timer_(stack.clock().make_timer()) {
  if (shared_)
    shared_->set_datagram_hook(
        [this](const net::Endpoint& from, std::span<const std::uint8_t> d) { return offer(from, d); });
}

Client::~Client() {
  if (shared_) shared_->set_datagram_hook(nullptr);
}

void Client::emit(Event e) {
  e.time = stack_.clock().now();
  if (events_) events_(e);
}

// From the loop, never from inside start(): a daemon is still setting up around it.
void Client::start() {
  retry_timer_->start(net::Duration{0}, [this] { begin_round(); });
}

bool Client::connected() const { return active_ != nullptr; }
std::optional<net::Endpoint> Client::remote() const {
  return active_ ? std::optional(active_->candidate.endpoint) : std::nullopt;
}
std::optional<config::Transport> Client::transport() const {
  return active_ ? std::optional(active_->candidate.transport) : std::nullopt;
}

bool Client::send(std::span<const std::uint8_t> message) {
  if (!active_) return false;
  active_->send(message);
  return true;
}

const config::Connection& Client::block() const {
  return config_.connections[connector_ ? connector_->block() : active_block_];
}

void Client::begin_round() {
  ++generation_;
  attempts_.clear();
  lookups_.clear();
  round_started_ = stack_.clock().now();
  first_tried_.reset();
  const bool from_cache = use_cache_;
  use_cache_ = false;
  connector_ = std::make_unique<Connector>(Connector::Settings{
      .config = &config_,
      .tcp_proxy = hop_for(sockets_, config::Transport::tcp),
      .udp_proxy = hop_for(sockets_, config::Transport::udp),
      .sort = [this](const std::string& name,
                     std::vector<net::Endpoint> e) { return stack_.sort_destinations(name, std::move(e)); },
      .shuffle = config_.remote_random ? stack_.random() : 0,
      // After a failover the address that died goes last: the standby answers first.
      .last_resort = avoid_ ? std::optional(avoid_->endpoint) : std::nullopt});
  auto outputs = connector_->start(stack_.clock().now());
  if (!from_cache) return carry_out(std::move(outputs));
  // A failover: the addresses are those of a minute ago, and asking again would cost the
  // lookup's time (or its timeout) before the standby is tried. Answer from the last
  // lookup what it answered; a round that fails resolves afresh.
  std::vector<std::pair<std::size_t, std::vector<net::Endpoint>>> known;
  std::erase_if(outputs, [&](const Connector::Output& o) {
    const auto* r = std::get_if<Connector::Resolve>(&o);
    if (r == nullptr) return false;
    auto it = answers_.find({r->host, r->port, r->family, r->transport});
    if (it == answers_.end()) return false;
    known.emplace_back(r->query, it->second);
    return true;
  });
  const auto generation = generation_;
  carry_out(std::move(outputs));
  for (auto& [query, endpoints] : known) {
    if (generation != generation_ || !connector_) return;
    carry_out(connector_->on_resolved(query, std::move(endpoints), stack_.clock().now()));
  }
}

void Client::carry_out(Connector::Outputs outputs) {
  const auto generation = generation_;
  for (auto& o : outputs) {
    if (generation != generation_) return;  // a step below began a new round
    if (auto* r = std::get_if<Connector::Resolve>(&o)) {
      const std::size_t query = r->query;
      auto key = std::make_tuple(r->host, r->port, r->family, r->transport);
      lookups_[query] =
          stack_.resolve(r->host, std::to_string(r->port),
                         {r->family, false,
                          r->transport == config::Transport::udp ? net::SocketType::datagram : net::SocketType::stream},
                         [this, query, generation, key](net::Result<std::vector<net::Endpoint>> answer) {
                           if (generation != generation_ || !connector_) return;
                           lookups_.erase(query);
                           if (answer && !answer->empty()) answers_[key] = *answer;
                           carry_out(connector_->on_resolved(query, answer, stack_.clock().now()));
                         });
    } else if (auto* c = std::get_if<Connector::CancelResolve>(&o)) {
      lookups_.erase(c->query);
    } else if (auto* s = std::get_if<Connector::Start>(&o)) {
      begin_attempt(s->attempt, s->candidate);
    } else if (auto* x = std::get_if<Connector::Cancel>(&o)) {
      cancelled(*x);
    } else if (auto* w = std::get_if<Connector::Connected>(&o)) {
      established(w->attempt);
      return;
    } else if (auto* n = std::get_if<Connector::Note>(&o)) {
      note(*n);
    } else if (auto* e = std::get_if<Connector::Exhausted>(&o)) {
      round_failed(e->resolved_any);
      return;
    }
  }
  arm_timer();
}

void Client::note(const Connector::Note& n) {
  using K = Connector::Note::Kind;
  EventKind kind = EventKind::resolving;
  switch (n.kind) {
    case K::resolving:
      kind = EventKind::resolving;
      break;
    case K::resolved:
      kind = EventKind::resolved;
      break;
    case K::resolve_failed:
      kind = EventKind::resolve_failed;
      break;
    case K::bind_remote_warning:
      kind = EventKind::bind_remote_warning;
      break;
    case K::bind_remote_error:
      kind = EventKind::bind_remote_error;
      break;
  }
  emit({.kind = kind, .error = n.error, .detail = n.detail});
}

void Client::arm_timer() {
  if (!connector_ || connector_->finished()) {
    race_timer_->cancel();
    return;
  }
  const auto deadline = connector_->next_deadline();
  if (!deadline) {
    race_timer_->cancel();
    return;
  }
  const auto generation = generation_;
  race_timer_->start(std::max(*deadline - stack_.clock().now(), net::Duration{0}), [this, generation] {
    if (generation != generation_ || !connector_) return;
    carry_out(connector_->on_timer(stack_.clock().now()));
  });
}

void Client::cancelled(const Connector::Cancel& c) {
  auto it = attempts_.find(c.attempt);
  if (it == attempts_.end()) return;
  const Attempt& a = *it->second;
  if (c.why == Connector::Cancel::Why::timed_out || c.why == Connector::Cancel::Why::poll_timeout) {
    emit({.kind = EventKind::attempt_failed,
          .endpoint = a.candidate.endpoint,
          .transport = a.candidate.transport,
          .error = net::errc(std::errc::timed_out),
          .detail = c.detail});
  }
  attempts_.erase(it);
}

void Client::begin_attempt(std::size_t id, const policy::Candidate& candidate) {
  auto a = std::make_unique<Attempt>();
  a->id = id;
  a->flow = flow_;
  a->candidate = candidate;
  a->session = sessions_.create(candidate.endpoint, candidate.transport);
  if (avoid_) a->hello_interval = kFailoverHelloInterval;
  if (!first_tried_) first_tried_ = candidate;
  Attempt& ref = *a;
  attempts_[id] = std::move(a);
  emit({.kind = EventKind::attempt_started,
        .endpoint = ref.candidate.endpoint,
        .transport = ref.candidate.transport,
        .detail = ref.candidate.via_host.empty()
                      ? ""
                      : "via proxy to " + ref.candidate.via_host + ":" + std::to_string(ref.candidate.via_port)});
  if (ref.candidate.transport == config::Transport::udp)
    begin_udp(ref);
  else
    begin_tcp(ref);
}

void Client::attempt_failed(Attempt& a, std::error_code ec, const std::string& why) {
  const std::size_t id = a.id;
  if (&a == check_.get()) {
    stack_.clock().post([this, id] { standby_checked(id, false); });
    return;
  }
  if (&a == move_.get()) {
    stack_.clock().post([this, id] { move_over(id, false); });
    return;
  }
  if (&a == trial_.get()) {
    stack_.clock().post([this, id, ec, why] {
      if (!trial_ || trial_->id != id) return;
      emit({.kind = EventKind::path_check,
            .endpoint = trial_->candidate.endpoint,
            .transport = trial_->candidate.transport,
            .error = ec,
            .detail = why});
      trial_over(id);
    });
    return;
  }
  const auto generation = generation_;
  stack_.clock().post([this, id, ec, why, generation] {
    if (generation != generation_ || !connector_ || !attempts_.contains(id)) return;
    const Attempt& at = *attempts_[id];
    emit({.kind = EventKind::attempt_failed,
          .endpoint = at.candidate.endpoint,
          .transport = at.candidate.transport,
          .error = ec,
          .detail = why});
    attempts_.erase(id);
    carry_out(connector_->on_attempt_failed(id, stack_.clock().now()));
  });
}

/// The literal local addresses of the <connection> being tried.
static std::vector<net::Endpoint> literal_locals(const config::Connection& c) {
  std::vector<net::Endpoint> out;
  for (const auto& l : c.locals) {
    if (auto a = net::Address::parse(l)) out.push_back({*a, 0});
  }
  return out;
}

std::error_code Client::open_udp(Attempt& a, bool bind) {
  const config::Connection& c = block();
  const net::Family f = a.candidate.endpoint.family();
  if (shared_ != nullptr && a.candidate.via_host.empty()) a.shared_udp = shared_->udp_socket(f);
  if (a.shared_udp != nullptr) return {};
  auto s = a.candidate.via_host.empty() ? sockets_.open_datagram(f, a.candidate.endpoint)
                                        : sockets_.open_datagram_via(f, a.candidate.via_host, a.candidate.via_port);
  if (!s) return s.error();
  a.udp = std::move(*s);
  if (a.flow != nullptr) {
    a.udp->on_blocked([flow = a.flow, socket = a.udp.get()](bool blocked) { flow->blocked(*socket, blocked); });
  }
  if (auto plan = bind ? policy::client_bind(c, config_.mode, f, literal_locals(c)) : std::nullopt) {
    if (f == net::Family::v6) (void)a.udp->set_v6only(true);
    if (auto ec = a.udp->bind(plan->local)) {
      emit({.kind = EventKind::bind_failed, .endpoint = plan->local, .transport = config::Transport::udp, .error = ec});
      return ec;
    }
    auto bound = a.udp->local_endpoint();
    emit({.kind = EventKind::bind_ok, .endpoint = bound ? *bound : plan->local, .transport = config::Transport::udp});
  }
  // Connected, so the kernel reports ICMP errors (refused, prohibited) to us.
  if (auto ec = a.udp->connect(a.candidate.endpoint)) return ec;
  udp_receive(a);
  return {};
}

void Client::begin_udp(Attempt& a) {
  if (auto ec = open_udp(a)) return attempt_failed(a, ec);
  auto hello = a.session->hello();
  if (auto* d = a.datagram()) {
    if (auto ec = d->send_to(a.candidate.endpoint, hello)) return attempt_failed(a, ec);
  }
  a.hello_at = stack_.clock().now();
  a.hellos = 1;
  a.hello_timer = stack_.clock().make_timer();
  // The hellos keep to a grid from the first (hello_at + n intervals) rather than each
  // coming an interval after the last one fired: a late wake-up does not delay the rest.
  // It matters where a round's attempts meet: in a failover round the second attempt starts
  // one interval after the first, so their hellos coincide, and they go in the round's
  // order in both worlds (re-armed from each firing, the kernel's timers drifted by a few
  // microseconds per re-arm and the later attempt, re-armed fewer times, went first).
  struct Resend {
    static void arm(net::Clock& clock, Attempt& at, int n) {
      const auto due = at.hello_at + at.hello_interval * n;
      at.hello_timer->start(std::max(net::Duration{0}, due - clock.now()), [&clock, &at, n] {
        if (auto* d = at.datagram()) (void)d->send_to(at.candidate.endpoint, at.session->hello());
        ++at.hellos;
        arm(clock, at, n + 1);
      });
    }
  };
  Resend::arm(stack_.clock(), a, 1);
}

void Client::udp_receive(Attempt& a) {
  // A turn's datagrams as one batch; what they change in the attempts is deferred (see
  // on_message), so `a` stays what it was until the batch is done.
  a.udp->receive_batch(false, [this, &a](std::error_code ec, std::span<const net::ReceivedDatagram> batch) {
    if (ec) {
      if (&a == active_.get()) return lost(ec, "", true);  // an ICMP error: the path is broken
      return attempt_failed(a, ec);
    }
    sessions_.prepare(batch);
    for (const auto& d : batch) {
      if (d.from == a.candidate.endpoint) on_message(a, d.data);
    }
    udp_receive(a);
  });
}

bool Client::offer(const net::Endpoint& from, std::span<const std::uint8_t> data) {
  if (active_ && active_->shared_udp && active_->candidate.endpoint == from) {
    on_message(*active_, data);
    return true;
  }
  for (auto& [id, a] : attempts_) {
    if (a->shared_udp && a->candidate.endpoint == from) {
      on_message(*a, data);
      return true;
    }
  }
  // A p2p peer's standby is checked, and moved to, through the listening sockets too.
  for (Attempt* a : {trial_.get(), check_.get(), move_.get()}) {
    if (a != nullptr && a->shared_udp && a->candidate.endpoint == from) {
      on_message(*a, data);
      return true;
    }
  }
  return false;
}

void Client::begin_tcp(Attempt& a, bool bind) {
  const config::Connection& c = block();
  const net::Family f = a.candidate.endpoint.family();
  auto s = a.candidate.via_host.empty() ? sockets_.open_stream(f, a.candidate.endpoint)
                                        : sockets_.open_stream_via(f, a.candidate.via_host, a.candidate.via_port);
  if (!s) return attempt_failed(a, s.error());
  a.tcp = std::move(*s);
  const auto plan = bind ? policy::client_bind(c, config_.mode, f, literal_locals(c)) : std::nullopt;
  if (plan) {
    if (auto ec = a.tcp->bind(plan->local)) {
      emit({.kind = EventKind::bind_failed, .endpoint = plan->local, .transport = config::Transport::tcp, .error = ec});
      return attempt_failed(a, ec);
    }
    emit({.kind = EventKind::bind_ok, .endpoint = plan->local, .transport = config::Transport::tcp});
  }
  a.tcp->connect(a.candidate.endpoint, c.connect_timeout, [this, &a](std::error_code ec) {
    if (ec) return attempt_failed(a, ec, a.tcp->error_detail());
    a.tcp_connected = true;
    if (a.opening.empty()) a.opening.push_back(a.session->hello());
    for (const auto& m : a.opening) a.tcp->write(frame(m), [](std::error_code) {});
    a.opening.clear();
    a.hello_at = stack_.clock().now();
    a.hellos = 1;
    tcp_read(a);
  });
}

void Client::tcp_read(Attempt& a) {
  a.tcp->read_some([this, &a](std::error_code ec, std::span<const std::uint8_t> data) {
    if (ec || data.empty()) {
      const std::string why = ec ? "" : "the server closed the connection (EOF)";
      // A reset or an EOF is the peer's doing; a timeout or unreachable is the path's.
      if (&a == active_.get()) return lost(ec, why, ec && ec != std::errc::connection_reset);
      return attempt_failed(a, ec, why);
    }
    const bool is_active = &a == active_.get();
    const auto generation = generation_;
    const auto bad = a.deframer.feed(data, [&](std::span<const std::uint8_t> m) { on_message(a, m); });
    // on_message may have promoted or dropped this attempt; only go on with a live one.
    if (generation != generation_) return;
    if (bad) {
      emit({.kind = EventKind::framing_error,
            .endpoint = a.candidate.endpoint,
            .transport = config::Transport::tcp,
            .error = bad,
            .detail = bad.message()});
      if (is_active || &a == active_.get()) return lost(bad, bad.message(), false);
      return attempt_failed(a, bad, bad.message());
    }
    tcp_read(a);
  });
}

void Client::on_message(Attempt& a, std::span<const std::uint8_t> message) {
  auto reply = a.session->receive(message);
  for (const auto& m : reply.send) a.send(m);
  if (&a == active_.get()) {
    on_heard();
    return;
  }
  if (&a == trial_.get()) {
    if (reply.answers_hello) {
      const std::size_t id = a.id;
      stack_.clock().post([this, id] { promote_trial(id); });
    }
    return;
  }
  if (&a == check_.get()) {
    if (reply.answers_check) {
      const std::size_t id = a.id;
      stack_.clock().post([this, id] { standby_checked(id, true); });
    }
    return;
  }
  if (&a == move_.get()) {
    // The peer answered under the keys we kept (or, without usable ones, our handshake).
    if (reply.authenticated || reply.answers_hello || reply.answers_check) {
      const std::size_t id = a.id;
      stack_.clock().post([this, id] { move_over(id, true); });
    }
    return;
  }
  if (!reply.answers_hello && !a.nudged && a.candidate.transport == config::Transport::udp) {
    // The peer spoke on this path, so it is up now: if our hello reached it before it was
    // (p2p peers starting together), say it again at once instead of after a second.
    a.nudged = true;
    ++a.hellos;
    a.send(a.session->hello());
  }
  if (reply.answers_hello && connector_) {
    // Defer to a clean stack: the connector may cancel the attempt we are inside of.
    const auto generation = generation_;
    const std::size_t id = a.id;
    stack_.clock().post([this, id, generation] {
      if (generation != generation_ || !connector_ || !attempts_.contains(id)) return;
      carry_out(connector_->on_attempt_succeeded(id, stack_.clock().now()));
    });
  }
}

void Client::established(std::size_t id) {
  active_ = std::move(attempts_[id]);
  active_block_ = connector_->block();
  known_ = connector_->candidates();
  if (active_->hello_timer) active_->hello_timer->cancel();
  attempts_.clear();
  lookups_.clear();
  connector_.reset();
  race_timer_->cancel();
  failed_rounds_ = 0;
  resolve_failing_since_.reset();
  const auto now = stack_.clock().now();
  watch_path_left();
  activate(now, now - round_started_, "");
}

void Client::watch_path_left() {
  // A failover landed elsewhere than the address that died, or the race was won by another
  // address than the first one tried (its packets were lost, or it is broken): check that
  // one now and then, and move back to it when it answers.
  if (avoid_ && active_->candidate != *avoid_) {
    preferred_ = avoid_;
    preferred_worked_ = true;
    schedule_failback(failback_first_);
  } else if (!avoid_ && first_tried_ && active_->candidate != *first_tried_) {
    preferred_ = first_tried_;
    preferred_worked_ = false;
    schedule_failback(failback_first_);
  }
  first_tried_.reset();
  avoid_.reset();
}

void Client::activate(net::TimePoint now, net::Duration elapsed, std::string detail) {
  ++connections_made_;
  last_received_ = now;
  health_ = {};
  if (active_->hellos == 1) {
    // An upper bound only: the first exchange on a path also pays for neighbour discovery
    // and the handshake's cryptography. The first keepalive's answer replaces it.
    rtt_sample(now - active_->hello_at);
    health_.from_hello = true;
  }
  health_.timing = now;  // the keepalive sent now
  emit({.kind = EventKind::connected,
        .endpoint = active_->candidate.endpoint,
        .transport = active_->candidate.transport,
        .elapsed = elapsed,
        .detail = std::move(detail)});
  active_->session->attach(Session::Sender::in_place([this, a = active_.get()](std::size_t capacity, net::Fill fill) {
    a->send_filled(capacity, fill);
    last_traffic_ = stack_.clock().now();
    on_sent();
  }));
  // A new path has its own standby, checked soon (and then now and then).
  standby_.reset();
  standby_checked_since_connect_ = false;
  standby_timer_->start(kFirstStandbyCheck, [this] { check_standby(); });
  keepalive_tick();  // at once: its answer times the path
}

void Client::keepalive_tick() {
  const config::Connection& c = block();
  const auto now = stack_.clock().now();
  if (now - last_received_ >= c.keepalive_timeout) {
    // A peer that does not answer keepalives (WireGuard) may just have nothing to say: ask
    // it with probes before giving up; seven unanswered ones end the path.
    if (health_.probes == 0) {
      if (!health_.unanswered_since || *health_.unanswered_since > last_received_)
        health_.unanswered_since = last_received_;
      health_check();
    }
    if (health_.probes == 0 && active_) {
      return lost({},
                  "no message for " + std::to_string(static_cast<long long>(net::to_ms(c.keepalive_timeout) / 1000)) +
                      " s (keepalive timeout)",
                  true);
    }
    if (active_) keepalive_timer_->start(c.keepalive_interval, [this] { keepalive_tick(); });
    return;
  }
  // A keepalive the peer answers starts a silence that path health watches; one it does
  // not (WireGuard's peers, p2p peers) leaves that to the traffic and to the timeout.
  const bool answered = active_->session->keepalive_answered();
  if (answered && !health_.unanswered_since && !health_.timing) health_.timing = now;  // its answer times the path
  active_->send(active_->session->keepalive());
  if (answered) on_sent();
  keepalive_timer_->start(std::min(c.keepalive_interval, c.keepalive_timeout - (now - last_received_)),
                          [this] { keepalive_tick(); });
}

void Client::lost(std::error_code ec, const std::string& why, bool demote) {
  const net::Endpoint remote = active_->candidate.endpoint;
  const auto transport = active_->candidate.transport;
  const auto now = stack_.clock().now();
  emit({.kind = EventKind::disconnected, .endpoint = remote, .transport = transport, .error = ec, .detail = why});
  keepalive_timer_->cancel();
  health_timer_->cancel();
  failback_timer_->cancel();
  active_->session->attach(nullptr);
  // A path moved back to that dies soon after: the next move back waits longer.
  if (moved_back_at_ && now - *moved_back_at_ < kFlapWindow)
    failback_first_ = std::min(failback_first_ * 2, kFailbackPenaltyMax);
  moved_back_at_.reset();
  if (demote)
    avoid_ = active_->candidate;
  else
    avoid_.reset();
  use_cache_ = demote;
  preferred_.reset();
  standby_timer_->cancel();
  check_timer_->cancel();
  lost_at_ = now;
  // The socket may be the one whose callback we are in: let go of it on a clean stack.
  stack_.clock().post([dead = std::shared_ptr<Attempt>(std::move(active_)),
                       trial = std::shared_ptr<Attempt>(std::move(trial_)),
                       check = std::shared_ptr<Attempt>(std::move(check_))] {});
  // A standby that answered lately: go there at once, keeping the tunnel keys; the race
  // runs only if it does not answer either.
  if (demote && move_to_standby(why)) return;
  stack_.clock().post([this, demote] { reconnect(demote); });
}

void Client::reconnect(bool demote) {
  emit({.kind = EventKind::reconnecting,
        .detail = demote ? "trying the other addresses of the last lookup, this one last"
                         : "resolving again and walking the list again"});
  begin_round();
}

// --- path health ------------------------------------------------------------------------

void Client::on_sent() {
  if (health_.unanswered_since) return;
  health_.unanswered_since = stack_.clock().now();
  if (!health_timer_->pending()) health_timer_->start(quiet_deadline(), [this] { health_check(); });
}

void Client::on_heard() {
  const auto now = stack_.clock().now();
  last_received_ = now;
  if (health_.timing) rtt_sample(now - *health_.timing);
  health_.timing.reset();
  health_.unanswered_since.reset();
  health_.probes = 0;
}

void Client::rtt_sample(net::Duration r) {
  if (health_.from_hello) {
    // The keepalive timed at connection may not be answered (WireGuard, p2p): then the
    // next message heard is no answer, and a late one would inflate every deadline (seen:
    // 2.8 s, making a p2p peer wait 5.6 s before its first probe). Below the hello's
    // bound it is a measurement of the path itself: start from it.
    if (r > health_.srtt) return;
    health_.from_hello = false;
    health_.srtt = {};
  }
  if (health_.srtt.count() == 0) {
    health_.srtt = r;
    health_.rttvar = r / 2;
  } else {
    const auto err = health_.srtt > r ? health_.srtt - r : r - health_.srtt;
    health_.rttvar = (3 * health_.rttvar + err) / 4;
    health_.srtt = (7 * health_.srtt + r) / 8;
  }
}

net::Duration Client::rto() const {
  if (health_.srtt.count() == 0) return kUnmeasuredRto;
  return health_.srtt + std::max<net::Duration>(4 * health_.rttvar, 10ms);
}
net::Duration Client::quiet_deadline() const { return std::max<net::Duration>(kMinQuiet, 2 * rto()); }
net::Duration Client::probe_interval() const { return std::max<net::Duration>(kMinProbeInterval, rto()); }

void Client::health_check() {
  if (!active_ || !health_.unanswered_since) return;
  const auto now = stack_.clock().now();
  if (health_.probes == 0) {
    const auto due = *health_.unanswered_since + quiet_deadline();
    if (now < due) return health_timer_->start(due - now, [this] { health_check(); });
  } else if (flow_ != nullptr && active_->tcp && flow_->congested() && flow_->progress() != health_.progress) {
    // A full stream that keeps draining is slow, not dead: the probe waits behind the data.
    health_.progress = flow_->progress();
    return health_timer_->start(probe_interval(), [this] { health_check(); });
  } else if (health_.probes >= kProbes) {
    ++paths_dead_;
    return lost(net::errc(std::errc::timed_out),
                "path silent: nothing heard " +
                    std::to_string(static_cast<long long>(net::to_ms(now - *health_.unanswered_since))) +
                    " ms after sending, " + std::to_string(kProbes) + " probes unanswered",
                true);
  }
  auto probe = active_->session->probe();
  if (probe.empty()) return;  // this session cannot probe: keepalive silence decides
  if (health_.probes == 0) {
    health_.timing = now;
    emit({.kind = EventKind::probing,
          .endpoint = active_->candidate.endpoint,
          .transport = active_->candidate.transport,
          .detail = "nothing heard " +
                    std::to_string(static_cast<long long>(net::to_ms(now - *health_.unanswered_since))) +
                    " ms after sending; probing the path"});
  } else {
    health_.timing.reset();  // which probe an answer is for is unknown (Karn)
  }
  ++health_.probes;
  ++probes_sent_;
  if (flow_ != nullptr) health_.progress = flow_->progress();
  active_->send(probe);
  health_timer_->start(probe_interval(), [this] { health_check(); });
}

// --- a standby, checked ahead of need -------------------------------------------------------

std::optional<policy::Candidate> Client::standby_candidate() const {
  // Not through a proxy: what it reaches is the proxy's business.
  if (!active_ || !active_->candidate.via_host.empty()) return std::nullopt;
  // Another address of the same transport the winning round knew, the other family first
  // (the likelier to survive what broke this one); never the active one.
  const net::Endpoint& now = active_->candidate.endpoint;
  const config::Transport transport = active_->candidate.transport;
  std::optional<policy::Candidate> same_family;
  for (const auto& c : known_) {
    if (c.transport != transport || !c.via_host.empty() || c.endpoint == now) continue;
    if (c.endpoint.family() != now.family()) return c;
    if (!same_family) same_family = c;
  }
  return same_family;
}

void Client::check_standby() {
  if (!active_) return;
  const auto now = stack_.clock().now();
  standby_timer_->start(kStandbyCheckInterval, [this] { check_standby(); });
  if (check_ || move_) return;
  // While a failover's left path is being checked to move back to, that is the check.
  if (preferred_) return;
  // Once after connecting, then only while the session carries traffic.
  if (standby_checked_since_connect_ && now - last_traffic_ > kStandbyCheckInterval) return;
  const auto candidate = standby_candidate();
  if (!candidate) return;
  auto a = std::make_unique<Attempt>();
  a->id = next_trial_id_++;
  a->candidate = *candidate;
  a->session = sessions_.create(candidate->endpoint, candidate->transport);
  auto ask = a->session->path_check();
  if (ask.empty()) {  // this peer cannot be asked without moving the session (WireGuard)
    standby_timer_->cancel();
    return;
  }
  standby_checked_since_connect_ = true;
  check_ = std::move(a);
  const std::size_t id = check_->id;
  check_->hello_at = now;
  ++standby_checks_;
  // From an ephemeral port: the check binds nothing (--bind is for the path in use).
  if (check_->candidate.transport == config::Transport::tcp) {
    // A connection of its own that carries the check, closed once answered: its round
    // trip is timed from the connection (hello_at is set then), as the move will need one.
    check_->opening.push_back(std::move(ask));
    begin_tcp(*check_, false);
  } else if (auto ec = open_udp(*check_, false)) {
    stack_.clock().post([this, id] { standby_checked(id, false); });
    return;
  } else {
    check_->send(ask);
  }
  check_timer_->start(std::max(kMinStandbyCheckTimeout, 4 * rto()), [this, id] { standby_checked(id, false); });
}

void Client::standby_checked(std::size_t id, bool answered) {
  if (!check_ || check_->id != id) return;
  check_timer_->cancel();
  const auto now = stack_.clock().now();
  const policy::Candidate c = check_->candidate;
  if (answered) {
    const bool news = !standby_ || standby_->candidate != c;
    standby_ = Standby{c, now, now - check_->hello_at};
    if (news) {
      emit({.kind = EventKind::standby,
            .endpoint = c.endpoint,
            .transport = c.transport,
            .detail = "answers (" + std::to_string(static_cast<long long>(net::to_ms(standby_->rtt))) +
                      " ms): a failover goes there at once"});
    }
  } else if (standby_ && standby_->candidate == c) {
    standby_.reset();
    emit({.kind = EventKind::standby,
          .endpoint = c.endpoint,
          .transport = c.transport,
          .error = net::errc(std::errc::timed_out),
          .detail = "no longer answers: a failover races the addresses"});
  }
  // Its socket may be the one whose callback we are in.
  stack_.clock().post([gone = std::shared_ptr<Attempt>(std::move(check_))] {});
}

bool Client::move_to_standby(const std::string& why) {
  const auto now = stack_.clock().now();
  if (!standby_ || now - standby_->checked > kStandbyFresh || move_) return false;
  auto a = std::make_unique<Attempt>();
  a->id = next_trial_id_++;
  a->flow = flow_;
  a->candidate = standby_->candidate;
  a->session = sessions_.create(a->candidate.endpoint, a->candidate.transport);
  move_ = std::move(a);
  Attempt& m = *move_;
  const std::size_t id = m.id;
  emit({.kind = EventKind::reconnecting,
        .detail = "moving to the standby " + m.candidate.endpoint.to_string() + " (answered " +
                  std::to_string(static_cast<long long>(net::to_ms(now - standby_->checked))) +
                  " ms ago), keeping the tunnel keys" + (why.empty() ? "" : " after: " + why)});
  // Under the keys the session has: the peer moves its side to where this comes from. With
  // it a path check, which a duet peer answers whatever its role (a p2p peer's session may
  // be the initiator's, and an initiator does not answer keepalives). Over TCP the server
  // follows the session to the new connection as it follows a UDP peer to a new address.
  m.hello_at = now;
  m.hellos = 1;
  m.opening.push_back(m.session->keepalive());
  if (auto ask = m.session->path_check(); !ask.empty()) m.opening.push_back(std::move(ask));
  if (m.candidate.transport == config::Transport::tcp) {
    begin_tcp(m);
  } else if (auto ec = open_udp(m)) {
    stack_.clock().post([this, id] { move_over(id, false); });
    return true;
  } else {
    for (const auto& x : m.opening) m.send(x);
    m.opening.clear();
  }
  // Over TCP the standby's round trip was timed from its connection: add one for this one's.
  const net::Duration rtt = m.candidate.transport == config::Transport::tcp ? 2 * standby_->rtt : standby_->rtt;
  const net::Duration give_up = std::max(kMinMoveTimeout, 3 * rtt);
  move_timer_->start(give_up / 2, [this, id, give_up] {
    if (!move_ || move_->id != id) return;
    ++move_->hellos;
    move_->send(move_->session->keepalive());
    move_timer_->start(give_up - give_up / 2, [this, id] { move_over(id, false); });
  });
  return true;
}

void Client::move_over(std::size_t id, bool answered) {
  if (!move_ || move_->id != id) return;
  move_timer_->cancel();
  const auto now = stack_.clock().now();
  if (!answered) {
    emit({.kind = EventKind::standby,
          .endpoint = move_->candidate.endpoint,
          .transport = move_->candidate.transport,
          .error = net::errc(std::errc::timed_out),
          .detail = "did not answer the move: racing the addresses"});
    standby_.reset();
    // lost() set the round up as a failover's (the last lookup's answers, the dead path last).
    stack_.clock().post([this, gone = std::shared_ptr<Attempt>(std::move(move_))] { reconnect(true); });
    return;
  }
  active_ = std::move(move_);
  standby_moves_ += 1;
  watch_path_left();  // as after a race won elsewhere: the path that died, to move back to
  use_cache_ = false;
  activate(now, now - lost_at_, "moved to the standby, tunnel keys kept");
}

// --- moving back --------------------------------------------------------------------------

void Client::schedule_failback(net::Duration wait) {
  failback_wait_ = wait;
  failback_timer_->start(wait, [this] { try_failback(); });
}

void Client::try_failback() {
  if (!active_ || !preferred_ || trial_) return;
  auto a = std::make_unique<Attempt>();
  a->id = next_trial_id_++;
  a->flow = flow_;
  a->candidate = *preferred_;
  a->session = sessions_.create(a->candidate.endpoint, a->candidate.transport);
  a->hello_interval = kCheckHelloInterval;
  trial_ = std::move(a);
  Attempt& t = *trial_;
  const std::size_t id = t.id;
  emit({.kind = EventKind::path_check,
        .endpoint = t.candidate.endpoint,
        .transport = t.candidate.transport,
        .detail = "checking whether the path left behind works again"});
  failback_timer_->start(std::max(kMinCheckTimeout, 4 * rto()), [this, id] {
    if (!trial_ || trial_->id != id) return;
    emit({.kind = EventKind::path_check,
          .endpoint = trial_->candidate.endpoint,
          .transport = trial_->candidate.transport,
          .error = net::errc(std::errc::timed_out)});
    trial_over(id);
  });
  if (t.candidate.transport == config::Transport::udp)
    begin_udp(t);
  else
    begin_tcp(t);
}

void Client::trial_over(std::size_t id) {
  if (!trial_ || trial_->id != id) return;
  // Its socket may be the one whose callback we are in.
  stack_.clock().post([gone = std::shared_ptr<Attempt>(std::move(trial_))] {});
  if (!preferred_ || !active_) return;
  const auto next =
      std::min<net::Duration>(failback_wait_ + failback_wait_ / 2, preferred_worked_ ? kFailbackMax : kNeverWorkedMax);
  schedule_failback(std::max(next, failback_first_));
}

void Client::promote_trial(std::size_t id) {
  if (!trial_ || trial_->id != id || !active_) return;
  const auto now = stack_.clock().now();
  failback_timer_->cancel();
  health_timer_->cancel();
  active_->session->attach(nullptr);
  std::shared_ptr<Attempt> old(std::move(active_));
  active_ = std::move(trial_);
  if (active_->hello_timer) active_->hello_timer->cancel();
  preferred_.reset();
  moved_back_at_ = now;
  ++moves_back_;
  activate(now, now - active_->hello_at,
           "moved back: the path left behind answers again (left " + old->candidate.endpoint.to_string() + ")");
  stack_.clock().post([old] {});
}

void Client::round_failed(bool resolved_any) {
  ++failed_rounds_;
  avoid_.reset();  // the next round is an ordinary one: resolve again, the host's order
  connector_.reset();
  race_timer_->cancel();
  lookups_.clear();
  attempts_.clear();
  const auto now = stack_.clock().now();
  if (resolved_any) {
    resolve_failing_since_.reset();
  } else if (!resolve_failing_since_) {
    resolve_failing_since_ = now;
  }
  if (resolve_failing_since_ && policy::resolve_retry_exhausted(config_, *resolve_failing_since_, now)) {
    gave_up_ = true;
    emit({.kind = EventKind::startup_failed,
          .detail = "no remote could be resolved for " +
                    std::to_string(static_cast<long long>(net::to_ms(*config_.resolv_retry) / 1000)) +
                    " s (resolv-retry); giving up"});
    return;
  }
  const net::Duration wait = policy::retry_wait(config_, failed_rounds_);
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
