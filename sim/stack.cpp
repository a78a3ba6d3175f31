// SimStack: one host's NetworkStack in the simulated world, with its clock and timers,
// its resolver front end, and the port rules shared by UDP and TCP.
#include "duet/net/error.hpp"
#include "duet/net/resolve_literal.hpp"
#include "world_impl.hpp"

namespace duet::sim {

using net::errc;

bool claims_overlap(const PortClaim& a, const PortClaim& b) {
  // What each claim covers: none, all addresses of a family, or one address.
  struct Cover {
    bool all = false;
    std::optional<Address> one;
    [[nodiscard]] bool any() const { return all || one.has_value(); }
  };
  auto covers = [](const PortClaim& c, Family f) {
    Cover out;
    if (c.family == Family::v4) {
      if (f != Family::v4) return out;
      if (c.address.is_unspecified())
        out.all = true;
      else
        out.one = c.address;
      return out;
    }
    if (f == Family::v6) {
      if (c.address.is_v4_mapped()) return out;
      if (c.address.is_unspecified())
        out.all = true;
      else
        out.one = c.address;
      return out;
    }
    if (c.v6only) return out;  // IPV6_V6ONLY: no IPv4 at all
    if (c.address.is_unspecified()) {
      out.all = true;  // [::] without IPV6_V6ONLY takes 0.0.0.0 too
    } else if (c.address.is_v4_mapped()) {
      const Address v4 = c.address.unmapped();
      if (v4.is_unspecified())
        out.all = true;
      else
        out.one = v4;
    }
    return out;
  };
  for (Family f : {Family::v4, Family::v6}) {
    const Cover x = covers(a, f);
    const Cover y = covers(b, f);
    if (!x.any() || !y.any()) continue;
    if (x.all || y.all || *x.one == *y.one) return true;
  }
  return false;
}

std::error_code SimWorld::Impl::check_bind_address(Host& h, Family family, bool v6only, const Address& a) {
  if (a.family() != family) return errc(std::errc::address_family_not_supported);
  // 127/8 is always local; ::1 only while configured (not with disable_ipv6).
  if (a.is_unspecified()) return {};
  if (a.is_v4_mapped()) {
    if (v6only) return errc(std::errc::invalid_argument);
    const Address v4 = a.unmapped();
    if (v4.is_unspecified() || is_local_address(h, v4)) return {};
    return errc(std::errc::address_not_available);
  }
  return is_local_address(h, a) ? std::error_code{} : errc(std::errc::address_not_available);
}

bool port_in_use(const Host& h, Proto proto, std::uint16_t port) {
  const PortClaim everything_v4{Family::v4, Address::any(Family::v4), false};
  const PortClaim everything_v6{Family::v6, Address::any(Family::v6), true};
  if (proto == Proto::udp) {
    return udp_port_taken(h, everything_v4, port, nullptr) || udp_port_taken(h, everything_v6, port, nullptr);
  }
  return tcp_port_taken(h, everything_v4, port, nullptr) || tcp_port_taken(h, everything_v6, port, nullptr);
}

bool SimWorld::Impl::port_free(Host& h, Proto proto, const PortClaim& claim, std::uint16_t port, const void* self) {
  return proto == Proto::udp ? !udp_port_taken(h, claim, port, self) : !tcp_port_taken(h, claim, port, self);
}

std::optional<std::uint16_t> SimWorld::Impl::ephemeral_port(Host& h, Proto proto, const PortClaim& claim) {
  (void)claim;
  const std::uint32_t low = h.settings.ephemeral_low;
  const std::uint32_t high = std::max<std::uint32_t>(low, h.settings.ephemeral_high);
  const std::uint32_t n = high - low + 1;
  const std::uint32_t start = static_cast<std::uint32_t>(random.below(n));
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto port = static_cast<std::uint16_t>(low + (start + i) % n);
    if (!port_in_use(h, proto, port)) return port;
  }
  return std::nullopt;
}

namespace {

class SimTimer final : public net::Timer {
public:
  explicit SimTimer(SimWorld::Impl& w) : w_(w) {}
  ~SimTimer() override { cancel(); }

  void start(Duration delay, std::function<void()> handler) override {
    cancel();
    handler_ = std::move(handler);
    pending_ = true;
    event_ = w_.after(delay, [this] {
      pending_ = false;
      event_ = 0;
      auto h = std::move(handler_);
      handler_ = nullptr;
      h();
    });
  }

  void cancel() override {
    if (pending_) w_.queue.cancel(event_);
    pending_ = false;
    event_ = 0;
    handler_ = nullptr;
  }

  bool pending() const override { return pending_; }

private:
  SimWorld::Impl& w_;
  EventId event_ = 0;
  bool pending_ = false;
  std::function<void()> handler_;
};

class SimClock final : public net::Clock {
public:
  explicit SimClock(SimWorld::Impl& w) : w_(w) {}
  TimePoint now() const override { return w_.now(); }
  std::unique_ptr<net::Timer> make_timer() override { return std::make_unique<SimTimer>(w_); }
  void post(std::function<void()> fn) override { w_.after(Duration{0}, std::move(fn)); }
  /// 2026-01-01T00:00:00Z plus virtual time: fixed, so runs stay reproducible.
  std::chrono::system_clock::time_point wall_now() const override {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1767225600)) +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(w_.now().time_since_epoch());
  }

private:
  SimWorld::Impl& w_;
};

/// A resolution in flight: one event that delivers the answer, cancelled with the handle.
class SimResolve final : public net::PendingOperation {
public:
  SimResolve(SimWorld::Impl& w, Duration delay, net::Result<std::vector<Endpoint>> answer, net::ResolveHandler handler)
      : w_(w), state_(std::make_shared<State>(State{std::move(handler), true})) {
    event_ = w.after(delay, [s = state_, answer = std::move(answer)]() mutable {
      s->pending = false;
      auto h = std::move(s->handler);
      h(std::move(answer));
    });
  }
  ~SimResolve() override {
    if (state_->pending) w_.queue.cancel(event_);
  }

private:
  struct State {
    net::ResolveHandler handler;
    bool pending;
  };
  SimWorld::Impl& w_;
  std::shared_ptr<State> state_;
  EventId event_ = 0;
};

class SimStack final : public net::NetworkStack {
public:
  SimStack(SimWorld::Impl& w, Host& h) : w_(w), h_(h), clock_(w) {}

  net::Clock& clock() override { return clock_; }

  std::unique_ptr<net::PendingOperation> resolve(const std::string& host, const std::string& service,
                                                 const net::ResolveHints& hints, net::ResolveHandler handler) override {
    if (auto literal = net::resolve_literal(host, service, hints)) {
      return std::make_unique<SimResolve>(w_, Duration{0}, std::move(*literal), std::move(handler));
    }
    auto [delay, result] = w_.resolve_name(h_, host, hints.family, *net::parse_service(service));
    std::string list;
    if (result) {
      for (const auto& e : *result) list += (list.empty() ? "" : " ") + e.address.to_string();
    }
    w_.trace(
        h_, "resolve",
        "\"name\":" + json_string(host) +
            (hints.family ? ",\"family\":" + json_string(std::string(net::to_string(*hints.family))) : std::string()) +
            ",\"result\":" + json_string(result ? list : result.error().message()));
    return std::make_unique<SimResolve>(w_, delay, std::move(result), std::move(handler));
  }

  std::vector<Endpoint> sort_destinations(const std::string& name, std::vector<Endpoint> destinations) override {
    return w_.sort_destinations(h_, name, std::move(destinations));
  }

  net::Result<std::vector<net::InterfaceAddress>> interface_addresses() override {
    std::vector<net::InterfaceAddress> out;
    for (const auto& i : h_.interfaces) {
      for (const auto& p : i->addresses) out.push_back({i->name, p, i->up});
    }
    return out;
  }

  net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram(Family family) override {
    if (!h_.alive) return errc(std::errc::network_down);
    return make_udp_socket(w_, h_, family);
  }

  net::Result<std::unique_ptr<net::StreamSocket>> open_stream(Family family) override {
    if (!h_.alive) return errc(std::errc::network_down);
    return make_stream_socket(w_, h_, family);
  }

  net::Result<std::unique_ptr<net::Listener>> listen(const Endpoint& local,
                                                     const net::ListenOptions& options) override {
    if (!h_.alive) return errc(std::errc::network_down);
    return make_listener(w_, h_, local, options);
  }

  std::uint64_t random() override { return w_.random.next(); }

private:
  SimWorld::Impl& w_;
  Host& h_;
  SimClock clock_;
};

}  // namespace

std::unique_ptr<net::NetworkStack> make_sim_stack(SimWorld::Impl& w, Host& h) {
  return std::make_unique<SimStack>(w, h);
}

}  // namespace duet::sim
