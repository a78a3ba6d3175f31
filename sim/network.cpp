// The network layer: routing with Linux's route verdicts, links (delay, jitter, loss,
// duplication, reordering, MTU, bandwidth), forwarding, and ICMP errors with Linux's
// rate limits.
#include <algorithm>

#include "duet/net/error.hpp"
#include "world_impl.hpp"

namespace duet::sim {

__extension__ using u128 = unsigned __int128;  // GCC/Clang; exact 64x64 products

using net::errc;

std::size_t Packet::size() const {
  std::size_t transport = 0;
  switch (proto) {
    case Proto::udp:
      transport = 8;
      break;
    case Proto::tcp:
      transport = 20;
      break;
    case Proto::icmp:
      transport = 8 + (quoted ? ip_header_size(quoted->family()) + 8 : 0);
      break;
  }
  return ip_header_size(family()) + transport + payload.size();
}

std::string Packet::summary() const {
  auto ep = [](const Address& a, std::uint16_t port) { return Endpoint{a, port}.to_string(); };
  switch (proto) {
    case Proto::udp:
      return "udp " + ep(src, sport) + " > " + ep(dst, dport) + " len " + std::to_string(payload.size());
    case Proto::tcp: {
      std::string f;
      if (flags & tcp_flag::syn) f += 'S';
      if (flags & tcp_flag::fin) f += 'F';
      if (flags & tcp_flag::rst) f += 'R';
      if (flags & tcp_flag::ack) f += '.';
      return "tcp " + ep(src, sport) + " > " + ep(dst, dport) + " [" + f + "] seq " + std::to_string(seq) + " ack " +
             std::to_string(ack) + " len " + std::to_string(payload.size());
    }
    case Proto::icmp:
      return std::string(family() == Family::v4 ? "icmp " : "icmp6 ") + src.to_string() + " > " + dst.to_string() +
             " type " + std::to_string(icmp_type) + " code " + std::to_string(icmp_code) +
             (quoted ? " about #" + std::to_string(quoted->id) : "");
  }
  return "?";
}

bool SimWorld::Impl::is_local_address(const Host& h, const Address& a) const {
  for (const auto& local : h.local_addresses) {
    if (local == a) return true;
  }
  return a.is_v4() && a.is_loopback();  // all of 127/8 is local; ::1 only while configured
}

RouteResult SimWorld::Impl::route(Host& h, const Address& dst) {
  RouteResult r;
  if (is_local_address(h, dst)) {
    r.found = true;
    r.local = true;
    r.verdict = RouteVerdict::forward;
    r.interface = h.interfaces.front().get();
    return r;
  }
  const Route* best = nullptr;
  for (const auto& route : h.routes) {
    if (!route.prefix.contains(dst)) continue;
    if (best && best->prefix.length >= route.prefix.length) continue;
    if (route.verdict == RouteVerdict::forward) {
      // A route through a down interface is gone, as Linux removes it with the link.
      if (route.out == nullptr || !route.out->up) continue;
    }
    best = &route;
  }
  if (best == nullptr) return r;
  r.found = true;
  r.verdict = best->verdict;
  if (best->verdict == RouteVerdict::forward) r.interface = best->out;
  return r;
}

std::optional<Address> SimWorld::Impl::select_source(Host& h, const Address& dst) {
  return select_source(h, dst, route(h, dst));
}

std::optional<Address> SimWorld::Impl::select_source(Host& h, const Address& dst, const RouteResult& r) {
  if (!r.found || r.verdict != RouteVerdict::forward) return std::nullopt;
  if (r.local) {
    if (dst.is_loopback()) return Address::loopback(dst.family());
    return dst;
  }
  auto pick = [&](const Interface& i) -> std::optional<Address> {
    std::optional<Address> best;
    int best_len = -1;
    for (const auto& p : i.addresses) {
      if (p.family() != dst.family() || p.address.is_loopback()) continue;
      if (p.address.is_link_local() != dst.is_link_local() && dst.is_v6()) continue;
      // IPv4: the primary address of the matching subnet; IPv6: longest matching prefix.
      const int len = dst.is_v4() ? (p.contains(dst) ? 1 : 0) : common_prefix_length(p.address, dst);
      if (len > best_len) {
        best = p.address;
        best_len = len;
      }
    }
    return best;
  };
  if (auto a = pick(*r.interface)) return a;
  for (const auto& i : h.interfaces) {
    if (i.get() == r.interface || i->name == "lo" || !i->up) continue;
    if (auto a = pick(*i)) return a;
  }
  return std::nullopt;
}

std::size_t SimWorld::Impl::path_mtu(Host& h, const Address& dst) {
  const RouteResult r = route(h, dst);
  std::size_t mtu = 65535;
  if (r.found && !r.local && r.interface && r.interface->link) {
    mtu = r.interface->link->properties.mtu;
  }
  if (auto it = h.path_mtu.find(dst); it != h.path_mtu.end()) mtu = std::min(mtu, it->second);
  return mtu;
}

std::error_code SimWorld::Impl::local_route_error(Host& h, const Address& dst) { return verdict_error(route(h, dst)); }

std::error_code SimWorld::Impl::verdict_error(const RouteResult& r) {
  if (!r.found) return errc(std::errc::network_unreachable);
  switch (r.verdict) {
    case RouteVerdict::blackhole:
      return errc(std::errc::invalid_argument);
    case RouteVerdict::unreachable:
      return errc(std::errc::host_unreachable);
    case RouteVerdict::prohibit:
      return errc(std::errc::permission_denied);
    case RouteVerdict::forward:
      return {};
  }
  return {};
}

std::error_code SimWorld::Impl::output(Host& h, Packet p) {
  const RouteResult r = route(h, p.dst);
  return output(h, std::move(p), r);
}

std::error_code SimWorld::Impl::output(Host& h, Packet p, const RouteResult& r) {
  if (!h.alive) return errc(std::errc::network_down);
  p.id = next_packet_id++;
  const std::size_t max_datagram = 65535 + (p.family() == Family::v6 ? 40 : 0);
  if (p.size() > max_datagram) return errc(std::errc::message_size);
  if (!r.found) {
    trace_packet(h, "send-error", p, "no route: ENETUNREACH");
    return errc(std::errc::network_unreachable);
  }
  switch (r.verdict) {
    case RouteVerdict::blackhole:
      trace_packet(h, "send-error", p, "local blackhole route: EINVAL");
      return errc(std::errc::invalid_argument);
    case RouteVerdict::unreachable:
      trace_packet(h, "send-error", p, "local unreachable route: EHOSTUNREACH");
      return errc(std::errc::host_unreachable);
    case RouteVerdict::prohibit:
      trace_packet(h, "send-error", p, "local prohibit route: EACCES");
      return errc(std::errc::permission_denied);
    case RouteVerdict::forward:
      break;
  }
  trace_packet(h, "send", p);
  capture(p);
  if (r.local) {
    auto shared = std::make_shared<Packet>(std::move(p));
    Host* hp = &h;
    const auto inc = h.incarnation;
    after(Duration{0}, [this, hp, inc, shared] {
      if (hp->alive && hp->incarnation == inc) deliver(*hp, shared);
    });
    return {};
  }
  transmit(h, *r.interface, std::move(p));
  return {};
}

void SimWorld::Impl::transmit(Host& h, Interface& out, Packet p) {
  Link* l = out.link;
  if (l == nullptr || !out.up) {
    trace_packet(h, "drop", p, "interface has no link");
    return;
  }
  const int side = out.link_side;
  const LinkProperties& props = l->properties;
  Host* peer = l->host[1 - side];
  Interface* peer_if = l->end[1 - side];

  // A packet larger than the link: IPv4 is fragmented here, IPv6 only by its source
  // (forward() answers "packet too big" before we get here).
  std::size_t fragments = 1;
  const std::size_t header = ip_header_size(p.family());
  const std::size_t unit = p.fragment_size ? std::min(p.fragment_size, p.size()) : p.size();
  if (unit > props.mtu || p.fragment_size) {
    const std::size_t cut = std::min(unit, props.mtu);
    const std::size_t per_fragment = (cut - header - (p.family() == Family::v6 ? 8 : 0)) & ~std::size_t{7};
    fragments = (p.size() - header + per_fragment - 1) / per_fragment;
  }
  if (l->cut) {
    trace_packet(h, "drop", p, "partition");
    return;
  }
  for (std::size_t i = 0; i < fragments; ++i) {
    if (random.chance(props.loss_probability)) {
      trace_packet(h, "drop", p, fragments > 1 ? "loss (a fragment)" : "loss");
      return;
    }
  }
  TimePoint start = now();
  if (props.bandwidth_bits_per_second > 0) {
    start = std::max(start, l->busy_until[side]);
    const auto bits = static_cast<u128>(p.size() + (fragments - 1) * header) * 8;
    const auto ns = static_cast<std::int64_t>(bits * 1'000'000'000 / props.bandwidth_bits_per_second);
    l->busy_until[side] = start + Duration{ns};
    start = l->busy_until[side];
  }
  TimePoint arrival = start + props.one_way_delay + random.up_to(props.jitter);
  if (random.chance(props.reorder_probability)) {
    // Sent ahead of the queue: it may overtake packets already on the way.
    arrival = start + random.up_to(props.one_way_delay);
    trace_packet(h, "reorder", p);
  } else {
    arrival = std::max(arrival, l->last_arrival[side]);
    l->last_arrival[side] = arrival;
  }
  auto shared = std::make_shared<Packet>(std::move(p));
  const bool duplicate = random.chance(props.duplicate_probability);
  queue.schedule(arrival, [this, peer, peer_if, shared] { arrive(*peer, peer_if, shared); });
  if (duplicate) {
    trace_packet(h, "duplicate", *shared);
    queue.schedule(arrival + random.up_to(props.one_way_delay),
                   [this, peer, peer_if, shared] { arrive(*peer, peer_if, shared); });
  }
}

void SimWorld::Impl::arrive(Host& h, Interface* in, const std::shared_ptr<Packet>& p) {
  if (!h.alive) {
    trace_packet(h, "drop", *p, "host is down");
    return;
  }
  if (in != nullptr && !in->up) {
    trace_packet(h, "drop", *p, "interface is down");
    return;
  }
  if (is_local_address(h, p->dst)) {
    deliver(h, p);
  } else if (h.settings.forwarding) {
    forward(h, p);
  } else {
    trace_packet(h, "drop", *p, "not for this host (forwarding off)");
  }
}

void SimWorld::Impl::forward(Host& h, const std::shared_ptr<Packet>& p) {
  const bool v4 = p->family() == Family::v4;
  if (p->ttl <= 1) {
    trace_packet(h, "drop", *p, "ttl exceeded");
    icmp_error(h, *p, v4 ? icmp4::time_exceeded : icmp6::time_exceeded, 0, false);
    return;
  }
  const RouteResult r = route(h, p->dst);
  if (!r.found) {
    trace_packet(h, "drop", *p, "no route");
    icmp_error(h, *p, v4 ? icmp4::dest_unreachable : icmp6::dest_unreachable,
               v4 ? icmp4::net_unreachable : icmp6::no_route, true);
    return;
  }
  switch (r.verdict) {
    case RouteVerdict::blackhole:
      trace_packet(h, "drop", *p, "blackhole route");
      return;
    case RouteVerdict::unreachable:
      trace_packet(h, "drop", *p, "unreachable route");
      icmp_error(h, *p, v4 ? icmp4::dest_unreachable : icmp6::dest_unreachable,
                 v4 ? icmp4::host_unreachable : icmp6::no_route, true);
      return;
    case RouteVerdict::prohibit:
      trace_packet(h, "drop", *p, "prohibit route");
      icmp_error(h, *p, v4 ? icmp4::dest_unreachable : icmp6::dest_unreachable,
                 v4 ? icmp4::admin_prohibited : icmp6::admin_prohibited, true);
      return;
    case RouteVerdict::forward:
      break;
  }
  Packet copy = *p;
  --copy.ttl;
  const std::size_t unit = copy.fragment_size ? std::min(copy.fragment_size, copy.size()) : copy.size();
  if (!v4 && r.interface->link && unit > r.interface->link->properties.mtu) {
    trace_packet(h, "drop", copy, "larger than the next link's MTU");
    icmp_error(h, copy, icmp6::packet_too_big, 0, false, static_cast<std::uint32_t>(r.interface->link->properties.mtu));
    return;
  }
  trace_packet(h, "forward", copy);
  transmit(h, *r.interface, std::move(copy));
}

void SimWorld::Impl::deliver(Host& h, const std::shared_ptr<Packet>& p) {
  trace_packet(h, "deliver", *p);
  switch (p->proto) {
    case Proto::udp:
      udp_input(h, p);
      return;
    case Proto::tcp:
      tcp_input(h, p);
      return;
    case Proto::icmp:
      if (!p->quoted) return;
      if ((p->family() == Family::v6 && p->icmp_type == icmp6::packet_too_big) ||
          (p->family() == Family::v4 && p->icmp_type == icmp4::dest_unreachable &&
           p->icmp_code == icmp4::frag_needed)) {
        h.path_mtu[p->quoted->dst] = p->icmp_mtu;
        return;
      }
      if (p->quoted->proto == Proto::udp) udp_icmp(h, *p);
      if (p->quoted->proto == Proto::tcp) tcp_icmp(h, *p);
      return;
  }
}

IcmpMeaning icmp_meaning(const Packet& icmp) {
  using E = std::errc;
  if (icmp.family() == Family::v4 && icmp.icmp_type == icmp4::dest_unreachable) {
    struct Row {
      E error;
      bool fatal;
    };
    static const Row table[] = {
        {E::network_unreachable, false},      // 0 net unreachable
        {E::host_unreachable, false},         // 1 host unreachable
        {E::no_protocol_option, true},        // 2 protocol unreachable
        {E::connection_refused, true},        // 3 port unreachable
        {E::message_size, false},             // 4 fragmentation needed
        {E::operation_not_supported, false},  // 5 source route failed
        {E::network_unreachable, true},       // 6 net unknown
        {E::host_unreachable, true},          // 7 host unknown (EHOSTDOWN in Linux)
        {E::network_unreachable, true},       // 8 host isolated (ENONET in Linux)
        {E::network_unreachable, true},       // 9 net administratively prohibited
        {E::host_unreachable, true},          // 10 host administratively prohibited
        {E::network_unreachable, false},      // 11 net unreachable for TOS
        {E::host_unreachable, false},         // 12 host unreachable for TOS
        {E::host_unreachable, true},          // 13 communication administratively prohibited
    };
    if (icmp.icmp_code < std::size(table)) {
      return {errc(table[icmp.icmp_code].error), table[icmp.icmp_code].fatal};
    }
    return {errc(E::host_unreachable), false};
  }
  if (icmp.family() == Family::v6 && icmp.icmp_type == icmp6::dest_unreachable) {
    switch (icmp.icmp_code) {
      case icmp6::no_route:
        return {errc(E::network_unreachable), false};
      case icmp6::admin_prohibited:
        return {errc(E::permission_denied), true};
      case icmp6::port_unreachable:
        return {errc(E::connection_refused), true};
      case 5:  // source address failed ingress/egress policy
      case 6:  // reject route to destination
        return {errc(E::permission_denied), true};
      default:
        return {errc(E::host_unreachable), false};  // beyond scope, address unreachable
    }
  }
  return {};
}

bool SimWorld::Impl::icmp_allowed(Host& h, const Address& to, bool route_error) {
  if (is_local_address(h, to)) return true;  // Linux never limits ICMP to itself
  const bool v4 = to.is_v4();
  IcmpBucket& b = h.icmp_buckets[{to, v4 ? 4 : 6}];
  if (!b.initialised) {
    // inet_getpeer() starts a peer 60 s in the past, so its first burst is full.
    b.initialised = true;
    b.tokens = Duration{0};
    b.last = now() - std::chrono::seconds(60);
  }
  auto refill = [&](Duration cap) {
    b.tokens = std::min(cap, b.tokens + (now() - b.last));
    b.last = now();
  };
  // IPv4 route errors pass ip_error()'s limit first (cost 1 s, burst 5 s), which
  // shares the token store with icmp_send()'s per-destination limit below.
  if (route_error && v4) {
    refill(std::chrono::seconds(5));
    if (b.tokens < std::chrono::seconds(1)) return false;
    b.tokens -= std::chrono::seconds(1);
  }
  const Duration limit = v4 ? h.settings.icmp_ratelimit_v4 : h.settings.icmp_ratelimit_v6;
  if (limit.count() <= 0) return true;
  refill(limit * 6);  // XRLIM_BURST_FACTOR
  if (b.tokens < limit) return false;
  b.tokens -= limit;
  return true;
}

void SimWorld::Impl::icmp_error(Host& h, const Packet& about, std::uint8_t type, std::uint8_t code, bool route_error,
                                std::uint32_t mtu) {
  if (about.proto == Proto::icmp) return;  // never an error about an error
  const bool too_big = about.family() == Family::v6 && type == icmp6::packet_too_big;
  if (!too_big && !icmp_allowed(h, about.src, route_error)) {
    trace_packet(h, "icmp-suppressed", about, "ICMP rate limit");
    return;
  }
  auto src = select_source(h, about.src);
  if (!src) return;
  Packet icmp;
  icmp.proto = Proto::icmp;
  icmp.src = *src;
  icmp.dst = about.src;
  icmp.icmp_type = type;
  icmp.icmp_code = code;
  icmp.icmp_mtu = mtu;
  auto quoted = std::make_shared<Packet>(about);
  if (quoted->payload.size() > 8) quoted->payload.resize(8);
  icmp.quoted = std::move(quoted);
  (void)output(h, std::move(icmp));
}

}  // namespace duet::sim
