// Scenario files are TOML (toml++); every error names the file and the line.
#include <toml++/toml.h>

#include <charconv>
#include <cmath>
#include <filesystem>

#include "duet/net/error.hpp"
#include "duet/sim/scenario.hpp"

namespace duet::sim {

std::string ScenarioError::to_string() const {
  return file + (line > 0 ? ":" + std::to_string(line) : "") + ": " + message;
}

std::optional<net::Duration> parse_duration(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0 || i > 24) return std::nullopt;
  double value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc{} || p != text.data() + i || !std::isfinite(value) || value < 0) return std::nullopt;
  const std::string unit = text.substr(i);
  double ns = 0;
  if (unit == "s")
    ns = value * 1e9;
  else if (unit == "ms")
    ns = value * 1e6;
  else if (unit == "us")
    ns = value * 1e3;
  else if (unit == "ns")
    ns = value;
  else if (unit == "min")
    ns = value * 60e9;
  else
    return std::nullopt;
  if (ns > 1e15) return std::nullopt;  // about 11 days of virtual time is plenty
  return net::Duration(static_cast<std::int64_t>(std::llround(ns)));
}

namespace {

class Reader {
public:
  Reader(std::string file, std::vector<ScenarioError>& errors) : file_(std::move(file)), errors_(errors) {}

  void error(const toml::node* n, const std::string& message) {
    errors_.push_back({file_, n ? static_cast<int>(n->source().begin.line) : 0, message});
  }
  int line(const toml::node* n) const { return n ? static_cast<int>(n->source().begin.line) : 0; }

  std::optional<std::string> string(const toml::table& t, const char* key, bool required) {
    const toml::node* n = t.get(key);
    if (!n) {
      if (required) error(&t, std::string("missing '") + key + "'");
      return std::nullopt;
    }
    if (!n->is_string()) {
      error(n, std::string("'") + key + "' must be a string");
      return std::nullopt;
    }
    return n->as_string()->get();
  }

  std::optional<net::Duration> duration(const toml::table& t, const char* key) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_string()) {
      error(n, std::string("'") + key + "' must be a duration string like \"250ms\" or \"2s\"");
      return std::nullopt;
    }
    auto d = parse_duration(n->as_string()->get());
    if (!d)
      error(n, std::string("'") + key + "' = \"" + n->as_string()->get() +
                   "\" is not a duration (e.g. \"250ms\", \"2s\")");
    return d;
  }

  std::optional<double> probability(const toml::table& t, const char* key) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    std::optional<double> v;
    if (n->is_floating_point()) v = n->as_floating_point()->get();
    if (n->is_integer()) v = static_cast<double>(n->as_integer()->get());
    if (!v || *v < 0 || *v > 1) {
      error(n, std::string("'") + key + "' must be a number from 0 to 1");
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::int64_t> integer(const toml::table& t, const char* key, std::int64_t lo, std::int64_t hi) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_integer() || n->as_integer()->get() < lo || n->as_integer()->get() > hi) {
      error(n, std::string("'") + key + "' must be a whole number from " + std::to_string(lo) + " to " +
                   std::to_string(hi));
      return std::nullopt;
    }
    return n->as_integer()->get();
  }

  std::optional<bool> boolean(const toml::table& t, const char* key) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_boolean()) {
      error(n, std::string("'") + key + "' must be true or false");
      return std::nullopt;
    }
    return n->as_boolean()->get();
  }

  void unknown_keys(const toml::table& t, std::initializer_list<const char*> known, const char* what) {
    for (const auto& [k, v] : t) {
      bool ok = false;
      for (const char* x : known) ok = ok || k.str() == x;
      if (!ok) error(&v, std::string("unknown key '") + std::string(k.str()) + "' in " + what);
    }
  }

  const toml::array* array_of_tables(const toml::table& root, const char* key) {
    const toml::node* n = root.get(key);
    if (!n) return nullptr;
    if (!n->is_array_of_tables()) {
      error(n, std::string("'") + key + "' must be written [[" + key + "]]");
      return nullptr;
    }
    return n->as_array();
  }

private:
  std::string file_;
  std::vector<ScenarioError>& errors_;
};

bool split_host_if(const std::string& s, std::string& host, std::string& iface) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  host = s.substr(0, colon);
  iface = s.substr(colon + 1);
  return true;
}

}  // namespace

namespace {

std::optional<toml::table> parse(const std::string& path, std::vector<ScenarioError>& errors) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    errors.push_back({path, static_cast<int>(e.source().begin.line), std::string(e.description())});
    return std::nullopt;
  }
}

/// Hosts, links and DNS: from the scenario itself or from its shared topology file.
void read_world(const toml::table& root, Reader& r, Scenario& s);

}  // namespace

std::optional<Scenario> load_scenario(const std::string& path, std::vector<ScenarioError>& errors) {
  const std::size_t errors_before = errors.size();
  auto parsed = parse(path, errors);
  if (!parsed) return std::nullopt;
  const toml::table& root = *parsed;
  Reader r(path, errors);
  Scenario s;
  s.file = path;
  r.unknown_keys(root,
                 {"name", "duration", "seed", "topology", "host", "link", "dns", "instance", "fault", "send", "expect",
                  "swarm", "simulator_only"},
                 "the scenario");
  s.name = r.string(root, "name", true).value_or(path);
  if (auto d = r.duration(root, "duration")) s.duration = *d;
  if (auto seed = r.integer(root, "seed", 0, INT64_MAX)) s.seed = static_cast<std::uint64_t>(*seed);
  s.simulator_only = r.string(root, "simulator_only", false).value_or("");
  if (auto topo = r.string(root, "topology", false)) {
    const auto topo_path = (std::filesystem::path(path).parent_path() / *topo).string();
    if (auto t = parse(topo_path, errors)) {
      Reader tr(topo_path, errors);
      tr.unknown_keys(*t, {"host", "link", "dns"}, "a topology file");
      read_world(*t, tr, s);
    }
  }
  read_world(root, r, s);

  if (const auto* instances = r.array_of_tables(root, "instance")) {
    for (const auto& node : *instances) {
      const auto& t = *node.as_table();
      r.unknown_keys(t, {"name", "host", "config", "start"}, "[[instance]]");
      ScenarioInstance i;
      i.line = r.line(&t);
      i.name = r.string(t, "name", true).value_or("");
      i.host = r.string(t, "host", true).value_or("");
      if (const toml::node* h = t.get("host")) i.host_line = r.line(h);
      i.config = r.string(t, "config", true).value_or("");
      if (auto d = r.duration(t, "start")) i.start = *d;
      s.instances.push_back(std::move(i));
    }
  }

  static const char* kActions[] = {"route", "unroute", "partition", "heal",           "down",
                                   "up",    "crash",   "restart",   "remove-address", "add-address"};
  if (const auto* faults = r.array_of_tables(root, "fault")) {
    for (const auto& node : *faults) {
      const auto& t = *node.as_table();
      ScenarioFault f;
      f.line = r.line(&t);
      if (auto d = r.duration(t, "at"))
        f.at = *d;
      else
        r.error(&t, "a fault needs at = \"TIME\"");
      f.host = r.string(t, "host", true).value_or("");
      int actions = 0;
      for (const auto& [k, v] : t) {
        const std::string key(k.str());
        if (key == "at" || key == "host") continue;
        bool known = false;
        for (const char* a : kActions) known = known || key == a;
        if (!known) {
          r.error(&v, "unknown fault '" + key +
                          "' (route, unroute, partition, heal, down, up, crash, restart, remove-address, add-address)");
          continue;
        }
        ++actions;
        f.action = key;
        if (v.is_string())
          f.argument = v.as_string()->get();
        else if (!v.is_boolean())
          r.error(&v, "'" + key + "' takes a string (or true for crash/restart)");
      }
      if (actions != 1) r.error(&t, "a fault does exactly one thing");
      s.faults.push_back(std::move(f));
    }
  }

  if (const auto* sends = r.array_of_tables(root, "send")) {
    for (const auto& node : *sends) {
      const auto& t = *node.as_table();
      r.unknown_keys(t, {"at", "instance", "count", "every", "until"}, "[[send]]");
      ScenarioSend x;
      x.line = r.line(&t);
      x.at = r.duration(t, "at").value_or(net::Duration{0});
      x.instance = r.string(t, "instance", true).value_or("");
      x.count = static_cast<int>(r.integer(t, "count", 1, 100000).value_or(0));
      x.every = r.duration(t, "every").value_or(net::Duration{0});
      x.until = r.duration(t, "until");
      if (x.every.count() < 0 || (x.every.count() > 0 && x.every < std::chrono::milliseconds(1)))
        r.error(&t, "'every' must be at least 1ms");
      if (x.until && x.every.count() == 0) r.error(&t, "'until' needs 'every'");
      s.sends.push_back(std::move(x));
    }
  }

  if (const toml::node* expect = root.get("expect")) {
    if (!expect->is_array())
      r.error(expect, "'expect' must be a list of sentences");
    else {
      for (const auto& x : *expect->as_array()) {
        if (!x.is_string())
          r.error(&x, "an expectation must be a sentence in quotes");
        else
          s.expectations.push_back({x.as_string()->get(), r.line(&x)});
      }
    }
  }
  if (s.expectations.empty()) r.error(&root, "a scenario needs at least one expectation (expect = [...])");

  if (const toml::node* sw = root.get("swarm")) {
    if (!sw->is_table())
      r.error(sw, "'swarm' must be a table");
    else {
      const auto& t = *sw->as_table();
      r.unknown_keys(t, {"delay", "jitter", "loss"}, "[swarm]");
      auto range_d = [&](const char* key) -> std::optional<std::pair<net::Duration, net::Duration>> {
        const toml::node* n = t.get(key);
        if (!n) return std::nullopt;
        const auto* a = n->as_array();
        if (!a || a->size() != 2 || !(*a)[0].is_string() || !(*a)[1].is_string()) {
          r.error(n, std::string("swarm ") + key + " must be [\"LOW\", \"HIGH\"]");
          return std::nullopt;
        }
        auto lo = parse_duration((*a)[0].as_string()->get());
        auto hi = parse_duration((*a)[1].as_string()->get());
        if (!lo || !hi || *hi < *lo) {
          r.error(n, std::string("swarm ") + key + " must be two durations, low first");
          return std::nullopt;
        }
        return std::pair{*lo, *hi};
      };
      s.swarm.delay = range_d("delay");
      s.swarm.jitter = range_d("jitter");
      if (const toml::node* n = t.get("loss")) {
        const auto* a = n->as_array();
        if (!a || a->size() != 2 || !(*a)[0].is_number() || !(*a)[1].is_number()) {
          r.error(n, "swarm loss must be [LOW, HIGH]");
        } else {
          s.swarm.loss = std::pair{(*a)[0].value<double>().value_or(0), (*a)[1].value<double>().value_or(0)};
        }
      }
    }
  }
  if (errors.size() != errors_before) return std::nullopt;
  return s;
}

namespace {

void read_world(const toml::table& root, Reader& r, Scenario& s) {
  if (const auto* hosts = r.array_of_tables(root, "host")) {
    for (const auto& node : *hosts) {
      const auto& t = *node.as_table();
      r.unknown_keys(t,
                     {"name", "interfaces", "routes", "forwarding", "bindv6only", "tcp_syn_retries",
                      "icmp_ratelimit_v4_ms", "icmp_ratelimit_v6_ms", "keep_addr_on_down", "disable_ipv6"},
                     "[[host]]");
      ScenarioHost h;
      h.line = r.line(&t);
      h.name = r.string(t, "name", true).value_or("");
      if (auto v = r.boolean(t, "forwarding")) h.settings.forwarding = *v;
      if (auto v = r.boolean(t, "bindv6only")) h.settings.bindv6only = *v;
      if (auto v = r.boolean(t, "keep_addr_on_down")) h.settings.keep_addr_on_down = *v;
      if (auto v = r.boolean(t, "disable_ipv6")) h.settings.disable_ipv6 = *v;
      if (auto v = r.integer(t, "tcp_syn_retries", 1, 127)) h.settings.tcp_syn_retries = static_cast<int>(*v);
      if (auto v = r.integer(t, "icmp_ratelimit_v4_ms", 0, 100000))
        h.settings.icmp_ratelimit_v4 = std::chrono::milliseconds(*v);
      if (auto v = r.integer(t, "icmp_ratelimit_v6_ms", 0, 100000))
        h.settings.icmp_ratelimit_v6 = std::chrono::milliseconds(*v);
      if (const toml::node* ifs = t.get("interfaces")) {
        if (!ifs->is_table()) {
          r.error(ifs, "'interfaces' must be a table: { eth0 = [\"198.18.0.1/24\"] }");
        } else {
          for (const auto& [name, list] : *ifs->as_table()) {
            if (!list.is_array()) {
              r.error(&list, "interface '" + std::string(name.str()) + "' must list its addresses");
              continue;
            }
            for (const auto& a : *list.as_array()) {
              if (!a.is_string())
                r.error(&a, "an address must be a string like \"198.18.0.1/24\"");
              else
                h.addresses.emplace_back(std::string(name.str()), a.as_string()->get());
            }
          }
        }
      }
      if (const toml::node* routes = t.get("routes")) {
        if (!routes->is_array())
          r.error(routes, "'routes' must be a list of strings");
        else {
          for (const auto& x : *routes->as_array()) {
            if (!x.is_string())
              r.error(&x, "a route must be a string like \"default dev eth0\"");
            else
              h.routes.push_back({x.as_string()->get(), r.line(&x)});
          }
        }
      }
      s.hosts.push_back(std::move(h));
    }
  }

  if (const auto* links = r.array_of_tables(root, "link")) {
    for (const auto& node : *links) {
      const auto& t = *node.as_table();
      r.unknown_keys(t, {"between", "delay", "jitter", "loss", "duplicate", "reorder", "mtu", "bandwidth_bps"},
                     "[[link]]");
      ScenarioLink l;
      l.line = r.line(&t);
      const toml::node* between = t.get("between");
      if (!between || !between->is_array() || between->as_array()->size() != 2 ||
          !(*between->as_array())[0].is_string() || !(*between->as_array())[1].is_string() ||
          !split_host_if((*between->as_array())[0].as_string()->get(), l.host_a, l.if_a) ||
          !split_host_if((*between->as_array())[1].as_string()->get(), l.host_b, l.if_b)) {
        r.error(between ? between : &t, "a link needs between = [\"host:interface\", \"host:interface\"]");
        continue;
      }
      if (auto d = r.duration(t, "delay")) l.properties.one_way_delay = *d;
      if (auto d = r.duration(t, "jitter")) l.properties.jitter = *d;
      if (auto p = r.probability(t, "loss")) l.properties.loss_probability = *p;
      if (auto p = r.probability(t, "duplicate")) l.properties.duplicate_probability = *p;
      if (auto p = r.probability(t, "reorder")) l.properties.reorder_probability = *p;
      if (auto m = r.integer(t, "mtu", 1280, 65535)) l.properties.mtu = static_cast<std::size_t>(*m);
      if (auto b = r.integer(t, "bandwidth_bps", 0, INT64_MAX))
        l.properties.bandwidth_bits_per_second = static_cast<std::uint64_t>(*b);
      s.links.push_back(std::move(l));
    }
  }

  if (const toml::node* dns = root.get("dns")) {
    if (!dns->is_table())
      r.error(dns, "'dns' must be a table of names");
    else {
      for (const auto& [name, v] : *dns->as_table()) {
        DnsAnswer a;
        auto records = [&](const toml::array& arr) {
          for (const auto& x : arr) {
            auto addr = x.is_string() ? net::Address::parse(x.as_string()->get())
                                      : net::Result<net::Address>(net::errc(std::errc::invalid_argument));
            if (!addr)
              r.error(&x, "DNS record must be an IP address string");
            else
              a.records.push_back(*addr);
          }
        };
        if (v.is_string()) {
          const std::string k = v.as_string()->get();
          if (k == "nxdomain")
            a.kind = DnsAnswer::Kind::nxdomain;
          else if (k == "servfail")
            a.kind = DnsAnswer::Kind::servfail;
          else if (k == "timeout")
            a.kind = DnsAnswer::Kind::timeout;
          else
            r.error(&v, "DNS answer must be a list of addresses, \"nxdomain\", \"servfail\" or \"timeout\"");
        } else if (v.is_array()) {
          records(*v.as_array());
        } else if (v.is_table()) {
          const auto& t = *v.as_table();
          r.unknown_keys(t, {"records", "delay", "raw_order", "answer", "a", "aaaa"}, "a DNS entry");
          if (const toml::node* rec = t.get("records"); rec && rec->is_array()) records(*rec->as_array());
          if (auto d = r.duration(t, "delay")) a.delay = *d;
          if (auto b = r.boolean(t, "raw_order")) a.raw_order = *b;
          if (auto k = r.string(t, "answer", false)) {
            if (*k == "nxdomain")
              a.kind = DnsAnswer::Kind::nxdomain;
            else if (*k == "servfail")
              a.kind = DnsAnswer::Kind::servfail;
            else if (*k == "timeout")
              a.kind = DnsAnswer::Kind::timeout;
            else
              r.error(t.get("answer"), "answer must be nxdomain, servfail or timeout");
          }
          // a = "timeout" | "servfail" | "nxdomain" | "4s": that family's question alone.
          for (const char* key : {"a", "aaaa"}) {
            auto k = r.string(t, key, false);
            if (!k) continue;
            DnsAnswer::PerFamily f{DnsAnswer::Kind::records, a.delay};
            if (*k == "nxdomain")
              f.kind = DnsAnswer::Kind::nxdomain;
            else if (*k == "servfail")
              f.kind = DnsAnswer::Kind::servfail;
            else if (*k == "timeout")
              f.kind = DnsAnswer::Kind::timeout;
            else if (auto d = parse_duration(*k))
              f.delay = *d;
            else
              r.error(t.get(key), std::string(key) + " must be nxdomain, servfail, timeout or a delay such as \"4s\"");
            (std::string(key) == "a" ? a.a : a.aaaa) = f;
          }
        } else {
          r.error(&v, "DNS answer must be a list of addresses or a table");
        }
        s.dns[std::string(name.str())] = a;
      }
    }
  }
}

}  // namespace

}  // namespace duet::sim
