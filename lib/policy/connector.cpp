#include "duet/policy/connector.hpp"

#include <algorithm>
#include <numeric>

#include "duet/net/error.hpp"
#include "duet/policy/address_order.hpp"
#include "duet/policy/bind_plan.hpp"
#include "duet/policy/compatibility.hpp"
#include "duet/policy/review.hpp"

namespace duet::policy {

namespace {

/// SplitMix64: the shuffle's bits from one seed (remote-random), reproducible.
std::uint64_t next_bits(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::vector<net::Endpoint> ipv6_first(const std::string&, std::vector<net::Endpoint> e) {
  std::stable_partition(e.begin(), e.end(), [](const net::Endpoint& x) { return x.family() == net::Family::v6; });
  return e;
}

std::string family_word(net::Family f) { return f == net::Family::v6 ? "IPv6" : "IPv4"; }

}  // namespace

std::string_view to_string(Connector::Cancel::Why why) {
  switch (why) {
    case Connector::Cancel::Why::lost_race:
      return "another attempt won";
    case Connector::Cancel::Why::timed_out:
      return "connect-timeout";
    case Connector::Cancel::Why::poll_timeout:
      return "server-poll-timeout";
    case Connector::Cancel::Why::block_over:
      return "the <connection> is over";
  }
  return "?";
}

Connector::Connector(Settings settings) : s_(std::move(settings)), shuffle_(s_.shuffle) {
  if (!s_.sort) s_.sort = ipv6_first;
}

Connector::Outputs Connector::start(net::TimePoint now) {
  Outputs out;
  begin_block(0, now, out);
  return out;
}

bool Connector::filter_family(net::Family f) const { return bound_.size() == 1 && bound_.front() != f; }

void Connector::begin_block(std::size_t index, net::TimePoint now, Outputs& out) {
  const config::Config& cfg = *s_.config;
  targets_.clear();
  attempts_.clear();
  last_start_.reset();
  gather_ = false;
  if (index >= cfg.connections.size()) {
    finished_ = true;
    out.emplace_back(Exhausted{resolved_any_});
    return;
  }
  block_ = index;
  const config::Connection& c = cfg.connections[index];
  delay_ = attempt_delay(c);
  timeout_ = c.connect_timeout;
  block_deadline_ = now + c.server_poll_timeout;
  // Only literal locals restrict the families (names are left to a later version).
  std::vector<net::Endpoint> locals;
  for (const auto& l : c.locals) {
    if (auto a = net::Address::parse(l)) locals.push_back({*a, 0});
  }
  bound_ = bound_families(c, cfg.mode, locals);
  if (bound_.size() == 2) bound_.clear();

  std::vector<std::size_t> order(c.remotes.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (cfg.remote_random) {  // Fisher-Yates
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[next_bits(shuffle_) % i]);
  }
  for (const std::size_t r : order) {
    const config::Remote& remote = c.remotes[r];
    Target t;
    t.transport = config::transport_of(remote.proto);
    const auto& hop = t.transport == config::Transport::tcp ? s_.tcp_proxy : s_.udp_proxy;
    t.host = hop ? hop->host : remote.host;
    t.port = hop ? hop->port : remote.port;
    if (hop) {
      t.via_host = remote.host;
      t.via_port = remote.port;
    }
    out.emplace_back(Note{
        Note::Kind::resolving, hop ? hop->name + " " + hop->host + " (for " + remote.host + ")" : remote.host, {}});
    const auto only = config::family_hint(c.family);
    if (auto literal = net::Address::parse(t.host)) {
      // A literal is its own answer, for its family; the other family has none.
      for (auto f : {net::Family::v6, net::Family::v4}) {
        Lookup& l = f == net::Family::v6 ? t.v6 : t.v4;
        l.state = Lookup::State::answered;
        if (literal->family() == f && (!only || *only == f)) {
          l.endpoints.push_back({*literal, t.port});
          resolved_any_ = true;
        }
      }
    } else {
      for (auto f : {net::Family::v6, net::Family::v4}) {
        if (only && *only != f) continue;
        Lookup& l = f == net::Family::v6 ? t.v6 : t.v4;
        l.state = Lookup::State::pending;
        l.query = next_query_++;
        out.emplace_back(Resolve{l.query, t.host, t.port, f, t.transport});
      }
    }
    targets_.push_back(std::move(t));
  }
  release(now, out);
  advance(now, false, out);
}

std::vector<Candidate> Connector::candidates() const {
  std::vector<Candidate> out;
  for (const auto& t : targets_) {
    for (const auto& e : t.order) out.push_back(Candidate{e, t.transport, t.via_host, t.via_port});
  }
  return out;
}

Connector::Target* Connector::target_of_query(std::size_t query, Lookup** lookup) {
  for (auto& t : targets_) {
    for (Lookup* l : {&t.v6, &t.v4}) {
      if (l->state == Lookup::State::pending && l->query == query) {
        *lookup = l;
        return &t;
      }
    }
  }
  return nullptr;
}

Connector::Outputs Connector::on_resolved(std::size_t query, const net::Result<std::vector<net::Endpoint>>& answer,
                                          net::TimePoint now) {
  Outputs out;
  Lookup* l = nullptr;
  Target* t = finished_ ? nullptr : target_of_query(query, &l);
  if (t == nullptr) return out;
  const net::Family family = l == &t->v6 ? net::Family::v6 : net::Family::v4;
  if (answer) {
    for (const auto& e : *answer) {
      if (e.family() == family) l->endpoints.push_back(e);
    }
  }
  if (!l->endpoints.empty()) {
    l->state = Lookup::State::answered;
    resolved_any_ = true;
    if (family == net::Family::v4) t->a_at = now;
  } else {
    l->state = Lookup::State::failed;
    l->error = answer ? make_error_code(net::ResolveError::no_data) : answer.error();
  }
  // Decide at on_timer(now): an answer for the other family may arrive in this same turn.
  if (!gather_) {
    gather_ = true;
    gather_at_ = now;
  }
  return out;
}

void Connector::release(net::TimePoint now, Outputs& out) {
  for (auto& t : targets_) {
    const bool v6_ready = !t.v6_released && t.v6.state == Lookup::State::answered;
    const bool v4_ready = !t.v4_released && t.v4.state == Lookup::State::answered &&
                          (t.v6.state != Lookup::State::pending || (t.a_at && now >= *t.a_at + kResolutionDelay));
    if (v6_ready || v4_ready) {
      std::vector<net::Endpoint> fresh;
      if (v6_ready) fresh = t.v6.endpoints;
      if (v4_ready) fresh.insert(fresh.end(), t.v4.endpoints.begin(), t.v4.endpoints.end());
      t.v6_released = t.v6_released || v6_ready;
      t.v4_released = t.v4_released || v4_ready;
      std::erase_if(fresh, [&](const net::Endpoint& e) { return filter_family(e.family()); });
      if (!fresh.empty()) {
        // Both families at once: the host's rules say which goes first. One after the
        // other: the one that came first does, and the other joins it.
        fresh = s_.sort(t.host, std::move(fresh));
        t.sorted.insert(t.sorted.end(), fresh.begin(), fresh.end());
        t.order = delay_.count() != 0 ? interleave_families(t.sorted) : t.sorted;
        std::string list;
        for (const auto& e : t.order) list += " " + e.to_string();
        const bool v6_waiting = t.v6.state == Lookup::State::pending;
        const bool v4_waiting =
            t.v4.state == Lookup::State::pending || (t.v4.state == Lookup::State::answered && !t.v4_released);
        out.emplace_back(
            Note{Note::Kind::resolved,
                 t.host + " ->" + list +
                     (v6_waiting || v4_waiting
                          ? " (" + family_word(v6_waiting ? net::Family::v6 : net::Family::v4) + " still resolving)"
                          : ""),
                 {}});
      }
    }
    settle_notes(t, out);
  }
}

void Connector::settle_notes(Target& t, Outputs& out) {
  using S = Lookup::State;
  if (t.settled_noted || t.v6.state == S::pending || t.v4.state == S::pending) return;
  t.settled_noted = true;
  std::vector<net::Address> all;
  for (const Lookup* l : {&t.v6, &t.v4}) {
    for (const auto& e : l->endpoints) all.push_back(e.address);
  }
  const auto telling = [](const Lookup& l) { return l.state == S::failed && l.error != net::ResolveError::no_data; };
  if (all.empty()) {
    // Say the most telling reason: a timeout or SERVFAIL over "no such record".
    std::error_code why = telling(t.v6)             ? t.v6.error
                          : telling(t.v4)           ? t.v4.error
                          : t.v6.state == S::failed ? t.v6.error
                                                    : t.v4.error;
    if (!why) why = make_error_code(net::ResolveError::no_data);
    out.emplace_back(Note{Note::Kind::resolve_failed, t.host, why});
    return;
  }
  for (const Lookup* l : {&t.v6, &t.v4}) {
    if (telling(*l)) {
      const bool v6 = l == &t.v6;
      out.emplace_back(Note{Note::Kind::resolve_failed,
                            t.host + " (" + (v6 ? "AAAA" : "A") + " query; " + (v6 ? "IPv4" : "IPv6") + " used)",
                            l->error});
    }
  }
  const auto check = check_bind_remote(bound_, all);
  if (check.verdict == Compatibility::error)
    out.emplace_back(Note{Note::Kind::bind_remote_error, t.host + ": " + check.message, {}});
  if (check.verdict == Compatibility::warning) {
    out.emplace_back(Note{Note::Kind::bind_remote_warning, t.host + ": " + check.message, {}});
  }
}

std::size_t Connector::running() const {
  return static_cast<std::size_t>(
      std::count_if(attempts_.begin(), attempts_.end(), [](const Attempt& a) { return a.running; }));
}

bool Connector::resolving() const {
  using S = Lookup::State;
  return std::any_of(targets_.begin(), targets_.end(), [](const Target& t) {
    return t.v6.state == S::pending || t.v4.state == S::pending || (t.v6.state == S::answered && !t.v6_released) ||
           (t.v4.state == S::answered && !t.v4_released);
  });
}

bool Connector::start_next(net::TimePoint now, Outputs& out) {
  // The last resort waits while anything else may still be tried.
  bool others_left = resolving();
  for (const auto& t : targets_) {
    for (const auto& e : t.order) {
      others_left = others_left || (e != s_.last_resort && !t.was_tried(e));
    }
  }
  for (auto& t : targets_) {
    for (const auto& e : t.order) {
      if (t.was_tried(e)) continue;
      if (others_left && e == s_.last_resort) continue;
      t.tried.push_back(e);
      const std::size_t id = next_attempt_++;
      attempts_.push_back({id, now + timeout_, true, {}});
      if (delay_.count() == 0) {
        // In order (racing off), what is left of the block's server-poll-timeout is shared
        // by the addresses still to try: with both timeouts at their default 120 s, one
        // address that never answers would otherwise take the whole block and the next
        // addresses would never be tried.
        std::size_t left = 1;
        for (const auto& other : targets_) {
          for (const auto& x : other.order) {
            if (!other.was_tried(x)) ++left;
          }
        }
        const auto share = (block_deadline_ - now) / static_cast<net::Duration::rep>(left);
        if (left > 1 && now + share < attempts_.back().deadline) {
          attempts_.back().deadline = now + share;
          attempts_.back().deadline_why =
              "its share of server-poll-timeout: " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(share).count()) + " s, " +
              std::to_string(left) + " addresses left";
        }
      }
      last_start_ = now;
      out.emplace_back(Start{id, Candidate{e, t.transport, t.via_host, t.via_port}});
      return true;
    }
  }
  return false;
}

void Connector::advance(net::TimePoint now, bool failure, Outputs& out) {
  if (finished_) return;
  if (failure) {
    // A failure starts the next attempt at once, racing or not (RFC 8305 section 5).
    start_next(now, out);
  } else if (running() == 0) {
    start_next(now, out);
  } else if (delay_.count() != 0 && last_start_ && now >= *last_start_ + delay_) {
    start_next(now, out);
  }
  check_exhausted(now, out);
}

void Connector::check_exhausted(net::TimePoint now, Outputs& out) {
  if (finished_ || resolving() || running() != 0) return;
  for (const auto& t : targets_) {
    for (const auto& e : t.order) {
      if (!t.was_tried(e)) return;
    }
  }
  end_block(Cancel::Why::block_over, now, out);
}

void Connector::end_block(Cancel::Why why, net::TimePoint now, Outputs& out) {
  const auto poll = s_.config->connections[block_].server_poll_timeout;
  const std::string detail = why == Cancel::Why::poll_timeout
                                 ? "server-poll-timeout " +
                                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(poll).count()) +
                                       " s"
                                 : "";
  for (auto& a : attempts_) {
    if (!a.running) continue;
    a.running = false;
    out.emplace_back(Cancel{a.id, why, detail});
  }
  for (const auto& t : targets_) {
    for (const Lookup* l : {&t.v6, &t.v4}) {
      if (l->state == Lookup::State::pending) out.emplace_back(CancelResolve{l->query});
    }
  }
  begin_block(block_ + 1, now, out);
}

Connector::Outputs Connector::on_attempt_failed(std::size_t attempt, net::TimePoint now) {
  Outputs out;
  if (finished_) return out;
  for (auto& a : attempts_) {
    if (a.id != attempt || !a.running) continue;
    a.running = false;
    advance(now, true, out);
    break;
  }
  return out;
}

Connector::Outputs Connector::on_attempt_succeeded(std::size_t attempt, net::TimePoint) {
  Outputs out;
  if (finished_) return out;
  const auto won =
      std::find_if(attempts_.begin(), attempts_.end(), [&](const Attempt& a) { return a.id == attempt && a.running; });
  if (won == attempts_.end()) return out;
  for (auto& a : attempts_) {
    if (a.running && a.id != attempt) {
      a.running = false;
      out.emplace_back(Cancel{a.id, Cancel::Why::lost_race, ""});
    }
  }
  for (const auto& t : targets_) {
    for (const Lookup* l : {&t.v6, &t.v4}) {
      if (l->state == Lookup::State::pending) out.emplace_back(CancelResolve{l->query});
    }
  }
  won->running = false;
  finished_ = true;
  out.emplace_back(Connected{attempt});
  return out;
}

Connector::Outputs Connector::on_timer(net::TimePoint now) {
  Outputs out;
  if (finished_) return out;
  gather_ = false;
  bool timed_out = false;
  for (auto& a : attempts_) {
    if (a.running && a.deadline <= now) {
      a.running = false;
      timed_out = true;
      out.emplace_back(Cancel{a.id, Cancel::Why::timed_out, a.deadline_why});
    }
  }
  if (now >= block_deadline_) {
    end_block(Cancel::Why::poll_timeout, now, out);
    return out;
  }
  release(now, out);
  advance(now, timed_out, out);
  return out;
}

std::optional<net::TimePoint> Connector::next_deadline() const {
  if (finished_) return std::nullopt;
  std::optional<net::TimePoint> t = block_deadline_;
  auto consider = [&t](net::TimePoint x) {
    if (!t || x < *t) t = x;
  };
  if (gather_) consider(gather_at_);
  for (const auto& a : attempts_) {
    if (a.running) consider(a.deadline);
  }
  bool untried = false;
  for (const auto& tg : targets_) {
    if (tg.a_at && !tg.v4_released && tg.v4.state == Lookup::State::answered) consider(*tg.a_at + kResolutionDelay);
    for (const auto& e : tg.order) {
      untried = untried || !tg.was_tried(e);
    }
  }
  if (untried && delay_.count() != 0 && last_start_ && running() > 0) consider(*last_start_ + delay_);
  return t;
}

}  // namespace duet::policy
