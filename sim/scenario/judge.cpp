#include "duet/sim/judge.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "duet/net/error.hpp"

namespace duet::sim {

using transport::EventKind;

const std::regex& pings_sentence() {
  static const std::regex r(R"re(^(\S+) pings (\S+)$)re");
  return r;
}

/// What "X logs info|warning|error" matches: the engine's own level of each event (debug
/// steps count as info here, since a scenario has no debug sentences).
config::Severity severity_of(EventKind k) {
  switch (transport::level_of(k)) {
    case transport::EventLevel::error:
      return config::Severity::error;
    case transport::EventLevel::warning:
      return config::Severity::warning;
    default:
      return config::Severity::info;
  }
}

namespace {

// By default from any time: the testbed starts a server a little before the scenario's 0.
const transport::Event* first(const Observed& in, EventKind k, net::TimePoint after = net::TimePoint::min()) {
  for (const auto& s : in.events) {
    if (s.event.kind == k && s.event.time >= after) return &s.event;
  }
  return nullptr;
}

std::string ms(net::Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", net::to_ms(d));
  return buf;
}

bool family_is(const transport::Event& e, const std::string& fam) {
  return fam.empty() || (fam == "IPv4") == e.endpoint->address.is_v4();
}
bool transport_is(const transport::Event& e, const std::string& t) {
  return t.empty() || t == config::to_string(*e.transport);
}

std::string connected_summary(const Observed& in) {
  const auto* c = first(in, EventKind::connected);
  if (!c) {
    std::string last;
    for (const auto& s : in.events) {
      const auto k = s.event.kind;
      if (k == EventKind::attempt_failed || k == EventKind::round_failed || k == EventKind::resolve_failed ||
          k == EventKind::bind_remote_error) {
        last = s.text;
      }
    }
    return "never connected" + (last.empty() ? std::string() : " (last: " + last + ")");
  }
  return "connected to " + c->endpoint->to_string() + "/" + std::string(config::to_string(*c->transport)) + " after " +
         ms(c->time - in.started_at);
}

}  // namespace

void judge_expectations(const Scenario& s_, const std::vector<Observed>& seen, std::vector<ExpectationResult>& out,
                        std::vector<ScenarioError>& errors) {
  auto invalid = [&](int line, const std::string& message) { errors.push_back({s_.file, line, message}); };
  auto instance = [&](const std::string& name) -> const Observed* {
    for (const auto& o : seen) {
      if (o.name == name) return &o;
    }
    return nullptr;
  };
  {
    static const std::regex connects_within(
        R"re(^(\S+) connects within (\S+?)(?: over (IPv4|IPv6))?(?: via (udp|tcp))?$)re");
    static const std::regex connects_after(R"re(^(\S+) connects after at least (\S+?)(?: over (IPv4|IPv6))?$)re");
    static const std::regex connects(R"re(^(\S+) connects(?: over (IPv4|IPv6))?(?: via (udp|tcp))?$)re");
    static const std::regex no_connect(R"re(^(\S+) does not connect$)re");
    static const std::regex ends_connected(R"re(^(\S+) ends connected(?: over (IPv4|IPv6))?$)re");
    static const std::regex listens(R"re(^(\S+) listens on exactly (.+)$)re");
    static const std::regex fails(R"re(^(\S+) fails to start with "(.*)"$)re");
    static const std::regex starts(R"re(^(\S+) starts$)re");
    static const std::regex logs(R"re(^(\S+) logs (info|warning|error) "(.*)"$)re");
    static const std::regex logs_no(R"re(^(\S+) logs no (warnings|errors)$)re");
    static const std::regex never_tries(R"re(^(\S+) never tries (\S+)$)re");
    static const std::regex reconnects(R"re(^(\S+) reconnects within (\S+?) after (\S+?)(?: over (IPv4|IPv6))?$)re");
    static const std::regex binds_nothing(R"re(^(\S+) binds nothing$)re");
    static const std::regex binds_only(R"re(^(\S+) binds only (IPv4|IPv6)$)re");
    static const std::regex receives(R"re(^(\S+) receives (at least )?(\d+) messages?$)re");
    static const std::regex connects_at_most(R"re(^(\S+) connects at most (\d+) times?$)re");
    static const std::regex accepts(R"re(^(\S+) accepts (\d+) peers?$)re");

    for (const auto& x : s_.expectations) {
      ExpectationResult r{x, false, ""};
      std::smatch m;
      const std::string& t = x.text;
      auto need_instance = [&](const std::string& name) -> const Observed* {
        const Observed* in = instance(name);
        if (!in) invalid(x.line, "expectation names unknown instance '" + name + "': " + t);
        return in;
      };
      auto need_duration = [&](const std::string& text) -> std::optional<net::Duration> {
        auto d = parse_duration(text);
        if (!d) invalid(x.line, "'" + text + "' is not a duration in: " + t);
        return d;
      };
      if (std::regex_match(t, m, connects_within)) {
        const Observed* in = need_instance(m[1]);
        auto d = need_duration(m[2]);
        if (!in || !d) continue;
        const auto* c = first(*in, EventKind::connected);
        r.passed = c && c->time - in->started_at <= *d && family_is(*c, m[3]) && transport_is(*c, m[4]);
        r.detail = connected_summary(*in);
      } else if (std::regex_match(t, m, connects_after)) {
        const Observed* in = need_instance(m[1]);
        auto d = need_duration(m[2]);
        if (!in || !d) continue;
        const auto* c = first(*in, EventKind::connected);
        r.passed = c && c->time - in->started_at >= *d && family_is(*c, m[3]);
        r.detail = connected_summary(*in);
      } else if (std::regex_match(t, m, connects)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        const auto* c = first(*in, EventKind::connected);
        r.passed = c && family_is(*c, m[2]) && transport_is(*c, m[3]);
        r.detail = connected_summary(*in);
      } else if (std::regex_match(t, m, no_connect)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        r.passed = first(*in, EventKind::connected) == nullptr;
        r.detail = connected_summary(*in);
      } else if (std::regex_match(t, m, ends_connected)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        const bool up = in->connected_at_end.has_value();
        r.passed = up && (m[2].str().empty() || (m[2] == "IPv4") == in->connected_at_end->address.is_v4());
        r.detail = up ? "connected to " + in->connected_at_end->to_string() : "not connected at the end";
      } else if (std::regex_match(t, m, listens)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        std::istringstream words(m[2].str());
        std::multiset<std::string> want, got(in->listening.begin(), in->listening.end());
        for (std::string w; words >> w;) want.insert(w);
        r.passed = want == got;
        for (const auto& g : in->listening) r.detail += (r.detail.empty() ? "listening on " : " ") + g;
        if (r.detail.empty()) r.detail = "listening on nothing";
      } else if (std::regex_match(t, m, fails)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        std::string all;
        for (const auto& d : in->diagnostics) {
          if (d.severity == config::Severity::error) all += d.message + "\n";
        }
        for (const auto& e : in->events) {
          if (e.event.kind == EventKind::startup_failed) all += e.text + "\n";
        }
        r.passed = in->startup_failed && all.find(m[2].str()) != std::string::npos;
        r.detail = in->startup_failed ? "failed with: " + all : "started fine";
      } else if (std::regex_match(t, m, starts)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        r.passed = in->started && !in->startup_failed;
        r.detail = in->startup_failed ? "failed to start" : "started";
      } else if (std::regex_match(t, m, logs) || std::regex_match(t, m, logs_no)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        const bool none = m.size() == 3;
        const std::string level = none ? (m[2] == "warnings" ? "warning" : "error") : m[2].str();
        const auto sev = level == "error"     ? config::Severity::error
                         : level == "warning" ? config::Severity::warning
                                              : config::Severity::info;
        std::vector<std::string> lines;
        for (const auto& d : in->diagnostics) {
          if (d.severity == sev) lines.push_back(d.message);
        }
        for (const auto& e : in->events) {
          if (severity_of(e.event.kind) == sev) lines.push_back(e.text);
        }
        if (none) {
          r.passed = lines.empty();
          r.detail = lines.empty() ? "" : "logged: " + lines.front();
        } else {
          const std::string want = m[3];
          r.passed = std::any_of(lines.begin(), lines.end(),
                                 [&](const std::string& l) { return l.find(want) != std::string::npos; });
          r.detail =
              lines.empty() ? "nothing at that level" : std::to_string(lines.size()) + " lines, e.g. " + lines.front();
        }
      } else if (std::regex_match(t, m, never_tries)) {
        const Observed* in = need_instance(m[1]);
        auto addr = net::Address::parse(m[2].str());
        if (!addr) invalid(x.line, "'" + m[2].str() + "' is not an address in: " + t);
        if (!in || !addr) continue;
        r.passed = true;
        for (const auto& s : in->events) {
          const auto& e = s.event;
          if (e.kind == EventKind::attempt_started && e.endpoint->address == *addr) {
            r.passed = false;
            r.detail = "tried " + e.endpoint->to_string();
          }
        }
      } else if (std::regex_match(t, m, reconnects)) {
        const Observed* in = need_instance(m[1]);
        auto d = need_duration(m[2]);
        auto after = need_duration(m[3]);
        if (!in || !d || !after) continue;
        const net::TimePoint fault_at(*after);
        const auto* before = first(*in, EventKind::connected);
        // With a family: the first connection over that family (a failover may pass through
        // the other one first).
        const transport::Event* again = nullptr;
        for (const auto& s : in->events) {
          if (s.event.kind == EventKind::connected && s.event.time > fault_at && family_is(s.event, m[4])) {
            again = &s.event;
            break;
          }
        }
        r.passed =
            before && before->time <= fault_at && again && again->time - fault_at <= *d && family_is(*again, m[4]);
        r.detail = !before ? "never connected before the fault"
                   : !again
                       ? "no new connection after the fault"
                       : "reconnected to " + again->endpoint->to_string() + " " + ms(again->time - fault_at) + " after";
      } else if (std::regex_match(t, m, pings_sentence())) {
        const Observed* in = need_instance(m[1]);
        auto to = net::Address::parse(m[2].str());
        if (!in || !to) continue;
        const auto it = in->echo_replies.find(*to);
        const int answered = it == in->echo_replies.end() ? 0 : it->second;
        r.passed = answered > 0;
        r.detail = std::to_string(answered) + " of " + std::to_string(in->pings_sent) + " pings answered" +
                   (in->has_tunnel ? "" : " (no tunnel: the instance has no private-key)");
      } else if (std::regex_match(t, m, binds_nothing) || std::regex_match(t, m, binds_only)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        const bool nothing = m.size() == 2;
        std::set<std::string> families;
        for (const auto& s : in->events) {
          const auto& e = s.event;
          if (e.kind == EventKind::bind_ok) {
            families.insert(std::string(net::to_string(e.endpoint->family())));
            r.detail += (r.detail.empty() ? "bound " : ", ") + e.endpoint->to_string();
          }
        }
        r.passed = nothing ? families.empty() : families == std::set<std::string>{m[2].str()};
        if (r.detail.empty()) r.detail = "bound nothing";
      } else if (std::regex_match(t, m, receives)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        const auto n = std::stoull(m[3]);
        r.passed = m[2].matched ? in->data_received >= n : in->data_received == n;
        r.detail = "received " + std::to_string(in->data_received);
      } else if (std::regex_match(t, m, connects_at_most)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        const auto n =
            static_cast<std::size_t>(std::count_if(in->events.begin(), in->events.end(), [](const Observed::Seen& s) {
              return s.event.kind == EventKind::connected;
            }));
        r.passed = n <= std::stoull(m[2]);
        r.detail = "connected " + std::to_string(n) + " times";
      } else if (std::regex_match(t, m, accepts)) {
        const Observed* in = need_instance(m[1]);
        if (!in) continue;
        const std::size_t peers = in->peers_accepted;
        r.passed = peers == std::stoull(m[2]);
        r.detail = "accepted " + std::to_string(peers);
      } else {
        invalid(x.line, "cannot understand the expectation \"" + t + "\" (see sim/scenarios/README.md)");
        continue;
      }
      out.push_back(std::move(r));
    }
  }
}

}  // namespace duet::sim
