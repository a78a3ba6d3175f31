// Simulated UDP with Linux's semantics: dual-stack sockets and IPV6_V6ONLY, bind
// conflicts, ephemeral ports, connected-socket demultiplexing, and the ICMP errors that
// a connected socket reports (hard errors only: port unreachable, prohibited).
#include "duet/net/error.hpp"
#include "world_impl.hpp"

namespace duet::sim {

using net::errc;

namespace {

constexpr std::size_t kReceiveQueueLimit = 1024;  // datagrams; more are dropped like a full rcvbuf

/// Does a socket bound to (`s.local`, `s.port`) take a packet for `dst`?
bool accepts(const UdpSock& s, const Address& dst) {
  if (!s.bound) return false;
  if (dst.is_v4()) {
    if (s.family == Family::v4) return s.local.is_unspecified() || s.local == dst;
    if (s.v6only) return false;
    return s.local.is_unspecified() || s.local == dst.v4_mapped();
  }
  return s.family == Family::v6 && (s.local.is_unspecified() || s.local == dst);
}

void try_deliver(SimWorld::Impl& w, Host& h, UdpSock& s);

void schedule_delivery(SimWorld::Impl& w, Host& h, UdpSock& s) {
  if (s.delivery_scheduled) return;
  s.delivery_scheduled = true;
  Host* hp = &h;
  const auto inc = h.incarnation;
  const auto id = s.id;
  w.after(Duration{0}, [&w, hp, inc, id] {
    if (hp->incarnation != inc) return;
    auto it = hp->udp.find(id);
    if (it == hp->udp.end()) return;
    it->second->delivery_scheduled = false;
    try_deliver(w, *hp, *it->second);
  });
}

void try_deliver(SimWorld::Impl& w, Host& h, UdpSock& s) {
  if (!s.handler && !s.handler_to) return;
  if (!s.pending_error && s.rx.empty()) return;
  auto handler = std::exchange(s.handler, nullptr);
  auto handler_to = std::exchange(s.handler_to, nullptr);
  if (s.pending_error) {
    const auto ec = std::exchange(s.pending_error, {});
    if (handler_to) {
      handler_to(ec, Endpoint{}, Address::any(s.family), {});
    } else {
      handler(ec, Endpoint{}, {});
    }
    return;
  }
  Datagram d = std::move(s.rx.front());
  s.rx.pop_front();
  if (handler_to) {
    handler_to({}, d.from, d.to, d.data);
  } else {
    handler({}, d.from, d.data);
  }
  (void)w;
  (void)h;
}

class SimDatagramSocket final : public net::DatagramSocket {
public:
  SimDatagramSocket(SimWorld::Impl& w, Host& h, Family family)
      : w_(w), h_(h), incarnation_(h.incarnation), family_(family) {
    auto s = std::make_unique<UdpSock>();
    s->id = h.next_socket_id++;
    s->family = family;
    s->v6only = family == Family::v6 && h.settings.bindv6only;
    s->local = Address::any(family);
    id_ = s->id;
    h.udp[id_] = std::move(s);
  }
  ~SimDatagramSocket() override { close(); }

  Family family() const override { return family_; }

  std::error_code set_v6only(bool on) override {
    UdpSock* s = sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    if (family_ == Family::v4) return errc(std::errc::no_protocol_option);
    if (s->bound) return errc(std::errc::invalid_argument);
    s->v6only = on;
    return {};
  }

  std::error_code bind(const Endpoint& local) override {
    UdpSock* s = sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    if (local.family() != family_) return errc(std::errc::address_family_not_supported);
    if (s->bound) return errc(std::errc::invalid_argument);
    if (auto ec = w_.check_bind_address(h_, family_, s->v6only, local.address)) {
      trace_bind(local, ec);
      return ec;
    }
    PortClaim claim{family_, local.address, s->v6only};
    std::uint16_t port = local.port;
    if (port == 0) {
      auto p = w_.ephemeral_port(h_, Proto::udp, claim);
      if (!p) return errc(std::errc::address_in_use);
      port = *p;
    } else if (!w_.port_free(h_, Proto::udp, claim, port, s)) {
      trace_bind(local, errc(std::errc::address_in_use));
      return errc(std::errc::address_in_use);
    }
    s->local = local.address;
    s->port = port;
    s->bound = true;
    trace_bind({s->local, port}, {});
    return {};
  }

  std::error_code connect(const Endpoint& remote) override {
    UdpSock* s = sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    Address dst;
    if (auto ec = path_destination(*s, remote, dst)) return ec;
    if (auto ec = w_.local_route_error(h_, dst)) return ec;
    auto src = w_.select_source(h_, dst);
    if (!src) return errc(std::errc::address_not_available);
    if (auto ec = autobind(*s)) return ec;
    // Like Linux, connect() fixes a wildcard local address to the route's source.
    if (s->local.is_unspecified()) s->local = socket_view(family_, *src);
    s->remote = remote;
    w_.trace(h_, "udp-connect",
             "\"local\":" + json_string(Endpoint{s->local, s->port}.to_string()) +
                 ",\"remote\":" + json_string(remote.to_string()));
    return {};
  }

  net::Result<Endpoint> local_endpoint() const override {
    const UdpSock* s = const_cast<SimDatagramSocket*>(this)->sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    return Endpoint{s->local, s->port};
  }

  std::error_code send_to(const Endpoint& remote, std::span<const std::uint8_t> data) override {
    return send_from(Address::any(family_), remote, data);
  }

  void send_soon_from(const Address& source, const Endpoint& remote, std::span<const std::uint8_t> data) override {
    // As PosixStack: a send from a source the host lost fails, and the datagram goes again
    // from the address routing chooses.
    if (send_from(source, remote, data) && !source.is_unspecified()) {
      (void)send_from(Address::any(family_), remote, data);
    }
  }

  std::error_code send_from(const Address& source, const Endpoint& remote, std::span<const std::uint8_t> data) {
    UdpSock* s = sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    Address dst;
    if (auto ec = path_destination(*s, remote, dst)) return ec;
    if (remote.port == 0) return errc(std::errc::invalid_argument);
    const RouteResult route = w_.route(h_, dst);
    if (auto ec = SimWorld::Impl::verdict_error(route)) {
      w_.trace(h_, "udp-send-error",
               "\"to\":" + json_string(remote.to_string()) + ",\"errno\":" + json_string(net::error_name(ec)));
      return ec;
    }
    if (auto ec = autobind(*s)) return ec;
    Address src;
    if (!source.is_unspecified() && s->local.is_unspecified()) {
      src = source.unmapped();
      if (src.family() != dst.family() || !w_.is_local_address(h_, src)) {
        // Linux: the IPv4 route lookup fails (ENETUNREACH), IPv6 checks the address (EINVAL).
        const auto ec = errc(dst.is_v4() ? std::errc::network_unreachable : std::errc::invalid_argument);
        w_.trace(h_, "udp-send-error",
                 "\"from\":" + json_string(src.to_string()) + ",\"errno\":" + json_string(net::error_name(ec)));
        return ec;
      }
    } else if (!s->local.is_unspecified()) {
      src = s->local.unmapped();
    } else {
      auto chosen = w_.select_source(h_, dst, route);
      if (!chosen) return errc(std::errc::address_not_available);
      src = *chosen;
    }
    Packet p;
    p.proto = Proto::udp;
    p.src = src;
    p.dst = dst;
    p.sport = s->port;
    p.dport = remote.port;
    p.payload.assign(data.begin(), data.end());
    if (dst.is_v6() && !route.local && route.interface->link) {
      std::size_t mtu = route.interface->link->properties.mtu;
      if (!h_.path_mtu.empty()) mtu = w_.path_mtu(h_, dst);
      if (p.size() > mtu) p.fragment_size = mtu;
    }
    return w_.output(h_, std::move(p), route);
  }

  std::error_code send(std::span<const std::uint8_t> data) override {
    UdpSock* s = sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    if (!s->remote) return errc(std::errc::destination_address_required);
    return send_to(*s->remote, data);
  }

  void receive(net::ReceiveHandler handler) override {
    UdpSock* s = sock();
    if (s == nullptr) {
      w_.after(Duration{0}, [h = std::move(handler)] { h(errc(std::errc::bad_file_descriptor), Endpoint{}, {}); });
      return;
    }
    s->handler = std::move(handler);
    if (s->pending_error || !s->rx.empty()) schedule_delivery(w_, h_, *s);
  }

  void receive_to(net::ReceiveToHandler handler) override {
    UdpSock* s = sock();
    if (s == nullptr) {
      w_.after(Duration{0}, [h = std::move(handler), any = Address::any(family_)] {
        h(errc(std::errc::bad_file_descriptor), Endpoint{}, any, {});
      });
      return;
    }
    s->handler_to = std::move(handler);
    if (s->pending_error || !s->rx.empty()) schedule_delivery(w_, h_, *s);
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    if (h_.incarnation == incarnation_) h_.udp.erase(id_);
  }

private:
  UdpSock* sock() {
    if (closed_ || h_.incarnation != incarnation_) return nullptr;
    auto it = h_.udp.find(id_);
    return it == h_.udp.end() ? nullptr : it->second.get();
  }

  /// The packet destination for `remote`, or the error Linux gives for that pairing.
  std::error_code path_destination(const UdpSock& s, const Endpoint& remote, Address& dst) {
    if (remote.family() != family_) return errc(std::errc::address_family_not_supported);
    if (family_ == Family::v6 && remote.address.is_v4_mapped()) {
      // A v6-only socket, or one bound to a real IPv6 address, has no IPv4 path.
      if (s.v6only || (!s.local.is_unspecified() && !s.local.is_v4_mapped())) {
        return errc(std::errc::network_unreachable);
      }
      dst = remote.address.unmapped();
      return {};
    }
    if (family_ == Family::v6 && s.local.is_v4_mapped()) return errc(std::errc::network_unreachable);
    dst = remote.address;
    return {};
  }

  std::error_code autobind(UdpSock& s) {
    if (s.bound) return {};
    auto p = w_.ephemeral_port(h_, Proto::udp, s.claim());
    if (!p) return errc(std::errc::address_in_use);
    s.port = *p;
    s.bound = true;
    return {};
  }

  void trace_bind(const Endpoint& local, std::error_code ec) {
    w_.trace(h_, "udp-bind",
             "\"local\":" + json_string(local.to_string()) + ",\"result\":" + json_string(net::error_name(ec)));
  }

  SimWorld::Impl& w_;
  Host& h_;
  std::uint64_t incarnation_;
  std::uint64_t id_ = 0;
  Family family_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<net::DatagramSocket> make_udp_socket(SimWorld::Impl& w, Host& h, Family family) {
  return std::make_unique<SimDatagramSocket>(w, h, family);
}

bool udp_port_taken(const Host& h, const PortClaim& claim, std::uint16_t port, const void* self) {
  for (const auto& [id, s] : h.udp) {
    if (s.get() == self || !s->bound || s->port != port) continue;
    if (claims_overlap(s->claim(), claim)) return true;
  }
  return false;
}

void SimWorld::Impl::udp_input(Host& h, const std::shared_ptr<Packet>& p) {
  UdpSock* best = nullptr;
  int best_score = -1;
  for (auto& [id, s] : h.udp) {
    if (s->port != p->dport || !accepts(*s, p->dst)) continue;
    int score = s->local.is_unspecified() ? 0 : 2;
    if (s->remote) {
      if (*s->remote != Endpoint{socket_view(s->family, p->src), p->sport}) continue;
      score += 4;
    }
    if (score > best_score) {
      best = s.get();
      best_score = score;
    }
  }
  const bool v4 = p->family() == Family::v4;
  if (best == nullptr) {
    trace_packet(h, "drop", *p, "no socket on the port");
    icmp_error(h, *p, v4 ? icmp4::dest_unreachable : icmp6::dest_unreachable,
               v4 ? icmp4::port_unreachable : icmp6::port_unreachable, false);
    return;
  }
  if (best->rx.size() >= kReceiveQueueLimit) {
    trace_packet(h, "drop", *p, "socket receive queue full");
    return;
  }
  // The last holder of the packet gives its payload away instead of copying it.
  std::vector<std::uint8_t> data = p.use_count() == 1 ? std::move(const_cast<Packet&>(*p).payload) : p->payload;
  best->rx.push_back(
      {Endpoint{socket_view(best->family, p->src), p->sport}, socket_view(best->family, p->dst), std::move(data)});
  try_deliver(*this, h, *best);
}

void SimWorld::Impl::udp_icmp(Host& h, const Packet& icmp) {
  const Packet& q = *icmp.quoted;
  // Without IP_RECVERR, UDP reports only the fatal ("hard") errors.
  const IcmpMeaning meaning = icmp_meaning(icmp);
  const std::error_code ec = meaning.fatal ? meaning.error : std::error_code{};
  for (auto& [id, s] : h.udp) {
    if (s->port != q.sport || !s->remote) continue;
    if (*s->remote != Endpoint{socket_view(s->family, q.dst), q.dport}) continue;
    if (!ec) {
      trace_packet(h, "icmp-soft-error", icmp, "not reported to UDP without IP_RECVERR");
      return;
    }
    trace(h, "udp-error", "\"socket\":" + std::to_string(s->id) + ",\"errno\":" + json_string(net::error_name(ec)));
    s->pending_error = ec;
    try_deliver(*this, h, *s);
    return;
  }
}

}  // namespace duet::sim
