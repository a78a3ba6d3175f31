#include <algorithm>

#include "duet/net/error.hpp"
#include "world_impl.hpp"

namespace duet::sim {

namespace {

Prefix parse_prefix(const std::string& text, bool default_is_route) {
  if (default_is_route && text == "default") return Prefix{Address::any(Family::v4), 0};
  if (default_is_route && text == "default6") return Prefix{Address::any(Family::v6), 0};
  auto p = Prefix::parse(text);
  if (!p) throw SimError("'" + text + "' is not a prefix: " + p.error().message());
  return *p;
}

}  // namespace

Interface* Host::find_interface(const std::string& n) {
  for (auto& i : interfaces) {
    if (i->name == n) return i.get();
  }
  return nullptr;
}

Host& SimWorld::Impl::host(const std::string& name) {
  auto it = hosts_by_name.find(name);
  if (it == hosts_by_name.end()) throw SimError("unknown host '" + name + "'");
  return *it->second;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void SimWorld::Impl::trace(const Host& h, std::string_view event, const std::string& fields) {
  if (!trace_sink) return;
  std::string line = "{\"t_ns\":" + std::to_string(now().time_since_epoch().count()) +
                     ",\"host\":" + json_string(h.name) + ",\"event\":" + json_string(event);
  if (!fields.empty()) line += "," + fields;
  line += "}";
  trace_sink(line);
}

void SimWorld::Impl::trace_packet(const Host& h, std::string_view event, const Packet& p, std::string_view why) {
  if (!trace_sink) return;
  std::string fields = "\"packet\":" + std::to_string(p.id) + ",\"what\":" + json_string(p.summary());
  if (!why.empty()) fields += ",\"why\":" + json_string(why);
  trace(h, event, fields);
}

SimWorld::SimWorld(std::uint64_t seed, WorldOptions options) : impl_(std::make_unique<Impl>(seed, options)) {}
SimWorld::~SimWorld() = default;

void SimWorld::add_host(const std::string& name, HostSettings settings) {
  if (name.empty()) throw SimError("a host needs a name");
  if (impl_->hosts_by_name.count(name)) throw SimError("host '" + name + "' exists already");
  auto h = std::make_unique<Host>();
  h->index = static_cast<std::uint32_t>(impl_->hosts.size());
  h->name = name;
  h->settings = settings;
  auto lo = std::make_unique<Interface>();
  lo->name = "lo";
  lo->addresses = {Prefix{Address::loopback(Family::v4), 8}};
  if (!settings.disable_ipv6) lo->addresses.push_back(Prefix{Address::loopback(Family::v6), 128});
  for (const auto& p : lo->addresses) h->local_addresses.push_back(p.address);
  h->interfaces.push_back(std::move(lo));
  h->stack = make_sim_stack(*impl_, *h);
  impl_->hosts_by_name[name] = h.get();
  impl_->hosts.push_back(std::move(h));
}

bool SimWorld::has_host(const std::string& name) const { return impl_->hosts_by_name.count(name) > 0; }

std::vector<std::string> SimWorld::host_names() const {
  std::vector<std::string> out;
  for (const auto& h : impl_->hosts) out.push_back(h->name);
  return out;
}

HostSettings& SimWorld::settings(const std::string& host) { return impl_->host(host).settings; }

namespace {

Interface& ensure_interface(Host& h, const std::string& name) {
  if (name.empty()) throw SimError("host '" + h.name + "': an interface needs a name");
  if (auto* i = h.find_interface(name)) return *i;
  auto i = std::make_unique<Interface>();
  i->name = name;
  h.interfaces.push_back(std::move(i));
  return *h.interfaces.back();
}

void set_route(Host& h, Route r) {
  for (auto& existing : h.routes) {
    if (existing.prefix == r.prefix) {
      existing = std::move(r);
      return;
    }
  }
  h.routes.push_back(std::move(r));
}

}  // namespace

void SimWorld::add_address(const std::string& host, const std::string& interface, const std::string& prefix) {
  Host& h = impl_->host(host);
  Prefix p = parse_prefix(prefix, false);
  if (p.address.is_unspecified() || p.address.is_v4_mapped()) {
    throw SimError("host '" + host + "': " + prefix + " cannot be an interface address");
  }
  if (p.address.is_v6() && h.settings.disable_ipv6) {
    throw SimError("host '" + host + "' has IPv6 disabled: cannot add " + prefix);
  }
  Interface& i = ensure_interface(h, interface);
  if (std::find(i.addresses.begin(), i.addresses.end(), p) == i.addresses.end()) {
    i.addresses.push_back(p);
    h.local_addresses.push_back(p.address);
  }
  if (interface != "lo") set_route(h, Route{p.network(), RouteVerdict::forward, interface, &i, true});
  impl_->trace(h, "address-add",
               "\"interface\":" + json_string(interface) + ",\"prefix\":" + json_string(p.to_string()));
}

void SimWorld::remove_address(const std::string& host, const std::string& interface, const std::string& prefix) {
  Host& h = impl_->host(host);
  Prefix p = parse_prefix(prefix, false);
  Interface* i = h.find_interface(interface);
  if (i == nullptr) throw SimError("host '" + host + "' has no interface '" + interface + "'");
  auto it = std::find(i->addresses.begin(), i->addresses.end(), p);
  if (it == i->addresses.end()) {
    throw SimError("host '" + host + "' has no address " + prefix + " on " + interface);
  }
  i->addresses.erase(it);
  h.local_addresses.erase(std::find(h.local_addresses.begin(), h.local_addresses.end(), p.address));
  // The on-link route goes with the last address of its prefix on that interface.
  const Prefix net = p.network();
  bool still =
      std::any_of(i->addresses.begin(), i->addresses.end(), [&](const Prefix& q) { return q.network() == net; });
  if (!still) {
    std::erase_if(h.routes, [&](const Route& r) { return r.connected && r.prefix == net && r.interface == interface; });
  }
  impl_->trace(h, "address-remove",
               "\"interface\":" + json_string(interface) + ",\"prefix\":" + json_string(p.to_string()));
}

void SimWorld::connect(const std::string& host_a, const std::string& if_a, const std::string& host_b,
                       const std::string& if_b, LinkProperties properties) {
  Host& a = impl_->host(host_a);
  Host& b = impl_->host(host_b);
  if (&a == &b) throw SimError("host '" + host_a + "' cannot be linked to itself");
  if (properties.mtu < 1280) throw SimError("link MTU must be at least 1280 (IPv6 minimum)");
  Interface& ia = ensure_interface(a, if_a);
  Interface& ib = ensure_interface(b, if_b);
  if (ia.link || ib.link)
    throw SimError("interface already linked: " + host_a + "/" + if_a + " or " + host_b + "/" + if_b);
  auto l = std::make_unique<Link>();
  l->id = impl_->links.size() + 1;
  l->properties = properties;
  l->host[0] = &a;
  l->host[1] = &b;
  l->interface[0] = if_a;
  l->interface[1] = if_b;
  l->end[0] = &ia;
  l->end[1] = &ib;
  ia.link = l.get();
  ia.link_side = 0;
  ib.link = l.get();
  ib.link_side = 1;
  impl_->links.push_back(std::move(l));
}

namespace {

std::vector<Link*> links_between(SimWorld::Impl& w, Host& a, Host& b) {
  std::vector<Link*> out;
  for (auto& l : w.links) {
    if ((l->host[0] == &a && l->host[1] == &b) || (l->host[0] == &b && l->host[1] == &a)) {
      out.push_back(l.get());
    }
  }
  if (out.empty()) throw SimError("no link between '" + a.name + "' and '" + b.name + "'");
  return out;
}

}  // namespace

void SimWorld::set_link_properties(const std::string& host_a, const std::string& host_b, LinkProperties properties) {
  for (Link* l : links_between(*impl_, impl_->host(host_a), impl_->host(host_b))) {
    l->properties = properties;
  }
}

void SimWorld::add_route(const std::string& host, const std::string& prefix, RouteVerdict verdict,
                         const std::string& interface) {
  Host& h = impl_->host(host);
  Prefix p = parse_prefix(prefix, true).network();
  if (verdict == RouteVerdict::forward && h.find_interface(interface) == nullptr) {
    throw SimError("host '" + host + "': route " + prefix + " names unknown interface '" + interface + "'");
  }
  for (const auto& r : h.routes) {
    if (r.prefix == p) {
      // As `ip route add`: a route for the same prefix (an on-link one too) is not replaced.
      throw SimError("host '" + host + "' has a route for " + p.to_string() +
                     " already (ip route add: File exists); remove it first or use a longer prefix");
    }
  }
  set_route(h, Route{p, verdict, interface, h.find_interface(interface), false});
  static const char* names[] = {"forward", "blackhole", "unreachable", "prohibit"};
  impl_->trace(
      h, "route-add",
      "\"prefix\":" + json_string(p.to_string()) + ",\"verdict\":" + json_string(names[static_cast<int>(verdict)]));
}

void SimWorld::remove_route(const std::string& host, const std::string& prefix) {
  Host& h = impl_->host(host);
  Prefix p = parse_prefix(prefix, true).network();
  auto n = std::erase_if(h.routes, [&](const Route& r) { return r.prefix == p; });
  if (n == 0) throw SimError("host '" + host + "' has no route " + prefix);
  impl_->trace(h, "route-remove", "\"prefix\":" + json_string(p.to_string()));
}

void SimWorld::set_dns(const std::string& name, DnsAnswer answer) { impl_->dns[name] = std::move(answer); }

void SimWorld::set_dns_for(const std::string& host, const std::string& name, DnsAnswer answer) {
  impl_->host(host);  // validates the name
  impl_->dns_views[{host, name}] = std::move(answer);
}

void SimWorld::partition(const std::string& host_a, const std::string& host_b) {
  for (Link* l : links_between(*impl_, impl_->host(host_a), impl_->host(host_b))) l->cut = true;
  impl_->trace(impl_->host(host_a), "partition", "\"peer\":" + json_string(host_b));
}

void SimWorld::heal(const std::string& host_a, const std::string& host_b) {
  for (Link* l : links_between(*impl_, impl_->host(host_a), impl_->host(host_b))) l->cut = false;
  impl_->trace(impl_->host(host_a), "heal", "\"peer\":" + json_string(host_b));
}

void SimWorld::set_interface_up(const std::string& host, const std::string& interface, bool up) {
  Host& h = impl_->host(host);
  Interface* i = h.find_interface(interface);
  if (i == nullptr) throw SimError("host '" + host + "' has no interface '" + interface + "'");
  if (i->up == up) return;
  i->up = up;
  impl_->trace(h, up ? "interface-up" : "interface-down", "\"interface\":" + json_string(interface));
  if (!up) {
    std::erase_if(h.routes, [&](const Route& r) { return r.out == i; });
    if (!h.settings.keep_addr_on_down) {
      std::vector<Prefix> gone;
      for (const auto& p : i->addresses) {
        if (p.address.is_v6() && !p.address.is_link_local()) gone.push_back(p);
      }
      for (const auto& p : gone) remove_address(host, interface, p.to_string());
    }
    return;
  }
  for (const auto& p : i->addresses) {
    set_route(h, Route{p.network(), RouteVerdict::forward, interface, i, true});
  }
}

void SimWorld::crash(const std::string& host) { impl_->crash_host(impl_->host(host)); }

void SimWorld::Impl::crash_host(Host& h) {
  h.alive = false;
  h.udp.clear();
  h.tcp.clear();
  h.icmp_buckets.clear();
  h.path_mtu.clear();
  ++h.incarnation;
  trace(h, "crash", "");
}

void SimWorld::restart(const std::string& host) {
  Host& h = impl_->host(host);
  h.alive = true;
  impl_->trace(h, "restart", "");
}

void SimWorld::at(net::Duration when, std::function<void()> fn) {
  impl_->queue.schedule(TimePoint(when), std::move(fn));
}

net::TimePoint SimWorld::now() const { return impl_->now(); }

void SimWorld::run_for(net::Duration d) {
  const TimePoint end = impl_->now() + d;
  TimePoint next;
  while (impl_->queue.next_time(next) && next <= end) impl_->queue.run_one();
  impl_->queue.advance_to(end);
}

bool SimWorld::run_until(const std::function<bool()>& done, net::Duration limit) {
  const TimePoint end = impl_->now() + limit;
  if (done()) return true;
  TimePoint next;
  while (impl_->queue.next_time(next) && next <= end) {
    impl_->queue.run_one();
    if (done()) return true;
  }
  impl_->queue.advance_to(end);
  return done();
}

void SimWorld::run_until_idle(net::Duration limit) {
  const TimePoint end = impl_->now() + limit;
  TimePoint next;
  while (impl_->queue.next_time(next) && next <= end) impl_->queue.run_one();
}

std::uint64_t SimWorld::events_processed() const { return impl_->queue.processed(); }
Random& SimWorld::random() { return impl_->random; }

net::NetworkStack& SimWorld::stack(const std::string& host) { return *impl_->host(host).stack; }

void SimWorld::set_trace(std::function<void(std::string_view)> sink) { impl_->trace_sink = std::move(sink); }

void SimWorld::annotate(const std::string& host, std::string_view event, std::string_view detail) {
  impl_->trace(impl_->host(host), event, "\"detail\":" + json_string(detail));
}

DeterminismReport check_determinism(std::uint64_t seed, const std::function<void(SimWorld&)>& scenario) {
  std::vector<std::string> runs[2];
  for (auto& lines : runs) {
    SimWorld world(seed);
    world.set_trace([&lines](std::string_view l) { lines.emplace_back(l); });
    scenario(world);
  }
  DeterminismReport r;
  r.lines = runs[0].size();
  const std::size_t n = std::max(runs[0].size(), runs[1].size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string* a = i < runs[0].size() ? &runs[0][i] : nullptr;
    const std::string* b = i < runs[1].size() ? &runs[1][i] : nullptr;
    if (a && b && *a == *b) continue;
    r.identical = false;
    r.first_difference = i + 1;
    r.first_line = a ? *a : "";
    r.second_line = b ? *b : "";
    break;
  }
  return r;
}

}  // namespace duet::sim
