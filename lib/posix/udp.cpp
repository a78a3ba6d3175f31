// UDP sockets on the kernel.
//
// Receiving: one recvmmsg fills up to kReceiveSlots buffers; with UDP_GRO each may hold
// many datagrams of one sender (cut by the kernel's gso_size). They are handed out one per
// receive() call, in a loop rather than one trip through the io_context each.
// Sending: send_soon() queues into one byte arena (send_soon_filled() lets the caller
// write the datagram there in place); at the end of the turn the queue goes
// out in sendmmsg calls, runs of equal-sized datagrams to one destination as one UDP GSO
// message. EAGAIN waits for the socket to be writable, and tells the on_blocked() handler
// (backpressure: the node stops reading its TUN) until everything held has gone; past
// kMaxQueuedDatagrams more is dropped. A kernel that refuses GSO (EIO: the route's device
// cannot checksum) gets plain datagrams from then on.
// Addresses: receive_to() turns on IP_PKTINFO / IPV6_RECVPKTINFO and reports where each
// datagram arrived; send_soon_from() puts the chosen source in an IP_PKTINFO /
// IPV6_PKTINFO message (an IPv4 one on a dual-stack socket as IPv4-mapped, which the
// kernel accepts there). A source the host lost fails (ENETUNREACH for IPv4, EINVAL for
// IPv6): those datagrams go again at once without it, so the kernel picks the source.
// IP_PKTINFO is turned on by the first receive_to(): datagrams queued before that report
// the unspecified address.
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <memory>
#include <tuple>

#include "asio_glue.hpp"
#include "byte_arena.hpp"

namespace duet::posix::detail {

namespace {

constexpr std::size_t kReceiveSlots = 16;
constexpr std::size_t kSlotBytes = 65536;
constexpr std::size_t kMaxGsoSegments = 64;
constexpr std::size_t kMaxGsoBytes = 65000;
constexpr std::size_t kMaxQueuedDatagrams = 4096;
constexpr std::size_t kMessagesPerCall = 64;
// Room for UDP_GRO / UDP_SEGMENT and a packet-info message side by side.
constexpr std::size_t kControlBytes = CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(in6_pktinfo));

/// The local address of a received datagram from its IP_PKTINFO / IPV6_PKTINFO message.
bool read_pktinfo(const cmsghdr& c, Address& to) {
  if (c.cmsg_level == IPPROTO_IP && c.cmsg_type == IP_PKTINFO) {
    in_pktinfo info{};
    std::memcpy(&info, CMSG_DATA(&c), sizeof info);
    to = Address::v4(ntohl(info.ipi_spec_dst.s_addr));  // the local address (ipi_addr may be a broadcast)
    return true;
  }
  if (c.cmsg_level == IPPROTO_IPV6 && c.cmsg_type == IPV6_PKTINFO) {
    in6_pktinfo info{};
    std::memcpy(&info, CMSG_DATA(&c), sizeof info);
    Address::Bytes b{};
    std::memcpy(b.data(), &info.ipi6_addr, 16);
    to = Address::v6(b);
    if (to.is_link_local()) to = Address::v6(b, static_cast<std::uint32_t>(info.ipi6_ifindex));
    return true;
  }
  return false;
}

/// Appends a packet-info message that makes `source` the datagram's source address.
void write_pktinfo(msghdr& h, Family family, const Address& source) {
  // after the UDP_SEGMENT message, if any (each message takes CMSG_SPACE bytes)
  auto* c = reinterpret_cast<cmsghdr*>(static_cast<std::uint8_t*>(h.msg_control) + h.msg_controllen);
  if (family == Family::v4) {
    in_pktinfo info{};
    info.ipi_spec_dst.s_addr = htonl(source.unmapped().v4_value());
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof info);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
    h.msg_controllen += CMSG_SPACE(sizeof info);
    return;
  }
  const Address v6 = source.v4_mapped();
  in6_pktinfo info{};
  std::memcpy(&info.ipi6_addr, v6.bytes().data(), 16);
  info.ipi6_ifindex = v6.scope_id();
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof info);
  std::memcpy(CMSG_DATA(c), &info, sizeof info);
  h.msg_controllen += CMSG_SPACE(sizeof info);
}

class PosixDatagramSocket final : public net::DatagramSocket {
public:
  PosixDatagramSocket(asio::io_context& io, Family family, StackOptions options, std::shared_ptr<UdpCounters> counters)
      : family_(family), state_(std::make_shared<State>(io, family, options, std::move(counters))) {}
  ~PosixDatagramSocket() override { close(); }

  std::error_code open() {
    boost::system::error_code ec;
    state_->socket.open(protocol<udp>(family_), ec);
    if (!ec) state_->socket.non_blocking(true, ec);
    if (ec) return to_std(ec);
    const int fd = state_->socket.native_handle();
    // Room for bursts of super-packets (4 MiB unless set); the FORCE variants pass the
    // sysctl caps as root.
    const auto& o = state_->options;
    for (auto [force, plain, size] : {std::tuple{SO_SNDBUFFORCE, SO_SNDBUF, o.udp_send_buffer},
                                      std::tuple{SO_RCVBUFFORCE, SO_RCVBUF, o.udp_receive_buffer}}) {
      if (::setsockopt(fd, SOL_SOCKET, force, &size, sizeof size) != 0) {
        (void)::setsockopt(fd, SOL_SOCKET, plain, &size, sizeof size);
      }
    }
    auto& c = *state_->counters;
    if (!state_->options.udp_gso) {
      c.gso = "off (turned off by 'offload')";
    } else {
      int size = 0;
      socklen_t len = sizeof size;
      state_->gso = ::getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
      c.gso = state_->gso ? "on" : std::string("off (kernel: ") + std::strerror(errno) + ")";
    }
    if (!state_->options.udp_gro) {
      c.gro = "off (turned off by 'offload')";
    } else {
      const int on = 1;
      state_->gro = ::setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
      c.gro = state_->gro ? "on" : std::string("off (kernel: ") + std::strerror(errno) + ")";
    }
    return {};
  }

  Family family() const override { return family_; }

  std::error_code set_v6only(bool on) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    if (family_ == Family::v4) return net::errc(std::errc::no_protocol_option);
    boost::system::error_code ec;
    state_->socket.set_option(asio::ip::v6_only(on), ec);
    return to_std(ec);
  }

  std::error_code set_mark(std::uint32_t mark) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    if (::setsockopt(state_->socket.native_handle(), SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0)
      return {errno, std::generic_category()};
    return {};
  }

  std::error_code bind(const Endpoint& local) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    if (local.family() != family_) return net::errc(std::errc::address_family_not_supported);
    boost::system::error_code ec;
    state_->socket.bind(to_asio<udp>(local), ec);
    return to_std(ec);
  }

  std::error_code connect(const Endpoint& remote) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    boost::system::error_code ec;
    state_->socket.connect(to_asio<udp>(remote), ec);
    if (!ec) state_->connected = true;
    return to_std(ec);
  }

  Result<Endpoint> local_endpoint() const override {
    boost::system::error_code ec;
    auto ep = state_->socket.local_endpoint(ec);
    if (ec) return to_std(ec);
    return from_asio(ep);
  }

  std::error_code send_to(const Endpoint& remote, std::span<const std::uint8_t> data) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    boost::system::error_code ec;
    state_->socket.send_to(asio::buffer(data.data(), data.size()), to_asio<udp>(remote), 0, ec);
    ++state_->counters->send_calls;
    ++state_->counters->datagrams_sent;
    return to_std(ec);
  }

  std::error_code send(std::span<const std::uint8_t> data) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    boost::system::error_code ec;
    state_->socket.send(asio::buffer(data.data(), data.size()), 0, ec);
    ++state_->counters->send_calls;
    ++state_->counters->datagrams_sent;
    return to_std(ec);
  }

  void send_soon(const Endpoint& remote, std::span<const std::uint8_t> data) override {
    send_soon_from(Address::any(family_), remote, data);
  }

  void send_soon_from(const Address& source, const Endpoint& remote, std::span<const std::uint8_t> data) override {
    if (!may_queue()) return;
    auto& s = *state_;
    s.queue.push_back({remote, source, s.arena.size(), data.size()});
    s.arena.append(data);
    flush_soon();
  }

  void send_soon_filled(const Address& source, const Endpoint& remote, std::size_t capacity, net::Fill fill) override {
    if (!may_queue()) return;
    auto& s = *state_;
    const std::size_t at = s.arena.size();
    const std::size_t n = std::min(fill(s.arena.grow(capacity)), capacity);
    s.arena.shrink_to(at + n);
    if (n == 0) return;
    ++s.counters->datagrams_in_place;
    s.queue.push_back({remote, source, at, n});
    flush_soon();
  }

  /// Whether another datagram may join the queue (counted as dropped when not).
  bool may_queue() {
    auto& s = *state_;
    if (!s.socket.is_open()) return false;
    if (s.queue.size() >= kMaxQueuedDatagrams) {
      ++s.counters->send_dropped;  // the kernel is not keeping up: drop, as a full NIC queue does
      return false;
    }
    return true;
  }

  /// Sends the queue at the end of this turn (unless it is waiting for the kernel).
  void flush_soon() {
    auto& s = *state_;
    if (!s.flush_posted && !s.waiting_writable) {
      s.flush_posted = true;
      post_with_memory(s.socket, s.flush_memory, [weak = std::weak_ptr<State>(state_)] {
        if (auto st = weak.lock()) {
          st->flush_posted = false;
          flush(st);
        }
      });
    }
  }

  void receive(net::ReceiveHandler handler) override {
    auto s = state_;
    if (!s->socket.is_open()) {
      asio::post(s->socket.get_executor(),
                 [h = std::move(handler)] { h(net::errc(std::errc::bad_file_descriptor), Endpoint{}, {}); });
      return;
    }
    s->handler = std::move(handler);
    start_receive(s);
  }

  void receive_to(net::ReceiveToHandler handler) override {
    auto s = state_;
    if (!s->socket.is_open()) {
      asio::post(s->socket.get_executor(), [h = std::move(handler), any = Address::any(family_)] {
        h(net::errc(std::errc::bad_file_descriptor), Endpoint{}, any, {});
      });
      return;
    }
    note_destinations(*s);
    s->handler_to = std::move(handler);
    start_receive(s);
  }

  void receive_batch(bool destinations, net::ReceiveBatchHandler handler) override {
    auto s = state_;
    if (!s->socket.is_open()) {
      asio::post(s->socket.get_executor(),
                 [h = std::move(handler)] { h(net::errc(std::errc::bad_file_descriptor), {}); });
      return;
    }
    if (destinations) note_destinations(*s);
    s->handler_batch = std::move(handler);
    start_receive(s);
  }

  void on_blocked(std::function<void(bool)> handler) override { state_->blocked_handler = std::move(handler); }

  void close() override {
    auto& s = *state_;
    if (s.blocked && s.blocked_handler) s.blocked_handler(false);  // nothing is held any more
    s.blocked = false;
    s.blocked_handler = nullptr;
    s.handler = nullptr;
    s.handler_to = nullptr;
    s.handler_batch = nullptr;
    s.ready.clear();
    s.next = 0;
    s.ready_error = {};
    s.queue.clear();
    s.arena.clear();
    boost::system::error_code ignored;
    s.socket.close(ignored);
  }

private:
  struct Received {
    Endpoint from;
    Address to;
    std::size_t offset = 0, length = 0;
  };
  struct Queued {
    Endpoint to;
    Address from;  ///< unspecified: the kernel chooses
    std::size_t offset = 0, length = 0;
  };
  struct State {
    State(asio::io_context& io, Family f, StackOptions o, std::shared_ptr<UdpCounters> c)
        : socket(io), family(f), options(o), counters(std::move(c)) {}
    udp::socket socket;
    Family family;
    StackOptions options;
    std::shared_ptr<UdpCounters> counters;
    bool gso = false, gro = false, connected = false, pktinfo = false;
    std::size_t gso_max_segment = SIZE_MAX;    ///< larger messages failed a GSO send (path MTU)
    net::ReceiveHandler handler;               ///< set by receive(), or
    net::ReceiveToHandler handler_to;          ///< by receive_to(), or
    net::ReceiveBatchHandler handler_batch;    ///< by receive_batch()
    std::vector<net::ReceivedDatagram> batch;  ///< what receive_batch() hands over (capacity kept)
    [[nodiscard]] bool waiting() const { return handler || handler_to || handler_batch; }
    // received, not yet handed out
    /// Left uninitialised: the kernel writes what it delivers, and pages never written
    /// never become resident (zeroing 1 MiB cost the first datagram ~2 ms).
    std::unique_ptr<std::uint8_t[]> slots;
    std::vector<Received> ready;
    std::size_t next = 0;
    std::error_code ready_error;
    bool waiting_readable = false, delivering = false;
    // The recurring operations' memory (see HandlerMemory): nothing allocated per turn.
    std::shared_ptr<HandlerMemory> read_memory = std::make_shared<HandlerMemory>(),
                                   deliver_memory = std::make_shared<HandlerMemory>(),
                                   flush_memory = std::make_shared<HandlerMemory>(),
                                   writable_memory = std::make_shared<HandlerMemory>();
    // queued by send_soon
    ByteArena arena;
    std::vector<Queued> queue;
    std::size_t sent = 0;  ///< queue entries already sent
    bool flush_posted = false, waiting_writable = false;
    bool blocked = false;  ///< the kernel refused some of the queue (EAGAIN), not all of it has gone
    std::function<void(bool)> blocked_handler;
  };

  /// Turns on IP_PKTINFO / IPV6_RECVPKTINFO (receive_to and receive_batch report it).
  static void note_destinations(State& s) {
    if (s.pktinfo) return;
    const int on = 1;
    const int fd = s.socket.native_handle();
    s.pktinfo = s.family == Family::v4 ? ::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) == 0
                                       : ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) == 0;
  }

  static void start_receive(const std::shared_ptr<State>& s) {
    if (s->delivering) return;  // the delivery loop hands out the next one
    if (s->next < s->ready.size() || s->ready_error) {
      post_with_memory(s->socket, s->deliver_memory, [weak = std::weak_ptr<State>(s)] {
        if (auto st = weak.lock(); st && !st->delivering) deliver(st);
      });
      return;
    }
    wait_readable(s);
  }

  static void wait_readable(const std::shared_ptr<State>& s) {
    if (s->waiting_readable) return;
    s->waiting_readable = true;
    s->socket.async_wait(
        udp::socket::wait_read,
        with_memory(s->read_memory, [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec) {
          auto st = weak.lock();
          if (!st) return;
          st->waiting_readable = false;
          if (ec == asio::error::operation_aborted || !st->waiting()) return;
          if (ec) {
            st->ready_error = to_std(ec);
          } else {
            read_batch(*st);
          }
          deliver(st);
        }));
  }

  static void read_batch(State& s) {
    if (!s.slots) s.slots = std::make_unique_for_overwrite<std::uint8_t[]>(kReceiveSlots * kSlotBytes);
    std::array<mmsghdr, kReceiveSlots> msgs{};
    std::array<iovec, kReceiveSlots> iov{};
    std::array<udp::endpoint, kReceiveSlots> from{};
    alignas(cmsghdr) std::array<std::array<std::uint8_t, kControlBytes>, kReceiveSlots> control{};
    for (std::size_t i = 0; i < kReceiveSlots; ++i) {
      iov[i] = {s.slots.get() + i * kSlotBytes, kSlotBytes};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = from[i].data();
      msgs[i].msg_hdr.msg_namelen = static_cast<socklen_t>(from[i].capacity());
      msgs[i].msg_hdr.msg_control = control[i].data();
      msgs[i].msg_hdr.msg_controllen = control[i].size();
    }
    const int n = ::recvmmsg(s.socket.native_handle(), msgs.data(), kReceiveSlots, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) s.ready_error = {errno, std::generic_category()};
      return;
    }
    ++s.counters->receive_calls;
    s.ready.clear();
    s.next = 0;
    for (int i = 0; i < n; ++i) {
      const auto& h = msgs[static_cast<std::size_t>(i)].msg_hdr;
      if (h.msg_flags & MSG_TRUNC) continue;  // larger than any message of ours
      std::size_t segment = 0;
      Address to = Address::any(s.family);
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (read_pktinfo(*c, to)) continue;
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int size = 0;
          std::memcpy(&size, CMSG_DATA(c), sizeof size);
          segment = static_cast<std::size_t>(size);
        }
      }
      auto& raw_sender = from[static_cast<std::size_t>(i)];
      raw_sender.resize(h.msg_namelen);
      const Endpoint sender = from_asio(raw_sender);
      const std::size_t base = static_cast<std::size_t>(i) * kSlotBytes;
      const std::size_t total = msgs[static_cast<std::size_t>(i)].msg_len;
      if (segment == 0) segment = std::max<std::size_t>(total, 1);
      for (std::size_t at = 0; at < total || (total == 0 && at == 0); at += segment) {
        s.ready.push_back({sender, to, base + at, std::min(segment, total - at)});
        if (total == 0) break;
      }
    }
    s.counters->datagrams_received += s.ready.size();
  }

  static void deliver(const std::shared_ptr<State>& s) {
    s->delivering = true;
    while (s->waiting() && (s->next < s->ready.size() || s->ready_error)) {
      if (s->handler_batch) {
        deliver_batch(*s);
        continue;
      }
      auto h = std::exchange(s->handler, nullptr);
      auto h_to = std::exchange(s->handler_to, nullptr);
      if (s->next < s->ready.size()) {
        const Received& r = s->ready[s->next++];
        const std::span<const std::uint8_t> data(s->slots.get() + r.offset, r.length);
        if (h_to) {
          h_to({}, r.from, r.to, data);
        } else {
          h({}, r.from, data);
        }
      } else {
        const auto ec = std::exchange(s->ready_error, {});
        if (h_to) {
          h_to(ec, Endpoint{}, Address::any(s->family), {});
        } else {
          h(ec, Endpoint{}, {});
        }
      }
    }
    s->delivering = false;
    if (s->next >= s->ready.size() && !s->ready_error) {
      s->ready.clear();
      s->next = 0;
      if (s->waiting()) wait_readable(s);
    }
  }

  /// Everything received and not yet handed out, to a receive_batch() handler at once.
  static void deliver_batch(State& s) {
    auto h = std::exchange(s.handler_batch, nullptr);
    if (s.next >= s.ready.size()) {
      h(std::exchange(s.ready_error, {}), {});
      return;
    }
    s.batch.clear();
    for (; s.next < s.ready.size(); ++s.next) {
      const Received& r = s.ready[s.next];
      s.batch.push_back({r.from, r.to, std::span<const std::uint8_t>(s.slots.get() + r.offset, r.length)});
    }
    h({}, s.batch);
  }

  static void flush(const std::shared_ptr<State>& st) {
    State& s = *st;
    const int fd = s.socket.native_handle();
    std::array<mmsghdr, kMessagesPerCall> msgs{};
    std::array<iovec, kMessagesPerCall> iov{};
    std::array<udp::endpoint, kMessagesPerCall> to{};
    alignas(cmsghdr) std::array<std::array<std::uint8_t, kControlBytes>, kMessagesPerCall> control{};
    std::array<std::size_t, kMessagesPerCall> count{};
    while (s.sent < s.queue.size() && s.socket.is_open()) {
      // Runs of datagrams to one place, all the size of the first but a shorter last one.
      std::size_t m = 0, i = s.sent;
      for (; m < kMessagesPerCall && i < s.queue.size(); ++m) {
        const Queued& first = s.queue[i];
        std::size_t j = i + 1, bytes = first.length;
        while (s.gso && first.length <= s.gso_max_segment && j < s.queue.size() && j - i < kMaxGsoSegments &&
               s.queue[j].to == first.to && s.queue[j].from == first.from && s.queue[j].length <= first.length &&
               bytes + s.queue[j].length <= kMaxGsoBytes && s.queue[j - 1].length == first.length) {
          bytes += s.queue[j].length;
          ++j;
        }
        count[m] = j - i;
        iov[m] = {s.arena.data() + first.offset, bytes};
        auto& h = msgs[m].msg_hdr;
        h = {};
        h.msg_iov = &iov[m];
        h.msg_iovlen = 1;
        if (!s.connected) {
          to[m] = to_asio<udp>(first.to);
          h.msg_name = to[m].data();
          h.msg_namelen = static_cast<socklen_t>(to[m].size());
        }
        h.msg_control = control[m].data();
        if (count[m] > 1) {
          h.msg_controllen = CMSG_SPACE(sizeof(std::uint16_t));
          cmsghdr* c = CMSG_FIRSTHDR(&h);
          c->cmsg_level = SOL_UDP;
          c->cmsg_type = UDP_SEGMENT;
          c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
          const auto size = static_cast<std::uint16_t>(first.length);
          std::memcpy(CMSG_DATA(c), &size, sizeof size);
        }
        if (!first.from.is_unspecified()) write_pktinfo(h, s.family, first.from);
        if (h.msg_controllen == 0) h.msg_control = nullptr;
        i = j;
      }
      const int n = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(m), MSG_DONTWAIT);
      ++s.counters->send_calls;
      if (n > 0) {
        for (int k = 0; k < n; ++k) {
          s.sent += count[static_cast<std::size_t>(k)];
          s.counters->datagrams_sent += count[static_cast<std::size_t>(k)];
        }
        continue;
      }
      const int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) {  // the socket buffer is full: come back when there is room
        s.waiting_writable = true;
        s.blocked = true;
        if (s.blocked_handler) s.blocked_handler(true);
        s.socket.async_wait(
            udp::socket::wait_write,
            with_memory(s.writable_memory, [weak = std::weak_ptr<State>(st)](const boost::system::error_code& ec) {
              auto p = weak.lock();
              if (!p) return;
              p->waiting_writable = false;
              if (!ec) flush(p);
            }));
        return;
      }
      if (e == EINTR) continue;
      if (const Address lost = s.queue[s.sent].from; !lost.is_unspecified()) {
        // A source the host no longer has fails (IPv4: ENETUNREACH, IPv6: EINVAL); any error
        // with a source gets one more try without it. Everything queued from that source
        // goes from the kernel's choice instead (this call again, without packet info).
        for (std::size_t k = s.sent; k < s.queue.size(); ++k) {
          if (s.queue[k].from == lost) s.queue[k].from = Address::any(s.family);
        }
        ++s.counters->source_fallbacks;
        continue;
      }
      if (count[0] > 1) {  // a GSO send refused: these go again one by one, as does what follows
        if (e == EIO) {
          // The kernel cannot segment for this route (no checksum offload on its device).
          s.gso = false;
          s.counters->gso = "off (the kernel refused a GSO send with EIO)";
        } else {
          // EINVAL: a message larger than the path's MTU, which a plain send fragments;
          // messages this size are not grouped from now on.
          s.gso_max_segment = std::min(s.gso_max_segment, s.queue[s.sent].length - 1);
        }
        continue;
      }
      // That message cannot go (no route, too big, ENOBUFS from a full device queue, which
      // no wait on the socket would end): drop it, as a full interface drops.
      s.sent += count[0];
      s.counters->send_dropped += count[0];
    }
    s.queue.clear();
    s.arena.clear();
    s.sent = 0;
    if (s.blocked) {
      s.blocked = false;
      if (s.blocked_handler) s.blocked_handler(false);
    }
  }

  Family family_;
  std::shared_ptr<State> state_;
};

}  // namespace

Result<std::unique_ptr<net::DatagramSocket>> open_datagram(asio::io_context& io, Family family, StackOptions options,
                                                           std::shared_ptr<UdpCounters> counters) {
  auto s = std::make_unique<PosixDatagramSocket>(io, family, options, std::move(counters));
  if (auto ec = s->open()) return ec;
  return std::unique_ptr<net::DatagramSocket>(std::move(s));
}

}  // namespace duet::posix::detail
