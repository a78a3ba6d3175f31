// duet-config check (and duetd --test-config): loads a configuration, resolves what it
// names on this host, and prints the effective options and the socket plan (what would
// be bound, with which IPV6_V6ONLY; which remotes in which order), with every warning and
// error, in the words the daemon uses when it runs.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "duet/config/loader.hpp"
#include "duet/net/error.hpp"
#include "duet/policy/address_order.hpp"
#include "duet/policy/bind_plan.hpp"
#include "duet/policy/compatibility.hpp"
#include "duet/policy/review.hpp"
#include "duet/posix/posix_stack.hpp"

#include "config_check.hpp"

using namespace duet;
using json = nlohmann::ordered_json;

namespace {

constexpr const char* kUsage =
    "usage: duet-config check [--json] [--no-resolve] [FILE] [--directive args...]\n"
    "       duetd --test-config [--json] [--no-resolve] [FILE] [--directive args...]\n"
    "  Loads FILE (same as --config FILE) and the directives after it, and prints the\n"
    "  effective options and the socket plan. Exit status: 0 fine, 1 errors, 2 usage.\n";

/// Resolves names through the kernel's resolver, one at a time, on a private loop.
class Resolver {
public:
  Resolver() : stack_(io_) {}
  net::Result<std::vector<net::Endpoint>> resolve(const std::string& host, std::uint16_t port,
                                                  const net::ResolveHints& hints) {
    std::optional<net::Result<std::vector<net::Endpoint>>> out;
    auto op = stack_.resolve(host, std::to_string(port), hints, [&](auto r) { out = std::move(r); });
    io_.restart();
    // The answer comes from the resolver's thread: keep the loop waiting for it.
    auto waiting = boost::asio::make_work_guard(io_);
    while (!out && io_.run_one()) {
    }
    if (!out) return make_error_code(net::ResolveError::temporary_failure);
    return std::move(*out);
  }
  std::vector<net::InterfaceAddress> host() {
    auto r = stack_.interface_addresses();
    return r ? *r : std::vector<net::InterfaceAddress>{};
  }

private:
  boost::asio::io_context io_;
  posix::PosixStack stack_;
};

json where_json(const config::SourceLocation& w) { return w.known() ? json(w.to_string()) : json(nullptr); }

json diagnostic_json(const config::Diagnostic& d) {
  return {{"severity", std::string(config::to_string(d.severity))},
          {"file", d.where.file},
          {"line", d.where.line},
          {"column", d.where.column},
          {"message", d.message}};
}

std::string family_words(config::FamilyChoice f) {
  switch (f) {
    case config::FamilyChoice::both:
      return "IPv4 and IPv6";
    case config::FamilyChoice::v4:
      return "IPv4 only (--ipv4)";
    case config::FamilyChoice::v6:
      return "IPv6 only (--ipv6)";
  }
  return "?";
}

std::string bind_words(const config::Connection& c, config::Mode mode) {
  if (c.bind == config::BindChoice::nobind) return "no (nobind)";
  if (mode == config::Mode::client && c.bind != config::BindChoice::bind) {
    return "no (mode client implies nobind)";
  }
  std::string port = c.lport_set
                         ? "port " + std::to_string(c.lport)
                         : (mode == config::Mode::client ? "ephemeral port" : "port " + std::to_string(c.lport));
  if (mode == config::Mode::client || c.proto == config::Proto::udp_client || c.proto == config::Proto::tcp_client) {
    return "only the family being connected to, " + port;
  }
  return "every local result, " + port;
}

struct Plan {
  json doc;
  config::Diagnostics extra;  // run-time checks, with the same words as load time
};

Plan make_plan(const config::LoadResult& loaded, Resolver* resolver) {
  const config::Config& cfg = loaded.config;
  Plan plan;
  json& doc = plan.doc;
  doc["mode"] = std::string(config::to_string(cfg.mode));
  doc["files"] = cfg.files;
  const auto host = resolver ? resolver->host() : std::vector<net::InterfaceAddress>{};
  json host_json = json::array();
  for (const auto& a : host) host_json.push_back(a.interface + " " + a.prefix.to_string() + (a.up ? "" : " (down)"));
  doc["host_addresses"] = host_json;

  doc["listens"] = json::array();
  for (const auto& l : cfg.listens) {
    json lj = {{"proto", std::string(config::to_string(l.proto))},
               {"family", std::string(config::to_string(l.family))},
               {"port", l.port},
               {"locals", l.locals},
               {"where", where_json(l.where)}};
    if (resolver) {
      std::vector<net::Endpoint> passive;
      json errors = json::array();
      const auto hints =
          net::ResolveHints{config::family_hint(l.family), true,
                            config::transport_of(l.proto) == config::Transport::udp ? net::SocketType::datagram
                                                                                    : net::SocketType::stream};
      for (const std::string& local : l.locals.empty() ? std::vector<std::string>{""} : l.locals) {
        auto r = resolver->resolve(local, l.port, hints);
        if (r) {
          passive.insert(passive.end(), r->begin(), r->end());
        } else {
          plan.extra.error(l.where, "cannot resolve local '" + local + "': " + r.error().message());
        }
      }
      const auto bp = policy::server_bind_plan(l, passive, host);
      json sockets = json::array();
      for (const auto& s : bp.sockets) {
        sockets.push_back({{"local", s.local.to_string()},
                           {"transport", std::string(config::to_string(s.transport))},
                           {"v6only", s.v6only}});
      }
      lj["sockets"] = sockets;
      for (const auto& n : bp.notes) {
        if (n.severity == config::Severity::error)
          plan.extra.error(l.where, n.text);
        else if (n.severity == config::Severity::warning)
          plan.extra.warning(l.where, n.text);
        else
          plan.extra.info(l.where, n.text);
      }
    }
    doc["listens"].push_back(lj);
  }

  doc["connections"] = json::array();
  for (const auto& c : cfg.connections) {
    const auto delay = policy::attempt_delay(c);
    json cj = {
        {"proto", std::string(config::to_string(c.proto))},
        {"family", std::string(config::to_string(c.family))},
        {"bind", bind_words(c, cfg.mode)},
        {"connect_timeout_s", std::chrono::duration_cast<std::chrono::seconds>(c.connect_timeout).count()},
        {"server_poll_timeout_s", std::chrono::duration_cast<std::chrono::seconds>(c.server_poll_timeout).count()},
        {"connect_retry_s", std::chrono::duration_cast<std::chrono::seconds>(c.connect_retry).count()},
        {"racing", delay.count() != 0},
        {"happy_eyeballs_delay_ms", static_cast<long long>(net::to_ms(delay))},
        {"where", where_json(c.where)}};
    if (cfg.mode == config::Mode::p2p) cj["p2p_role"] = std::string(policy::to_string(policy::p2p_role(c)));
    std::vector<net::Endpoint> locals;
    if (resolver) {
      for (const auto& local : c.locals) {
        auto r = resolver->resolve(local, 0, {config::family_hint(c.family), false, net::SocketType::datagram});
        if (r)
          locals.insert(locals.end(), r->begin(), r->end());
        else
          plan.extra.error(c.where, "cannot resolve local '" + local + "': " + r.error().message());
      }
    }
    const auto bound = policy::bound_families(c, cfg.mode, locals);
    json remotes = json::array();
    for (const auto& r : c.remotes) {
      json rj = {{"host", r.host},
                 {"port", r.port},
                 {"proto", std::string(config::to_string(r.proto))},
                 {"where", where_json(r.where)}};
      if (resolver) {
        auto res =
            resolver->resolve(r.host, r.port,
                              {config::family_hint(c.family), false,
                               config::transport_of(r.proto) == config::Transport::udp ? net::SocketType::datagram
                                                                                       : net::SocketType::stream});
        if (!res) {
          rj["error"] = res.error().message();
          plan.extra.warning(r.where, "cannot resolve '" + r.host + "' now: " + res.error().message() +
                                          " (it will be resolved again at run time)");
        } else {
          const auto ordered = delay.count() != 0 ? policy::interleave_families(*res) : *res;
          json resolved = json::array(), order = json::array();
          for (const auto& e : *res) resolved.push_back(e.to_string());
          for (const auto& e : ordered) order.push_back(e.to_string());
          rj["resolved"] = resolved;
          rj["try_order"] = order;
          // Names are checked against the bind once they resolve, in the load-time words.
          if (!net::Address::parse(r.host)) {
            std::vector<net::Address> addrs;
            for (const auto& e : *res) addrs.push_back(e.address);
            const auto check = policy::check_bind_remote(bound, addrs);
            if (check.verdict == policy::Compatibility::error) plan.extra.error(r.where, check.message);
            if (check.verdict == policy::Compatibility::warning) plan.extra.warning(r.where, check.message);
          }
        }
      }
      remotes.push_back(rj);
    }
    cj["remotes"] = remotes;
    doc["connections"].push_back(cj);
  }
  return plan;
}

void print_human(const config::LoadResult& loaded, const Plan& plan, bool resolved) {
  const json& d = plan.doc;
  std::printf("mode %s; files: ", d["mode"].get<std::string>().c_str());
  for (const auto& f : loaded.config.files) std::printf("%s ", f.c_str());
  std::printf("\n");
  for (const auto& l : d["listens"]) {
    std::printf("listen %s port %d, %s%s\n", l["proto"].get<std::string>().c_str(), l["port"].get<int>(),
                family_words(l["family"] == "ipv4"   ? config::FamilyChoice::v4
                             : l["family"] == "ipv6" ? config::FamilyChoice::v6
                                                     : config::FamilyChoice::both)
                    .c_str(),
                l["where"].is_null() ? "" : (" (" + l["where"].get<std::string>() + ")").c_str());
    if (l.contains("sockets")) {
      for (const auto& s : l["sockets"]) {
        std::printf("  bind %-28s %s%s\n", s["local"].get<std::string>().c_str(),
                    s["transport"].get<std::string>().c_str(), s["v6only"].get<bool>() ? "  IPV6_V6ONLY=1" : "");
      }
    }
  }
  int n = 0;
  for (const auto& c : d["connections"]) {
    std::printf("connection %d: proto %s, %s, bind: %s\n", ++n, c["proto"].get<std::string>().c_str(),
                c["family"].get<std::string>() == "both" ? "IPv4 and IPv6" : c["family"].get<std::string>().c_str(),
                c["bind"].get<std::string>().c_str());
    std::printf(
        "  connect-timeout %lld s per address, server-poll-timeout %lld s for the block, connect-retry %lld s, %s\n",
        c["connect_timeout_s"].get<long long>(), c["server_poll_timeout_s"].get<long long>(),
        c["connect_retry_s"].get<long long>(),
        c["racing"].get<bool>() ? ("Happy Eyeballs: a new attempt every " +
                                   std::to_string(c["happy_eyeballs_delay_ms"].get<long long>()) + " ms")
                                      .c_str()
                                : "no racing: addresses tried strictly in order");
    if (c.contains("p2p_role")) std::printf("  p2p role: %s\n", c["p2p_role"].get<std::string>().c_str());
    for (const auto& r : c["remotes"]) {
      std::printf("  remote %s %d %s", r["host"].get<std::string>().c_str(), r["port"].get<int>(),
                  r["proto"].get<std::string>().c_str());
      if (r.contains("try_order")) {
        std::printf(" -> try:");
        for (const auto& e : r["try_order"]) std::printf(" %s", e.get<std::string>().c_str());
      } else if (r.contains("error")) {
        std::printf(" -> %s", r["error"].get<std::string>().c_str());
      } else if (!resolved) {
        std::printf(" (not resolved: --no-resolve)");
      }
      std::printf("\n");
    }
  }
}

}  // namespace

namespace duet::daemon {

int config_check(std::vector<std::string> args) {
  bool as_json = false;
  bool resolve = true;
  std::vector<std::string> rest;
  bool directives_started = false;
  for (const auto& a : args) {
    // The check's own options may come anywhere; they are not directives.
    if (a == "--json") {
      as_json = true;
    } else if (a == "--no-resolve") {
      resolve = false;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!directives_started && a.rfind("--", 0) != 0) {
      rest.insert(rest.end(), {"--config", a});  // the file comes before the directives
      directives_started = true;
    } else {
      rest.push_back(a);
      directives_started = true;
    }
  }
  const auto loaded = policy::reviewed(config::load_command_line(rest));
  std::unique_ptr<Resolver> resolver;
  if (resolve && loaded.ok()) resolver = std::make_unique<Resolver>();
  Plan plan = loaded.ok() ? make_plan(loaded, resolver.get()) : Plan{};
  config::Diagnostics all = loaded.diagnostics;
  all.append(plan.extra);
  const bool ok = !all.has_errors();
  if (as_json) {
    json out = {{"ok", ok}};
    out["diagnostics"] = json::array();
    for (const auto& d : all.all()) out["diagnostics"].push_back(diagnostic_json(d));
    if (loaded.ok()) out["plan"] = plan.doc;
    std::cout << out.dump(2) << "\n";
  } else {
    if (loaded.ok()) print_human(loaded, plan, resolver != nullptr);
    int errors = 0, warnings = 0;
    for (const auto& d : all.all()) {
      std::fprintf(stderr, "%s\n", d.to_string().c_str());
      errors += d.severity == config::Severity::error;
      warnings += d.severity == config::Severity::warning;
    }
    std::printf("%s: %d error%s, %d warning%s\n", ok ? "ok" : "failed", errors, errors == 1 ? "" : "s", warnings,
                warnings == 1 ? "" : "s");
  }
  return ok ? 0 : 1;
}

}  // namespace duet::daemon
