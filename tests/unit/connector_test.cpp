// The connector as a pure machine: each test is a table of inputs over time (resolver
// answers as they arrive, attempt outcomes, timers) and the outputs they must produce.
// No sockets, no clock: the times are written in the table.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "duet/config/loader.hpp"
#include "duet/net/error.hpp"
#include "duet/policy/connector.hpp"

using namespace duet;
using namespace std::chrono_literals;
using policy::Connector;

namespace {

std::string show(const Connector::Output& o) {
  if (auto* r = std::get_if<Connector::Resolve>(&o)) {
    return "resolve#" + std::to_string(r->query) + " " + r->host + " " + (r->family == net::Family::v6 ? "AAAA" : "A");
  }
  if (auto* c = std::get_if<Connector::CancelResolve>(&o)) return "forget#" + std::to_string(c->query);
  if (auto* s = std::get_if<Connector::Start>(&o)) {
    std::string t = "start#" + std::to_string(s->attempt) + " " + s->candidate.endpoint.to_string();
    if (!s->candidate.via_host.empty())
      t += " via " + s->candidate.via_host + ":" + std::to_string(s->candidate.via_port);
    return t;
  }
  if (auto* x = std::get_if<Connector::Cancel>(&o)) {
    return "cancel#" + std::to_string(x->attempt) + " " + std::string(policy::to_string(x->why));
  }
  if (auto* w = std::get_if<Connector::Connected>(&o)) return "connected#" + std::to_string(w->attempt);
  if (auto* n = std::get_if<Connector::Note>(&o)) {
    static const char* kinds[] = {"resolving", "resolved", "resolve-failed", "bind-warning", "bind-error"};
    return std::string(kinds[static_cast<int>(n->kind)]) + " " + n->detail +
           (n->error ? " (" + n->error.message() + ")" : "");
  }
  if (auto* e = std::get_if<Connector::Exhausted>(&o))
    return std::string("exhausted") + (e->resolved_any ? "" : " (nothing resolved)");
  return "?";
}

net::Endpoint ep(const char* t) { return *net::Endpoint::parse(t); }

using Input = std::function<Connector::Outputs(Connector&, net::TimePoint)>;
Input start() {
  return [](Connector& c, net::TimePoint t) { return c.start(t); };
}
Input answer(std::size_t q, std::vector<const char*> endpoints) {
  return [q, endpoints](Connector& c, net::TimePoint t) {
    std::vector<net::Endpoint> e;
    for (auto x : endpoints) e.push_back(ep(x));
    return c.on_resolved(q, e, t);
  };
}
Input refuse(std::size_t q, net::ResolveError why) {
  return [q, why](Connector& c, net::TimePoint t) { return c.on_resolved(q, make_error_code(why), t); };
}
Input failed(std::size_t attempt) {
  return [attempt](Connector& c, net::TimePoint t) { return c.on_attempt_failed(attempt, t); };
}
Input won(std::size_t attempt) {
  return [attempt](Connector& c, net::TimePoint t) { return c.on_attempt_succeeded(attempt, t); };
}
/// Time passes up to `t`: the machine's timer fires at every deadline on the way.
Input timer() {
  return [](Connector& c, net::TimePoint t) {
    Connector::Outputs all;
    while (auto d = c.next_deadline()) {
      if (*d > t) break;
      auto out = c.on_timer(*d);
      all.insert(all.end(), out.begin(), out.end());
    }
    return all;
  };
}

struct Step {
  net::Duration at;
  Input input;
  std::vector<std::string> expect;
};

/// Runs a table against a machine for `config_text`; `sort` as the host orders answers.
void play(const std::string& config_text, const std::vector<Step>& steps, Connector::Sort sort = nullptr,
          std::optional<policy::Hop> tcp_proxy = std::nullopt) {
  const auto loaded = config::load_text(config_text, "connector.conf");
  ASSERT_TRUE(loaded.ok()) << config_text;
  Connector c({.config = &loaded.config,
               .tcp_proxy = tcp_proxy,
               .udp_proxy = std::nullopt,
               .sort = std::move(sort),
               .shuffle = 7});
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    const net::TimePoint t(s.at);
    // Deadlines that fall before this input come first, as on a real loop.
    std::vector<std::string> got;
    if (i > 0) {
      for (const auto& o : timer()(c, t - net::Duration(1))) got.push_back(show(o));
    }
    for (const auto& o : s.input(c, t)) got.push_back(show(o));
    EXPECT_EQ(got, s.expect) << "step " << i << " at " << net::to_ms(s.at) << " ms";
  }
}

TEST(Connector, BothFamiliesInOneTurnRaceIPv6FirstAndTheWinnerCancelsTheRest) {
  play("mode client\nremote vpn.test 1194 tcp\n",
       {
           {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test AAAA", "resolve#2 vpn.test A"}},
           {10ms, answer(1, {"[fd00::2]:1194"}), {}},
           {10ms, answer(2, {"198.18.2.2:1194"}), {}},
           {10ms, timer(), {"resolved vpn.test -> [fd00::2]:1194 198.18.2.2:1194", "start#1 [fd00::2]:1194"}},
           // IPv6 is silent: IPv4 starts one attempt delay later, and wins.
           {260ms, timer(), {"start#2 198.18.2.2:1194"}},
           {280ms, won(2), {"cancel#1 another attempt won", "connected#2"}},
       });
}

TEST(Connector, AnAAnswerWaitsFiftyMillisecondsForTheAAAAAnswer) {
  play("mode client\nremote vpn.test\n",
       {
           {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test AAAA", "resolve#2 vpn.test A"}},
           {5ms, answer(2, {"198.18.2.2:1194"}), {}},
           {5ms, timer(), {}},
           // AAAA within the resolution delay: both are taken together, IPv6 first.
           {30ms, answer(1, {"[fd00::2]:1194"}), {}},
           {30ms, timer(), {"resolved vpn.test -> [fd00::2]:1194 198.18.2.2:1194", "start#1 [fd00::2]:1194"}},
       });
}

TEST(Connector, AnAAAALookupThatNeverAnswersCostsTheResolutionDelayOnly) {
  play("mode client\nremote vpn.test\n",
       {
           {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test AAAA", "resolve#2 vpn.test A"}},
           {1ms, answer(2, {"198.18.2.2:1194"}), {}},
           {1ms, timer(), {}},
           {51ms, timer(), {"resolved vpn.test -> 198.18.2.2:1194 (IPv6 still resolving)", "start#1 198.18.2.2:1194"}},
           {70ms, won(1), {"forget#1", "connected#1"}},
       });
}

TEST(Connector, AnALookupThatNeverAnswersDelaysNothing) {
  play("mode client\nremote vpn.test\n",
       {
           {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test AAAA", "resolve#2 vpn.test A"}},
           {1ms, answer(1, {"[fd00::2]:1194"}), {}},
           {1ms, timer(), {"resolved vpn.test -> [fd00::2]:1194 (IPv4 still resolving)", "start#1 [fd00::2]:1194"}},
           {20ms, won(1), {"forget#2", "connected#1"}},
       });
}

TEST(Connector, AFamilyThatFailsIsReportedAndTheOtherIsUsed) {
  play("mode client\nremote vpn.test\n",
       {
           {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test AAAA", "resolve#2 vpn.test A"}},
           {1ms, answer(2, {"198.18.2.2:1194"}), {}},
           {1ms, timer(), {}},
           {51ms, timer(), {"resolved vpn.test -> 198.18.2.2:1194 (IPv6 still resolving)", "start#1 198.18.2.2:1194"}},
           {10s, refuse(1, net::ResolveError::timed_out), {}},
           {10s, timer(), {"resolve-failed vpn.test (AAAA query; IPv4 used) (name resolution timed out)"}},
       });
}

TEST(Connector, ASlowFirstNameDoesNotHoldBackTheNextAndJumpsAheadWhenItAnswers) {
  play("mode client\nremote slow.test\nremote fast.test\nconnect-timeout 10\n",
       {
           {0ms,
            start(),
            {"resolving slow.test", "resolve#1 slow.test AAAA", "resolve#2 slow.test A", "resolving fast.test",
             "resolve#3 fast.test AAAA", "resolve#4 fast.test A"}},
           {1ms, answer(3, {"[fd00::3]:1194", "[fd00::4]:1194"}), {}},
           {1ms, answer(4, {"198.18.3.3:1194"}), {}},
           {1ms,
            timer(),
            {"resolved fast.test -> [fd00::3]:1194 198.18.3.3:1194 [fd00::4]:1194", "start#1 [fd00::3]:1194"}},
           {251ms, timer(), {"start#2 198.18.3.3:1194"}},
           // The first name answers while the race runs: its address goes before fast.test's last.
           {300ms, answer(1, {"[fd00::1]:1194"}), {}},
           {300ms, answer(2, {}), {}},
           {300ms, timer(), {"resolved slow.test -> [fd00::1]:1194"}},
           {501ms, timer(), {"start#3 [fd00::1]:1194"}},
           {751ms, timer(), {"start#4 [fd00::4]:1194"}},
       });
}

TEST(Connector, NamesThatFailCostNothingAndAreNamedWithTheReason) {
  play("mode client\nremote gone.test\nremote vpn.test\n",
       {
           {0ms,
            start(),
            {"resolving gone.test", "resolve#1 gone.test AAAA", "resolve#2 gone.test A", "resolving vpn.test",
             "resolve#3 vpn.test AAAA", "resolve#4 vpn.test A"}},
           {1ms, refuse(1, net::ResolveError::no_such_name), {}},
           {1ms, refuse(2, net::ResolveError::no_such_name), {}},
           {1ms, answer(3, {"[fd00::2]:1194"}), {}},
           {1ms, answer(4, {"198.18.2.2:1194"}), {}},
           {1ms,
            timer(),
            {"resolve-failed gone.test (no such name)", "resolved vpn.test -> [fd00::2]:1194 198.18.2.2:1194",
             "start#1 [fd00::2]:1194"}},
       });
}

TEST(Connector, TheHostsDestinationOrderChoosesTheFirstFamily) {
  // A host whose resolver would put IPv4 first (a local route refuses IPv6, or gai.conf).
  auto v4_first = [](const std::string&, std::vector<net::Endpoint> e) {
    std::stable_partition(e.begin(), e.end(), [](const net::Endpoint& x) { return x.family() == net::Family::v4; });
    return e;
  };
  play("mode client\nremote vpn.test\n",
       {
           {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test AAAA", "resolve#2 vpn.test A"}},
           {1ms, answer(1, {"[fd00::2]:1194"}), {}},
           {1ms, answer(2, {"198.18.2.2:1194"}), {}},
           {1ms, timer(), {"resolved vpn.test -> 198.18.2.2:1194 [fd00::2]:1194", "start#1 198.18.2.2:1194"}},
       },
       v4_first);
}

TEST(Connector, InOrderTriesOneAddressAtATimeUntilItsTimeout) {
  play("mode client\nremote vpn.test\nhappy-eyeballs-delay 0\nconnect-timeout 5\n",
       {
           {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test AAAA", "resolve#2 vpn.test A"}},
           {1ms, answer(1, {"[fd00::2]:1194", "[fd00::3]:1194"}), {}},
           {1ms, answer(2, {"198.18.2.2:1194"}), {}},
           {1ms,
            timer(),
            {"resolved vpn.test -> [fd00::2]:1194 [fd00::3]:1194 198.18.2.2:1194", "start#1 [fd00::2]:1194"}},
           {2s, timer(), {}},
           {5001ms, timer(), {"cancel#1 connect-timeout", "start#2 [fd00::3]:1194"}},
           {5100ms, failed(2), {"start#3 198.18.2.2:1194"}},
       });
}

// Racing off with the default timeouts (connect-timeout and server-poll-timeout both
// 120 s): the block's time is shared by the addresses still to try, so an IPv6 address
// that never answers costs 60 s and IPv4 still gets its turn (before, the block ended
// with the first attempt and the second address was never tried).
TEST(Connector, InOrderWithDefaultTimeoutsSharesTheBlocksTimeAmongItsAddresses) {
  const auto loaded = config::load_text("mode client\nremote vpn.test\nhappy-eyeballs-delay 0\n", "c.conf");
  ASSERT_TRUE(loaded.ok());
  Connector c({.config = &loaded.config, .tcp_proxy = std::nullopt, .udp_proxy = std::nullopt, .shuffle = 7});
  (void)c.start(net::TimePoint{});
  (void)c.on_resolved(1, std::vector<net::Endpoint>{ep("[fd00::2]:1194")}, net::TimePoint{});
  (void)c.on_resolved(2, std::vector<net::Endpoint>{ep("198.18.2.2:1194")}, net::TimePoint{});
  std::vector<std::string> got;
  const net::TimePoint end(120s);
  while (auto d = c.next_deadline()) {
    if (*d > end) break;
    for (const auto& o : c.on_timer(*d)) {
      got.push_back(std::to_string(static_cast<long long>(net::to_ms(d->time_since_epoch()))) + " " + show(o));
      if (const auto* x = std::get_if<Connector::Cancel>(&o)) got.back() += " (" + x->detail + ")";
    }
  }
  const auto has = [&](const std::string& line) { return std::find(got.begin(), got.end(), line) != got.end(); };
  EXPECT_TRUE(has("60000 cancel#1 connect-timeout (its share of server-poll-timeout: 60 s, 2 addresses left)"))
      << ::testing::PrintToString(got);
  EXPECT_TRUE(has("60000 start#2 198.18.2.2:1194")) << "IPv4 gets its turn after 60 s";
}

TEST(Connector, WhenEverythingFailsTheNextConnectionBlockIsTriedThenTheRoundIsOver) {
  play(
      "mode client\n<connection>\nremote 198.18.2.2 1194 udp\n</connection>\n<connection>\nremote fd00::2 443 "
      "tcp\n</connection>\n",
      {
          {0ms, start(), {"resolving 198.18.2.2", "resolved 198.18.2.2 -> 198.18.2.2:1194", "start#1 198.18.2.2:1194"}},
          {5ms, failed(1), {"resolving fd00::2", "resolved fd00::2 -> [fd00::2]:443", "start#2 [fd00::2]:443"}},
          {9ms, failed(2), {"exhausted"}},
      });
}

TEST(Connector, ServerPollTimeoutEndsABlockWithItsAttemptsRunning) {
  play(
      "mode client\nserver-poll-timeout 2\n<connection>\nremote 198.18.2.2\n</connection>\n<connection>\nremote "
      "fd00::2\n</connection>\n",
      {
          {0ms, start(), {"resolving 198.18.2.2", "resolved 198.18.2.2 -> 198.18.2.2:1194", "start#1 198.18.2.2:1194"}},
          {2s,
           timer(),
           {"cancel#1 server-poll-timeout", "resolving fd00::2", "resolved fd00::2 -> [fd00::2]:1194",
            "start#2 [fd00::2]:1194"}},
      });
}

TEST(Connector, NothingResolvedIsSaidWhenTheRoundEnds) {
  play("mode client\nremote gone.test\n",
       {
           {0ms, start(), {"resolving gone.test", "resolve#1 gone.test AAAA", "resolve#2 gone.test A"}},
           {1ms, refuse(1, net::ResolveError::temporary_failure), {}},
           {1ms, refuse(2, net::ResolveError::temporary_failure), {}},
           {1ms,
            timer(),
            {"resolve-failed gone.test (temporary failure in name resolution)", "exhausted (nothing resolved)"}},
       });
}

TEST(Connector, ABindToOneFamilyNeverTriesTheOtherAndSaysSo) {
  play("mode client\nbind\nlocal 198.18.1.2\nremote vpn.test\n",
       {
           {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test AAAA", "resolve#2 vpn.test A"}},
           {1ms, answer(1, {"[fd00::2]:1194"}), {}},
           {1ms, answer(2, {"198.18.2.2:1194"}), {}},
           {1ms,
            timer(),
            {"resolved vpn.test -> 198.18.2.2:1194",
             "bind-warning vpn.test: bound to IPv4 only: remote IPv6 addresses fd00::2 will not be used (using "
             "198.18.2.2)",
             "start#1 198.18.2.2:1194"}},
       });
  play("mode client\nbind\nlocal 198.18.1.2\nremote v6only.test\n",
       {
           {0ms, start(), {"resolving v6only.test", "resolve#1 v6only.test AAAA", "resolve#2 v6only.test A"}},
           {1ms, answer(1, {"[fd00::2]:1194"}), {}},
           {1ms, refuse(2, net::ResolveError::no_data), {}},
           {1ms,
            timer(),
            {"bind-error v6only.test: bound to IPv4 only, but the remote has only IPv6 addresses (fd00::2): no address "
             "can "
             "be reached",
             "exhausted"}},
       });
}

TEST(Connector, AForcedFamilyAsksOnlyForIt) {
  play("mode client\nipv4\nremote vpn.test\n", {
                                                   {0ms, start(), {"resolving vpn.test", "resolve#1 vpn.test A"}},
                                               });
}

TEST(Connector, ThroughAProxyTheProxyIsResolvedAndRacedAndTheRemoteHandedToIt) {
  play("mode client\nremote vpn.test 443 tcp\n",
       {
           {0ms,
            start(),
            {"resolving http-proxy proxy.test (for vpn.test)", "resolve#1 proxy.test AAAA", "resolve#2 proxy.test A"}},
           {1ms, answer(1, {"[fd00::8]:3128"}), {}},
           {1ms, answer(2, {"198.18.8.8:3128"}), {}},
           {1ms,
            timer(),
            {"resolved proxy.test -> [fd00::8]:3128 198.18.8.8:3128", "start#1 [fd00::8]:3128 via vpn.test:443"}},
       },
       nullptr, policy::Hop{"proxy.test", 3128, "http-proxy"});
}

TEST(Connector, RemoteRandomShufflesWithTheGivenBitsOnly) {
  const auto loaded = config::load_text(
      "mode client\nremote-random\nremote 198.18.0.1\nremote 198.18.0.2\nremote 198.18.0.3\n"
      "remote 198.18.0.4\n",
      "r.conf");
  auto first_start = [&](std::uint64_t bits) {
    Connector c({.config = &loaded.config, .shuffle = bits});
    for (const auto& o : c.start(net::TimePoint{})) {
      if (auto* s = std::get_if<Connector::Start>(&o)) return s->candidate.endpoint.to_string();
    }
    return std::string();
  };
  EXPECT_EQ(first_start(1), first_start(1)) << "the same bits, the same order";
  std::set<std::string> seen;
  for (std::uint64_t bits = 0; bits < 32; ++bits) seen.insert(first_start(bits));
  EXPECT_GT(seen.size(), 2u) << "different bits reach different first remotes";
}

TEST(Connector, LateAndUnknownInputsAreIgnored) {
  const auto loaded = config::load_text("mode client\nremote 198.18.2.2\n", "late.conf");
  Connector c({.config = &loaded.config});
  (void)c.start(net::TimePoint{});
  EXPECT_TRUE(c.on_attempt_failed(99, net::TimePoint{}).empty());
  EXPECT_TRUE(c.on_resolved(99, std::vector<net::Endpoint>{}, net::TimePoint{}).empty());
  (void)c.on_attempt_succeeded(1, net::TimePoint{});
  EXPECT_TRUE(c.finished());
  EXPECT_TRUE(c.on_attempt_failed(1, net::TimePoint{}).empty());
  EXPECT_TRUE(c.on_timer(net::TimePoint(1h)).empty());
  EXPECT_EQ(c.next_deadline(), std::nullopt);
}

}  // namespace
