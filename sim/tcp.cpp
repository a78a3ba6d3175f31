// Simulated TCP, as far as dual stack and failure handling need it: the three-way
// handshake with Linux's SYN back-off (1, 2, 4... s, tcp_syn_retries), RST for closed
// ports, ICMP errors during connect as Linux treats them per family, reliable in-order
// delivery with retransmission (no congestion control), FIN and RST.
#include <algorithm>

#include "duet/net/error.hpp"
#include "world_impl.hpp"

namespace duet::sim {

using net::errc;

namespace {

bool seq_lt(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }
bool seq_le(std::uint32_t a, std::uint32_t b) { return !seq_lt(b, a); }

constexpr Duration kMinRto = std::chrono::milliseconds(200);
constexpr Duration kMaxRto = std::chrono::seconds(120);
constexpr Duration kConnectCallBusy = std::chrono::microseconds(50);  // see icmp()
constexpr int kDataRetries = 15;                                      // net.ipv4.tcp_retries2
constexpr int kSynAckRetries = 5;                                     // net.ipv4.tcp_synack_retries
constexpr std::size_t kMaxRead = 65536;

}  // namespace

bool tcp_port_taken(const Host& h, const PortClaim& claim, std::uint16_t port, const void* self) {
  for (const auto& [id, s] : h.tcp) {
    if (s.get() == self || !s->claims_port || s->port != port) continue;
    if (claims_overlap(s->claim(), claim)) return true;
  }
  return false;
}

namespace {

/// The engine of one host's TCP: everything that touches TcpSock state.
class Tcp {
public:
  Tcp(SimWorld::Impl& w, Host& h) : w_(w), h_(h) {}

  TcpSock* find(std::uint64_t id) {
    auto it = h_.tcp.find(id);
    return it == h_.tcp.end() ? nullptr : it->second.get();
  }

  void send_segment(TcpSock& s, std::uint8_t flags, std::uint32_t seq, std::vector<std::uint8_t> data = {}) {
    Packet p;
    p.proto = Proto::tcp;
    p.src = s.wire_local;
    p.dst = s.wire_remote;
    p.sport = s.port;
    p.dport = s.remote.port;
    p.flags = flags;
    p.seq = seq;
    p.ack = (flags & tcp_flag::ack) ? s.rcv_nxt : 0;
    p.payload = std::move(data);
    (void)w_.output(h_, std::move(p));
  }

  void transmit(TcpSock& s, const Segment& seg) {
    std::uint8_t flags = tcp_flag::ack;
    if (seg.syn) flags |= tcp_flag::syn;
    if (seg.fin) flags |= tcp_flag::fin;
    if (!seg.data.empty()) flags |= tcp_flag::psh;
    send_segment(s, flags, seg.seq, seg.data);
  }

  void remove(TcpSock& s) {
    cancel_timers(s);
    h_.tcp.erase(s.id);
  }

  void cancel_timers(TcpSock& s) {
    for (EventId* e : {&s.syn_timer, &s.user_timer, &s.rto_timer}) {
      if (*e != 0) w_.queue.cancel(*e);
      *e = 0;
    }
  }

  EventId schedule(TcpSock& s, Duration d, void (Tcp::*what)(std::uint64_t)) {
    Host* hp = &h_;
    SimWorld::Impl* wp = &w_;
    const auto inc = h_.incarnation;
    const auto id = s.id;
    return w_.after(d, [wp, hp, inc, id, what] {
      if (hp->incarnation != inc) return;
      Tcp tcp(*wp, *hp);
      (tcp.*what)(id);
    });
  }

  // --- connecting ---------------------------------------------------------------------

  void connect_failed(TcpSock& s, std::error_code ec) {
    w_.trace(h_, "tcp-connect-failed",
             "\"socket\":" + std::to_string(s.id) + ",\"remote\":" + json_string(s.remote.to_string()) +
                 ",\"errno\":" + json_string(net::error_name(ec)));
    cancel_timers(s);
    s.state = TcpState::closed;
    s.error = ec;
    auto h = std::move(s.connect_handler);
    s.connect_handler = nullptr;
    if (h) h(ec);
  }

  void syn_timeout(std::uint64_t id) {
    TcpSock* s = find(id);
    if (s == nullptr || s->state != TcpState::syn_sent) return;
    s->syn_timer = 0;
    if (s->syn_sent_count > h_.settings.tcp_syn_retries) {
      connect_failed(*s, s->soft_error ? s->soft_error : errc(std::errc::timed_out));
      return;
    }
    s->syn_rto *= 2;
    send_syn(*s);
  }

  void send_syn(TcpSock& s) {
    ++s.syn_sent_count;
    s.last_syn = w_.now();
    send_segment(s, tcp_flag::syn, s.snd_una);
    s.syn_timer = schedule(s, s.syn_rto, &Tcp::syn_timeout);
  }

  void user_timeout(std::uint64_t id) {
    TcpSock* s = find(id);
    if (s == nullptr || s->state != TcpState::syn_sent) return;
    s->user_timer = 0;
    connect_failed(*s, errc(std::errc::timed_out));
  }

  // --- data ---------------------------------------------------------------------------

  void arm_rto(TcpSock& s) {
    if (s.rto_timer != 0) w_.queue.cancel(s.rto_timer);
    s.rto_timer = s.unacked.empty() ? 0 : schedule(s, s.rto, &Tcp::rto_timeout);
  }

  void rto_timeout(std::uint64_t id) {
    TcpSock* s = find(id);
    if (s == nullptr) return;
    s->rto_timer = 0;
    if (s->unacked.empty()) return;
    const int limit = s->state == TcpState::syn_received ? kSynAckRetries : kDataRetries;
    if (++s->retries > limit) {
      if (s->state == TcpState::syn_received || s->orphan) {
        remove(*s);
        return;
      }
      fail(*s, errc(std::errc::timed_out));
      return;
    }
    s->rto = std::min(s->rto * 2, kMaxRto);
    // Go-back-N: resend what is outstanding (the receiver keeps out-of-order data).
    std::size_t n = 0;
    for (const auto& seg : s->unacked) {
      if (seg.syn) {
        send_segment(*s, tcp_flag::syn | tcp_flag::ack, seg.seq);
      } else {
        transmit(*s, seg);
      }
      if (++n == 64) break;
    }
    arm_rto(*s);
  }

  void fail(TcpSock& s, std::error_code ec) {
    w_.trace(h_, "tcp-error", "\"socket\":" + std::to_string(s.id) + ",\"errno\":" + json_string(net::error_name(ec)));
    cancel_timers(s);
    s.state = TcpState::closed;
    s.error = ec;
    s.unacked.clear();
    for (auto& w : s.write_waiters) complete_write(std::move(w.second), ec);
    s.write_waiters.clear();
    if (s.orphan) {
      remove(s);
      return;
    }
    deliver_read(s);
  }

  void complete_write(net::WriteHandler h, std::error_code ec) {
    if (h) w_.after(Duration{0}, [h = std::move(h), ec] { h(ec); });
  }

  void queue_data(TcpSock& s, std::span<const std::uint8_t> data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const std::size_t n = std::min(s.mss, data.size() - off);
      Segment seg;
      seg.seq = s.snd_nxt;
      seg.data.assign(data.begin() + static_cast<std::ptrdiff_t>(off),
                      data.begin() + static_cast<std::ptrdiff_t>(off + n));
      s.snd_nxt += static_cast<std::uint32_t>(n);
      transmit(s, seg);
      s.unacked.push_back(std::move(seg));
      off += n;
    }
    if (s.rto_timer == 0) arm_rto(s);
  }

  void send_fin(TcpSock& s) {
    if (s.fin_sent) return;
    s.fin_sent = true;
    Segment seg;
    seg.seq = s.snd_nxt;
    seg.fin = true;
    s.snd_nxt += 1;
    transmit(s, seg);
    s.unacked.push_back(std::move(seg));
    if (s.rto_timer == 0) arm_rto(s);
  }

  void schedule_read(TcpSock& s) {
    if (s.read_scheduled || !s.read_handler) return;
    if (s.rx.empty() && !s.eof && !s.error) return;
    s.read_scheduled = true;
    Host* hp = &h_;
    SimWorld::Impl* wp = &w_;
    const auto inc = h_.incarnation;
    const auto id = s.id;
    w_.after(Duration{0}, [wp, hp, inc, id] {
      if (hp->incarnation != inc) return;
      Tcp tcp(*wp, *hp);
      if (TcpSock* sp = tcp.find(id)) {
        sp->read_scheduled = false;
        tcp.deliver_read(*sp);
      }
    });
  }

  void deliver_read(TcpSock& s) {
    if (!s.read_handler) return;
    if (!s.rx.empty()) {
      const std::size_t n = std::min(kMaxRead, s.rx.size());
      std::vector<std::uint8_t> chunk(s.rx.begin(), s.rx.begin() + static_cast<std::ptrdiff_t>(n));
      s.rx.erase(s.rx.begin(), s.rx.begin() + static_cast<std::ptrdiff_t>(n));
      auto h = std::move(s.read_handler);
      s.read_handler = nullptr;
      h({}, chunk);
    } else if (s.error) {
      auto h = std::move(s.read_handler);
      s.read_handler = nullptr;
      h(s.error, {});
    } else if (s.eof) {
      auto h = std::move(s.read_handler);
      s.read_handler = nullptr;
      h({}, {});
    }
  }

  // --- input --------------------------------------------------------------------------

  void reply_rst(const Packet& p) {
    if (p.flags & tcp_flag::rst) return;
    Packet r;
    r.proto = Proto::tcp;
    r.src = p.dst;
    r.dst = p.src;
    r.sport = p.dport;
    r.dport = p.sport;
    if (p.flags & tcp_flag::ack) {
      r.flags = tcp_flag::rst;
      r.seq = p.ack;
    } else {
      r.flags = tcp_flag::rst | tcp_flag::ack;
      r.ack = p.seq + static_cast<std::uint32_t>(p.payload.size()) + ((p.flags & tcp_flag::syn) ? 1 : 0) +
              ((p.flags & tcp_flag::fin) ? 1 : 0);
    }
    (void)w_.output(h_, std::move(r));
  }

  TcpSock* find_connection(const Packet& p) {
    for (auto& [id, s] : h_.tcp) {
      if (s->state == TcpState::listen || s->state == TcpState::closed) continue;
      if (s->port == p.dport && s->remote.port == p.sport && s->wire_local == p.dst && s->wire_remote == p.src) {
        return s.get();
      }
    }
    return nullptr;
  }

  TcpSock* find_listener(const Packet& p) {
    TcpSock* best = nullptr;
    for (auto& [id, s] : h_.tcp) {
      if (s->state != TcpState::listen || s->port != p.dport) continue;
      bool ok = false;
      if (p.dst.is_v4()) {
        if (s->family == Family::v4)
          ok = s->local.is_unspecified() || s->local == p.dst;
        else
          ok = !s->v6only && (s->local.is_unspecified() || s->local == p.dst.v4_mapped());
      } else {
        ok = s->family == Family::v6 && (s->local.is_unspecified() || s->local == p.dst);
      }
      if (!ok) continue;
      if (best == nullptr || (best->local.is_unspecified() && !s->local.is_unspecified())) {
        best = s.get();
      }
    }
    return best;
  }

  void input(const std::shared_ptr<Packet>& pp) {
    const Packet& p = *pp;
    if (TcpSock* s = find_connection(p)) {
      segment_arrives(*s, p);
      return;
    }
    if ((p.flags & (tcp_flag::syn | tcp_flag::ack | tcp_flag::rst)) == tcp_flag::syn) {
      if (TcpSock* l = find_listener(p)) {
        syn_arrives(*l, p);
        return;
      }
    }
    w_.trace_packet(h_, "drop", p, "no TCP socket: RST");
    reply_rst(p);
  }

  void syn_arrives(TcpSock& l, const Packet& p) {
    std::size_t pending = l.accept_queue.size();
    for (auto& [id, s] : h_.tcp) {
      if (s->parent == l.id && s->state == TcpState::syn_received) ++pending;
    }
    // Like sk_acceptq_is_full(): the queue may hold backlog + 1 connections.
    if (pending > static_cast<std::size_t>(std::max(0, l.backlog))) {
      w_.trace_packet(h_, "drop", p, "listen backlog full");
      return;
    }
    auto c = std::make_unique<TcpSock>();
    c->id = h_.next_socket_id++;
    c->family = l.family;
    c->v6only = l.v6only;
    c->port = p.dport;
    c->local = socket_view(l.family, p.dst);
    c->remote = Endpoint{socket_view(l.family, p.src), p.sport};
    c->wire_local = p.dst;
    c->wire_remote = p.src;
    c->state = TcpState::syn_received;
    c->parent = l.id;
    c->rcv_nxt = p.seq + 1;
    c->snd_una = static_cast<std::uint32_t>(w_.random.next());
    c->snd_nxt = c->snd_una + 1;
    c->mss = mss_towards(p.src);
    Segment syn;
    syn.seq = c->snd_una;
    syn.syn = true;
    c->unacked.push_back(syn);
    TcpSock& ref = *c;
    h_.tcp[c->id] = std::move(c);
    send_segment(ref, tcp_flag::syn | tcp_flag::ack, ref.snd_una);
    ref.last_syn = w_.now();
    arm_rto(ref);
  }

  std::size_t mss_towards(const Address& dst) { return w_.path_mtu(h_, dst) - ip_header_size(dst.family()) - 20; }

  void established(TcpSock& s) {
    s.state = TcpState::established;
    s.retries = 0;
    w_.trace(h_, "tcp-established",
             "\"socket\":" + std::to_string(s.id) + ",\"local\":" + json_string(Endpoint{s.local, s.port}.to_string()) +
                 ",\"remote\":" + json_string(s.remote.to_string()));
  }

  void segment_arrives(TcpSock& s, const Packet& p) {
    if (p.flags & tcp_flag::rst) {
      if (s.state == TcpState::syn_sent) {
        if ((p.flags & tcp_flag::ack) && p.ack == s.snd_nxt) {
          connect_failed(s, errc(std::errc::connection_refused));
        }
        return;
      }
      if (s.state == TcpState::syn_received) {
        remove(s);
        return;
      }
      fail(s, errc(std::errc::connection_reset));
      return;
    }
    if (s.state == TcpState::syn_sent) {
      if ((p.flags & tcp_flag::syn) && (p.flags & tcp_flag::ack) && p.ack == s.snd_nxt) {
        const Duration rtt = w_.now() - s.last_syn;
        cancel_timers(s);
        s.snd_una = p.ack;
        s.rcv_nxt = p.seq + 1;
        s.rto = std::max(kMinRto, rtt * 3);
        established(s);
        send_segment(s, tcp_flag::ack, s.snd_nxt);
        auto h = std::move(s.connect_handler);
        s.connect_handler = nullptr;
        if (h) h({});
      }
      return;
    }
    if (s.state == TcpState::syn_received) {
      if (p.flags & tcp_flag::syn) {  // our SYN-ACK was lost: say it again
        send_segment(s, tcp_flag::syn | tcp_flag::ack, s.snd_una);
        return;
      }
      if (!(p.flags & tcp_flag::ack) || p.ack != s.snd_una + 1) return;
      // Linux times the SYN-ACK too (tcp_synack_rtt_meas): the passive side's first
      // retransmission timeout follows the path, not the 1 s initial value.
      if (s.retries == 0) s.rto = std::max(kMinRto, (w_.now() - s.last_syn) * 3);
      s.unacked.clear();
      s.snd_una = p.ack;
      arm_rto(s);
      established(s);
      if (TcpSock* l = find(s.parent); l != nullptr && l->state == TcpState::listen) {
        l->accept_queue.push_back(s.id);
        schedule_accept(*l);
      }
      s.parent = 0;
    }
    if (s.state != TcpState::established) return;
    if ((p.flags & tcp_flag::syn)) {  // a retransmitted SYN-ACK: our ACK was lost
      send_segment(s, tcp_flag::ack, s.snd_nxt);
      return;
    }
    const std::uint64_t id = s.id;  // process_ack may free an orphan whose FIN was acked
    if (p.flags & tcp_flag::ack) process_ack(s, p.ack);
    if (h_.tcp.count(id) == 0) return;
    process_data(s, p);
  }

  void process_ack(TcpSock& s, std::uint32_t ack) {
    if (!seq_lt(s.snd_una, ack) || seq_lt(s.snd_nxt, ack)) return;
    s.snd_una = ack;
    while (!s.unacked.empty()) {
      const Segment& f = s.unacked.front();
      if (!seq_le(f.seq + f.length(), ack)) break;
      s.unacked.pop_front();
    }
    s.retries = 0;
    arm_rto(s);
    while (!s.write_waiters.empty() && seq_le(s.write_waiters.front().first, ack)) {
      complete_write(std::move(s.write_waiters.front().second), {});
      s.write_waiters.pop_front();
    }
    if (s.orphan && s.fin_sent && s.unacked.empty()) remove(s);
  }

  void process_data(TcpSock& s, const Packet& p) {
    const bool fin = (p.flags & tcp_flag::fin) != 0;
    if (p.payload.empty() && !fin) return;
    if (seq_lt(s.rcv_nxt, p.seq)) {
      Segment seg;
      seg.seq = p.seq;
      seg.data = p.payload;
      seg.fin = fin;
      s.out_of_order.emplace(p.seq, std::move(seg));
    } else if (p.seq == s.rcv_nxt) {
      accept_in_order(s, p.payload, fin);
      // Drain what was waiting for this segment.
      for (auto it = s.out_of_order.begin(); it != s.out_of_order.end();) {
        if (it->first == s.rcv_nxt) {
          accept_in_order(s, it->second.data, it->second.fin);
          it = s.out_of_order.erase(it);
          it = s.out_of_order.begin();
        } else if (seq_lt(it->first, s.rcv_nxt)) {
          it = s.out_of_order.erase(it);
        } else {
          ++it;
        }
      }
    }
    send_segment(s, tcp_flag::ack, s.snd_nxt);
    if (s.orphan && !s.rx.empty()) {
      // Data for a socket nobody will read: Linux answers with RST.
      send_segment(s, tcp_flag::rst | tcp_flag::ack, s.snd_nxt);
      remove(s);
      return;
    }
    schedule_read(s);
  }

  void accept_in_order(TcpSock& s, const std::vector<std::uint8_t>& data, bool fin) {
    if (s.eof) return;
    s.rx.insert(s.rx.end(), data.begin(), data.end());
    s.rcv_nxt += static_cast<std::uint32_t>(data.size());
    if (fin) {
      s.rcv_nxt += 1;
      s.eof = true;
    }
  }

  void schedule_accept(TcpSock& l) {
    if (!l.accept_handler || l.accept_queue.empty()) return;
    Host* hp = &h_;
    SimWorld::Impl* wp = &w_;
    const auto inc = h_.incarnation;
    const auto id = l.id;
    w_.after(Duration{0}, [wp, hp, inc, id] {
      if (hp->incarnation != inc) return;
      Tcp tcp(*wp, *hp);
      tcp.deliver_accept(id);
    });
  }

  void deliver_accept(std::uint64_t listener_id);

  void icmp(const Packet& icmp) {
    const Packet& q = *icmp.quoted;
    TcpSock* s = nullptr;
    for (auto& [id, sock] : h_.tcp) {
      if (sock->state != TcpState::listen && sock->port == q.sport && sock->remote.port == q.dport &&
          sock->wire_remote == q.dst) {
        s = sock.get();
        break;
      }
    }
    if (s == nullptr) return;
    const bool v4 = icmp.family() == Family::v4;
    const std::error_code ec = icmp_meaning(icmp).error;
    if (!ec) return;  // time exceeded and the like: soft
    if (s->state != TcpState::syn_sent) {
      s->soft_error = ec;  // an established connection rides out ICMP errors
      return;
    }
    // Linux (tcp_v6_err) takes an error in SYN-SENT as fatal unless the socket is busy in
    // the connect() call that sent the SYN: then it is soft, and the retransmission's error
    // (~1 s later) ends it. Only an error back within microseconds finds it busy: measured
    // on veths without delay (KERNEL-FACTS.md, ~1 s); through the testbed's link emulator
    // (5 ms links) the first error ends the connect at once. IPv4 gives up on the first.
    if (!v4 && s->syn_sent_count <= 1 && w_.now() - s->last_syn < kConnectCallBusy) {
      s->soft_error = ec;
      w_.trace(h_, "tcp-soft-error",
               "\"socket\":" + std::to_string(s->id) + ",\"errno\":" + json_string(net::error_name(ec)));
      return;
    }
    connect_failed(*s, ec);
  }

private:
  SimWorld::Impl& w_;
  Host& h_;
};

class SimStreamSocket final : public net::StreamSocket {
public:
  SimStreamSocket(SimWorld::Impl& w, Host& h, Family family)
      : w_(w), h_(h), incarnation_(h.incarnation), family_(family) {
    auto s = std::make_unique<TcpSock>();
    s->id = h.next_socket_id++;
    s->family = family;
    s->v6only = family == Family::v6 && h.settings.bindv6only;
    s->local = Address::any(family);
    id_ = s->id;
    h.tcp[id_] = std::move(s);
  }
  /// Takes over an accepted connection.
  SimStreamSocket(SimWorld::Impl& w, Host& h, TcpSock& accepted)
      : w_(w), h_(h), incarnation_(h.incarnation), id_(accepted.id), family_(accepted.family) {}
  ~SimStreamSocket() override { close(); }

  Family family() const override { return family_; }

  std::error_code bind(const Endpoint& local) override {
    TcpSock* s = sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    if (local.family() != family_) return errc(std::errc::address_family_not_supported);
    if (s->claims_port || s->state != TcpState::closed) return errc(std::errc::invalid_argument);
    if (auto ec = w_.check_bind_address(h_, family_, s->v6only, local.address)) return ec;
    PortClaim claim{family_, local.address, s->v6only};
    std::uint16_t port = local.port;
    if (port == 0) {
      auto p = w_.ephemeral_port(h_, Proto::tcp, claim);
      if (!p) return errc(std::errc::address_in_use);
      port = *p;
    } else if (!w_.port_free(h_, Proto::tcp, claim, port, s)) {
      return errc(std::errc::address_in_use);
    }
    s->local = local.address;
    s->port = port;
    s->claims_port = true;
    return {};
  }

  void connect(const Endpoint& remote, Duration timeout, net::ConnectHandler handler) override {
    TcpSock* s = sock();
    if (s == nullptr) return post(std::move(handler), errc(std::errc::bad_file_descriptor));
    if (s->state != TcpState::closed || s->error) {
      return post(std::move(handler), errc(std::errc::already_connected));
    }
    if (remote.family() != family_) {
      return post(std::move(handler), errc(std::errc::address_family_not_supported));
    }
    Address dst = remote.address;
    if (family_ == Family::v6 && dst.is_v4_mapped()) {
      if (s->v6only || (!s->local.is_unspecified() && !s->local.is_v4_mapped())) {
        return post(std::move(handler), errc(std::errc::network_unreachable));
      }
      dst = dst.unmapped();
    }
    s->remote = remote;
    w_.trace(h_, "tcp-connect",
             "\"socket\":" + std::to_string(s->id) + ",\"remote\":" + json_string(remote.to_string()));
    if (auto ec = w_.local_route_error(h_, dst)) {
      s->error = ec;
      w_.trace(h_, "tcp-connect-failed",
               "\"socket\":" + std::to_string(s->id) + ",\"errno\":" + json_string(net::error_name(ec)));
      return post(std::move(handler), ec);
    }
    std::optional<Address> src;
    if (!s->local.is_unspecified())
      src = s->local.unmapped();
    else
      src = w_.select_source(h_, dst);
    if (!src) return post(std::move(handler), errc(std::errc::address_not_available));
    if (!s->claims_port) {
      auto p = w_.ephemeral_port(h_, Proto::tcp, s->claim());
      if (!p) return post(std::move(handler), errc(std::errc::address_not_available));
      s->port = *p;
      s->claims_port = true;
    }
    if (s->local.is_unspecified()) s->local = socket_view(family_, *src);
    s->wire_local = *src;
    s->wire_remote = dst;
    s->state = TcpState::syn_sent;
    s->snd_una = static_cast<std::uint32_t>(w_.random.next());
    s->snd_nxt = s->snd_una + 1;
    s->connect_handler = std::move(handler);
    Tcp tcp(w_, h_);
    s->mss = tcp.mss_towards(dst);
    tcp.send_syn(*s);
    s->user_timer = tcp.schedule(*s, timeout, &Tcp::user_timeout);
  }

  void read_some(net::ReadHandler handler) override {
    TcpSock* s = sock();
    if (s == nullptr) {
      w_.after(Duration{0}, [h = std::move(handler)] { h(errc(std::errc::bad_file_descriptor), {}); });
      return;
    }
    if (s->state == TcpState::closed && !s->error && !s->eof) {
      w_.after(Duration{0}, [h = std::move(handler)] { h(errc(std::errc::not_connected), {}); });
      return;
    }
    s->read_handler = std::move(handler);
    Tcp(w_, h_).schedule_read(*s);
  }

  void write(std::span<const std::uint8_t> data, net::WriteHandler handler) override {
    TcpSock* s = sock();
    std::error_code ec;
    if (s == nullptr)
      ec = errc(std::errc::bad_file_descriptor);
    else if (s->error)
      ec = s->error;
    else if (s->state != TcpState::established)
      ec = errc(std::errc::not_connected);
    else if (s->fin_sent)
      ec = errc(std::errc::broken_pipe);
    if (ec) return post(std::move(handler), ec);
    Tcp(w_, h_).queue_data(*s, data);
    s->write_waiters.emplace_back(s->snd_nxt, std::move(handler));
  }

  std::size_t queued() const override {
    const TcpSock* s = const_cast<SimStreamSocket*>(this)->sock();
    std::size_t n = 0;
    if (s != nullptr) {
      for (const auto& seg : s->unacked) n += seg.data.size();
    }
    return n;
  }

  std::error_code shutdown_send() override {
    TcpSock* s = sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    if (s->state != TcpState::established) return errc(std::errc::not_connected);
    Tcp(w_, h_).send_fin(*s);
    return {};
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    TcpSock* s = find();
    if (s == nullptr) return;
    Tcp tcp(w_, h_);
    s->read_handler = nullptr;
    s->write_waiters.clear();
    s->connect_handler = nullptr;
    if (s->state == TcpState::established && !s->rx.empty()) {
      tcp.send_segment(*s, tcp_flag::rst | tcp_flag::ack, s->snd_nxt);  // unread data: RST
      tcp.remove(*s);
    } else if (s->state == TcpState::established) {
      w_.trace(h_, "tcp-close", "\"socket\":" + std::to_string(s->id));
      tcp.send_fin(*s);
      s->orphan = true;
    } else {
      tcp.remove(*s);
    }
  }

  void reset() override {
    if (closed_) return;
    closed_ = true;
    TcpSock* s = find();
    if (s == nullptr) return;
    s->write_waiters.clear();
    Tcp tcp(w_, h_);
    if (s->state == TcpState::established || s->state == TcpState::syn_received) {
      w_.trace(h_, "tcp-reset", "\"socket\":" + std::to_string(s->id));
      tcp.send_segment(*s, tcp_flag::rst | tcp_flag::ack, s->snd_nxt);
    }
    tcp.remove(*s);
  }

  net::Result<Endpoint> local_endpoint() const override {
    const TcpSock* s = const_cast<SimStreamSocket*>(this)->sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    return Endpoint{s->local, s->port};
  }

  net::Result<Endpoint> remote_endpoint() const override {
    const TcpSock* s = const_cast<SimStreamSocket*>(this)->sock();
    if (s == nullptr) return errc(std::errc::bad_file_descriptor);
    if (s->state != TcpState::established) return errc(std::errc::not_connected);
    return s->remote;
  }

private:
  TcpSock* find() {
    if (h_.incarnation != incarnation_) return nullptr;
    auto it = h_.tcp.find(id_);
    return it == h_.tcp.end() ? nullptr : it->second.get();
  }
  TcpSock* sock() { return closed_ ? nullptr : find(); }

  template <typename Handler>
  void post(Handler handler, std::error_code ec) {
    w_.after(Duration{0}, [h = std::move(handler), ec] { h(ec); });
  }

  SimWorld::Impl& w_;
  Host& h_;
  std::uint64_t incarnation_;
  std::uint64_t id_ = 0;
  Family family_;
  bool closed_ = false;
};

void Tcp::deliver_accept(std::uint64_t listener_id) {
  TcpSock* l = find(listener_id);
  if (l == nullptr || !l->accept_handler) return;
  while (!l->accept_queue.empty()) {
    const auto child_id = l->accept_queue.front();
    l->accept_queue.pop_front();
    TcpSock* c = find(child_id);
    if (c == nullptr) continue;  // reset before it was accepted
    w_.trace(h_, "tcp-accept",
             "\"socket\":" + std::to_string(c->id) + ",\"remote\":" + json_string(c->remote.to_string()));
    auto h = std::move(l->accept_handler);
    l->accept_handler = nullptr;
    h({}, std::make_unique<SimStreamSocket>(w_, h_, *c));
    return;
  }
}

class SimListener final : public net::Listener {
public:
  SimListener(SimWorld::Impl& w, Host& h, std::uint64_t id) : w_(w), h_(h), incarnation_(h.incarnation), id_(id) {}
  ~SimListener() override { close(); }

  void accept(net::AcceptHandler handler) override {
    TcpSock* l = sock();
    if (l == nullptr) {
      w_.after(Duration{0}, [h = std::move(handler)] { h(errc(std::errc::bad_file_descriptor), nullptr); });
      return;
    }
    l->accept_handler = std::move(handler);
    Tcp(w_, h_).schedule_accept(*l);
  }

  net::Result<Endpoint> local_endpoint() const override {
    const TcpSock* l = const_cast<SimListener*>(this)->sock();
    if (l == nullptr) return errc(std::errc::bad_file_descriptor);
    return Endpoint{l->local, l->port};
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    if (h_.incarnation != incarnation_) return;
    Tcp tcp(w_, h_);
    TcpSock* l = tcp.find(id_);
    if (l == nullptr) return;
    // Connections nobody accepted are reset, as the kernel does when a listener closes.
    std::vector<std::uint64_t> children(l->accept_queue.begin(), l->accept_queue.end());
    for (auto& [id, s] : h_.tcp) {
      if (s->parent == id_) children.push_back(id);
    }
    for (auto cid : children) {
      if (TcpSock* c = tcp.find(cid)) {
        tcp.send_segment(*c, tcp_flag::rst | tcp_flag::ack, c->snd_nxt);
        tcp.remove(*c);
      }
    }
    w_.trace(h_, "tcp-unlisten", "\"socket\":" + std::to_string(id_));
    tcp.remove(*l);
  }

private:
  TcpSock* sock() {
    if (closed_ || h_.incarnation != incarnation_) return nullptr;
    auto it = h_.tcp.find(id_);
    return it == h_.tcp.end() ? nullptr : it->second.get();
  }

  SimWorld::Impl& w_;
  Host& h_;
  std::uint64_t incarnation_;
  std::uint64_t id_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<net::StreamSocket> make_stream_socket(SimWorld::Impl& w, Host& h, Family family) {
  return std::make_unique<SimStreamSocket>(w, h, family);
}

net::Result<std::unique_ptr<net::Listener>> make_listener(SimWorld::Impl& w, Host& h, const Endpoint& local,
                                                          const net::ListenOptions& options) {
  const Family family = local.family();
  const bool v6only = family == Family::v6 && options.v6only.value_or(h.settings.bindv6only);
  auto result = [&](std::error_code ec) {
    w.trace(h, "tcp-listen",
            "\"local\":" + json_string(local.to_string()) + ",\"v6only\":" + (v6only ? "true" : "false") +
                ",\"result\":" + json_string(net::error_name(ec)));
  };
  if (auto ec = w.check_bind_address(h, family, v6only, local.address)) {
    result(ec);
    return ec;
  }
  PortClaim claim{family, local.address, v6only};
  std::uint16_t port = local.port;
  if (port == 0) {
    auto p = w.ephemeral_port(h, Proto::tcp, claim);
    if (!p) return errc(std::errc::address_in_use);
    port = *p;
  } else if (!w.port_free(h, Proto::tcp, claim, port, nullptr)) {
    result(errc(std::errc::address_in_use));
    return errc(std::errc::address_in_use);
  }
  auto s = std::make_unique<TcpSock>();
  s->id = h.next_socket_id++;
  s->family = family;
  s->v6only = v6only;
  s->local = local.address;
  s->port = port;
  s->claims_port = true;
  s->state = TcpState::listen;
  s->backlog = options.backlog;
  const auto id = s->id;
  h.tcp[id] = std::move(s);
  result({});
  return std::unique_ptr<net::Listener>(std::make_unique<SimListener>(w, h, id));
}

void SimWorld::Impl::tcp_input(Host& h, const std::shared_ptr<Packet>& p) { Tcp(*this, h).input(p); }
void SimWorld::Impl::tcp_icmp(Host& h, const Packet& icmp) { Tcp(*this, h).icmp(icmp); }

}  // namespace duet::sim
