#include "duet/posix/posix_stack.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <net/if.h>

#include <array>
#include <boost/asio.hpp>
#include <cstring>
#include <deque>

#include "duet/net/error.hpp"
#include "duet/net/resolve_literal.hpp"

namespace duet::posix {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using net::Address;
using net::Endpoint;
using net::Family;
using net::Result;

namespace {

// Kernel errors keep their errno value; Asio's own conditions get the nearest POSIX one.
std::error_code to_std(const boost::system::error_code& ec) {
  if (!ec) return {};
  if (ec == asio::error::operation_aborted) return net::errc(std::errc::operation_canceled);
  if (ec.category() == boost::system::system_category() ||
      ec.category() == boost::system::generic_category()) {
    return {ec.value(), std::generic_category()};
  }
  if (ec == asio::error::eof) return net::errc(std::errc::connection_reset);
  return net::errc(std::errc::io_error);
}

asio::ip::address to_asio(const Address& a) {
  if (a.is_v4()) return asio::ip::address_v4(a.v4_value());
  return asio::ip::address_v6(a.bytes(), a.scope_id());
}

Address from_asio(const asio::ip::address& a) {
  if (a.is_v4()) return Address::v4(a.to_v4().to_uint());
  auto v6 = a.to_v6();
  return Address::v6(v6.to_bytes(), static_cast<std::uint32_t>(v6.scope_id()));
}

template <typename Proto>
typename Proto::endpoint to_asio(const Endpoint& e) {
  return {to_asio(e.address), e.port};
}

template <typename AsioEndpoint>
Endpoint from_asio(const AsioEndpoint& e) {
  return {from_asio(e.address()), e.port()};
}

template <typename Proto>
Proto protocol(Family f) {
  return f == Family::v4 ? Proto::v4() : Proto::v6();
}

// ---------------------------------------------------------------------------------------
// Clock and timers

class PosixClock final : public net::Clock {
public:
  explicit PosixClock(asio::io_context& io) : io_(io), epoch_(std::chrono::steady_clock::now()) {}

  net::TimePoint now() const override {
    return net::TimePoint(
        std::chrono::duration_cast<net::Duration>(std::chrono::steady_clock::now() - epoch_));
  }

  std::unique_ptr<net::Timer> make_timer() override;

  void post(std::function<void()> fn) override { asio::post(io_, std::move(fn)); }

  std::chrono::system_clock::time_point wall_now() const override { return std::chrono::system_clock::now(); }

private:
  asio::io_context& io_;
  std::chrono::steady_clock::time_point epoch_;
};

class PosixTimer final : public net::Timer {
public:
  explicit PosixTimer(asio::io_context& io) : state_(std::make_shared<State>(io)) {}
  ~PosixTimer() override { cancel(); }

  void start(net::Duration delay, std::function<void()> handler) override {
    state_->handler = std::move(handler);
    const auto generation = ++state_->generation;
    state_->armed = true;
    state_->timer.expires_after(delay);
    state_->timer.async_wait(
        [weak = std::weak_ptr<State>(state_), generation](const boost::system::error_code& ec) {
          auto s = weak.lock();
          // A handler queued before cancel() still arrives with success: the generation
          // tells it apart from the current arming.
          if (!s || ec || !s->armed || s->generation != generation) return;
          s->armed = false;
          auto h = std::move(s->handler);
          h();
        });
  }

  void cancel() override {
    state_->armed = false;
    ++state_->generation;
    state_->handler = nullptr;
    state_->timer.cancel();
  }

  bool pending() const override { return state_->armed; }

private:
  struct State {
    explicit State(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::function<void()> handler;
    std::uint64_t generation = 0;
    bool armed = false;
  };
  std::shared_ptr<State> state_;
};

std::unique_ptr<net::Timer> PosixClock::make_timer() { return std::make_unique<PosixTimer>(io_); }

// ---------------------------------------------------------------------------------------
// Resolver

class PosixResolve final : public net::PendingOperation {
public:
  explicit PosixResolve(asio::io_context& io) : state_(std::make_shared<State>(io)) {}
  ~PosixResolve() override {
    state_->handler = nullptr;
    state_->resolver.cancel();
  }

  void start(const std::string& host, const std::string& service, const net::ResolveHints& hints,
             net::ResolveHandler handler) {
    state_->handler = std::move(handler);
    auto flags = udp::resolver::numeric_service;
    if (hints.passive) flags |= udp::resolver::passive;
    auto done = [weak = std::weak_ptr<State>(state_)](const boost::system::error_code& ec,
                                                      const auto& results) {
      auto s = weak.lock();
      if (!s || !s->handler || ec == asio::error::operation_aborted) return;
      auto h = std::move(s->handler);
      if (ec) {
        h(map_error(ec));
        return;
      }
      std::vector<Endpoint> out;
      for (const auto& entry : results) out.push_back(from_asio(entry.endpoint()));
      h(std::move(out));
    };
    // The socket type only chooses which entries glibc returns; addresses are the same.
    if (hints.family) {
      state_->resolver.async_resolve(protocol<udp>(*hints.family), host, service, flags, done);
    } else {
      state_->resolver.async_resolve(host, service, flags, done);
    }
  }

private:
  static std::error_code map_error(const boost::system::error_code& ec) {
    using net::ResolveError;
    if (ec == asio::error::host_not_found) return make_error_code(ResolveError::no_such_name);
    if (ec == asio::error::host_not_found_try_again) {
      return make_error_code(ResolveError::temporary_failure);
    }
    if (ec == asio::error::no_data) return make_error_code(ResolveError::no_data);
    if (ec == asio::error::service_not_found) return make_error_code(ResolveError::bad_service);
    if (ec == asio::error::address_family_not_supported) {
      return make_error_code(ResolveError::bad_hints);
    }
    return make_error_code(ResolveError::temporary_failure);
  }

  struct State {
    explicit State(asio::io_context& io) : resolver(io) {}
    udp::resolver resolver;
    net::ResolveHandler handler;
  };
  std::shared_ptr<State> state_;
};

// ---------------------------------------------------------------------------------------
// UDP
//
// Receiving: one recvmmsg fills up to kReceiveSlots buffers; with UDP_GRO each may hold
// many datagrams of one sender (cut by the kernel's gso_size). They are handed out one per
// receive() call, in a loop rather than one trip through the io_context each.
// Sending: send_soon() queues into one byte arena; at the end of the turn the queue goes
// out in sendmmsg calls, runs of equal-sized datagrams to one destination as one UDP GSO
// message. EAGAIN waits for the socket to be writable; a kernel that refuses GSO (EIO:
// the route's device cannot checksum) gets plain datagrams from then on.

constexpr std::size_t kReceiveSlots = 16;
constexpr std::size_t kSlotBytes = 65536;
constexpr std::size_t kMaxGsoSegments = 64;
constexpr std::size_t kMaxGsoBytes = 65000;
constexpr std::size_t kMaxQueuedDatagrams = 4096;
constexpr std::size_t kMessagesPerCall = 64;
constexpr int kSocketBuffer = 4 << 20;

class PosixDatagramSocket final : public net::DatagramSocket {
public:
  PosixDatagramSocket(asio::io_context& io, Family family, StackOptions options, std::shared_ptr<UdpCounters> counters)
      : family_(family), state_(std::make_shared<State>(io, options, std::move(counters))) {}
  ~PosixDatagramSocket() override { close(); }

  std::error_code open() {
    boost::system::error_code ec;
    state_->socket.open(protocol<udp>(family_), ec);
    if (!ec) state_->socket.non_blocking(true, ec);
    if (ec) return to_std(ec);
    const int fd = state_->socket.native_handle();
    // Room for bursts of super-packets; the FORCE variants pass the sysctl caps as root.
    for (auto [force, plain] : {std::pair{SO_SNDBUFFORCE, SO_SNDBUF}, std::pair{SO_RCVBUFFORCE, SO_RCVBUF}}) {
      if (::setsockopt(fd, SOL_SOCKET, force, &kSocketBuffer, sizeof kSocketBuffer) != 0) {
        (void)::setsockopt(fd, SOL_SOCKET, plain, &kSocketBuffer, sizeof kSocketBuffer);
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
    auto& s = *state_;
    if (!s.socket.is_open()) return;
    if (s.queue.size() >= kMaxQueuedDatagrams) {
      ++s.counters->send_dropped;  // the kernel is not keeping up: drop, as a full NIC queue does
      return;
    }
    s.queue.push_back({remote, s.arena.size(), data.size()});
    s.arena.insert(s.arena.end(), data.begin(), data.end());
    if (!s.flush_posted && !s.waiting_writable) {
      s.flush_posted = true;
      asio::post(s.socket.get_executor(), [weak = std::weak_ptr<State>(state_)] {
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
      asio::post(s->socket.get_executor(), [h = std::move(handler)] {
        h(net::errc(std::errc::bad_file_descriptor), Endpoint{}, {});
      });
      return;
    }
    s->handler = std::move(handler);
    if (s->delivering) return;  // the delivery loop hands out the next one
    if (s->next < s->ready.size() || s->ready_error) {
      asio::post(s->socket.get_executor(), [weak = std::weak_ptr<State>(s)] {
        if (auto st = weak.lock(); st && !st->delivering) deliver(st);
      });
      return;
    }
    wait_readable(s);
  }

  void close() override {
    auto& s = *state_;
    s.handler = nullptr;
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
    std::size_t offset = 0, length = 0;
  };
  struct Queued {
    Endpoint to;
    std::size_t offset = 0, length = 0;
  };
  struct State {
    State(asio::io_context& io, StackOptions o, std::shared_ptr<UdpCounters> c)
        : socket(io), options(o), counters(std::move(c)) {}
    udp::socket socket;
    StackOptions options;
    std::shared_ptr<UdpCounters> counters;
    bool gso = false, gro = false, connected = false;
    std::size_t gso_max_segment = SIZE_MAX;  ///< larger messages failed a GSO send (path MTU)
    net::ReceiveHandler handler;
    // received, not yet handed out
    std::vector<std::uint8_t> slots;
    std::vector<Received> ready;
    std::size_t next = 0;
    std::error_code ready_error;
    bool waiting_readable = false, delivering = false;
    // queued by send_soon
    std::vector<std::uint8_t> arena;
    std::vector<Queued> queue;
    std::size_t sent = 0;  ///< queue entries already sent
    bool flush_posted = false, waiting_writable = false;
  };

  static void wait_readable(const std::shared_ptr<State>& s) {
    if (s->waiting_readable) return;
    s->waiting_readable = true;
    s->socket.async_wait(udp::socket::wait_read, [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec) {
      auto st = weak.lock();
      if (!st) return;
      st->waiting_readable = false;
      if (ec == asio::error::operation_aborted || !st->handler) return;
      if (ec) {
        st->ready_error = to_std(ec);
      } else {
        read_batch(*st);
      }
      deliver(st);
    });
  }

  static void read_batch(State& s) {
    if (s.slots.empty()) s.slots.resize(kReceiveSlots * kSlotBytes);
    std::array<mmsghdr, kReceiveSlots> msgs{};
    std::array<iovec, kReceiveSlots> iov{};
    std::array<udp::endpoint, kReceiveSlots> from{};
    alignas(cmsghdr) std::array<std::array<std::uint8_t, CMSG_SPACE(sizeof(int))>, kReceiveSlots> control{};
    for (std::size_t i = 0; i < kReceiveSlots; ++i) {
      iov[i] = {s.slots.data() + i * kSlotBytes, kSlotBytes};
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
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
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
        s.ready.push_back({sender, base + at, std::min(segment, total - at)});
        if (total == 0) break;
      }
    }
    s.counters->datagrams_received += s.ready.size();
  }

  static void deliver(const std::shared_ptr<State>& s) {
    s->delivering = true;
    while (s->handler && (s->next < s->ready.size() || s->ready_error)) {
      auto h = std::move(s->handler);
      s->handler = nullptr;
      if (s->next < s->ready.size()) {
        const Received& r = s->ready[s->next++];
        h({}, r.from, std::span<const std::uint8_t>(s->slots.data() + r.offset, r.length));
      } else {
        const auto ec = std::exchange(s->ready_error, {});
        h(ec, Endpoint{}, {});
      }
    }
    s->delivering = false;
    if (s->next >= s->ready.size() && !s->ready_error) {
      s->ready.clear();
      s->next = 0;
      if (s->handler) wait_readable(s);
    }
  }

  static void flush(const std::shared_ptr<State>& st) {
    State& s = *st;
    const int fd = s.socket.native_handle();
    std::array<mmsghdr, kMessagesPerCall> msgs{};
    std::array<iovec, kMessagesPerCall> iov{};
    std::array<udp::endpoint, kMessagesPerCall> to{};
    alignas(cmsghdr) std::array<std::array<std::uint8_t, CMSG_SPACE(sizeof(std::uint16_t))>, kMessagesPerCall> control{};
    std::array<std::size_t, kMessagesPerCall> count{};
    while (s.sent < s.queue.size() && s.socket.is_open()) {
      // Runs of datagrams to one place, all the size of the first but a shorter last one.
      std::size_t m = 0, i = s.sent;
      for (; m < kMessagesPerCall && i < s.queue.size(); ++m) {
        const Queued& first = s.queue[i];
        std::size_t j = i + 1, bytes = first.length;
        while (s.gso && first.length <= s.gso_max_segment && j < s.queue.size() && j - i < kMaxGsoSegments &&
               s.queue[j].to == first.to &&
               s.queue[j].length <= first.length && bytes + s.queue[j].length <= kMaxGsoBytes &&
               s.queue[j - 1].length == first.length) {
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
        if (count[m] > 1) {
          h.msg_control = control[m].data();
          h.msg_controllen = control[m].size();
          cmsghdr* c = CMSG_FIRSTHDR(&h);
          c->cmsg_level = SOL_UDP;
          c->cmsg_type = UDP_SEGMENT;
          c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
          const auto size = static_cast<std::uint16_t>(first.length);
          std::memcpy(CMSG_DATA(c), &size, sizeof size);
        }
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
        s.socket.async_wait(udp::socket::wait_write, [weak = std::weak_ptr<State>(st)](const boost::system::error_code& ec) {
          auto p = weak.lock();
          if (!p) return;
          p->waiting_writable = false;
          if (!ec) flush(p);
        });
        return;
      }
      if (e == EINTR) continue;
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
  }

  Family family_;
  std::shared_ptr<State> state_;
};

// ---------------------------------------------------------------------------------------
// TCP

class PosixStreamSocket final : public net::StreamSocket {
public:
  PosixStreamSocket(asio::io_context& io, Family family)
      : family_(family), state_(std::make_shared<State>(io)) {}
  PosixStreamSocket(tcp::socket&& accepted, Family family)
      : family_(family), state_(std::make_shared<State>(std::move(accepted))) {}
  ~PosixStreamSocket() override { close(); }

  std::error_code open() {
    boost::system::error_code ec;
    state_->socket.open(protocol<tcp>(family_), ec);
    return to_std(ec);
  }

  Family family() const override { return family_; }

  std::error_code bind(const Endpoint& local) override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    if (local.family() != family_) return net::errc(std::errc::address_family_not_supported);
    boost::system::error_code ec;
    state_->socket.bind(to_asio<tcp>(local), ec);
    return to_std(ec);
  }

  void connect(const Endpoint& remote, net::Duration timeout,
               net::ConnectHandler handler) override {
    auto s = state_;
    if (!s->socket.is_open()) {
      post_error(std::move(handler), std::errc::bad_file_descriptor);
      return;
    }
    s->connect_handler = std::move(handler);
    s->timed_out = false;
    s->timer.expires_after(timeout);
    s->timer.async_wait([weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec) {
      auto st = weak.lock();
      if (!st || ec || !st->connect_handler) return;
      st->timed_out = true;
      boost::system::error_code ignored;
      st->socket.cancel(ignored);
    });
    s->socket.async_connect(to_asio<tcp>(remote),
                            [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec) {
                              auto st = weak.lock();
                              if (!st || !st->connect_handler) return;
                              st->timer.cancel();
                              auto h = std::move(st->connect_handler);
                              if (st->timed_out) {
                                h(net::errc(std::errc::timed_out));
                              } else {
                                h(to_std(ec));
                              }
                            });
  }

  void read_some(net::ReadHandler handler) override {
    auto s = state_;
    if (!s->socket.is_open()) {
      asio::post(s->socket.get_executor(),
                 [h = std::move(handler)] { h(net::errc(std::errc::bad_file_descriptor), {}); });
      return;
    }
    s->read_handler = std::move(handler);
    s->socket.async_read_some(
        asio::buffer(s->read_buffer),
        [weak = std::weak_ptr<State>(s)](const boost::system::error_code& ec, std::size_t n) {
          auto st = weak.lock();
          if (!st || !st->read_handler) return;
          auto h = std::move(st->read_handler);
          if (ec == asio::error::eof) {
            h({}, {});
          } else if (ec) {
            h(to_std(ec), {});
          } else {
            h({}, std::span<const std::uint8_t>(st->read_buffer.data(), n));
          }
        });
  }

  void write(std::span<const std::uint8_t> data, net::WriteHandler handler) override {
    if (!state_->socket.is_open()) {
      post_error(std::move(handler), std::errc::bad_file_descriptor);
      return;
    }
    state_->writes.push_back(
        {std::vector<std::uint8_t>(data.begin(), data.end()), std::move(handler)});
    state_->queued += data.size();
    if (state_->writes.size() == 1) write_next(state_);
  }

  std::size_t queued() const override { return state_->queued; }

  std::error_code shutdown_send() override {
    if (!state_->socket.is_open()) return net::errc(std::errc::bad_file_descriptor);
    state_->shutdown_requested = true;
    if (state_->writes.empty()) return do_shutdown(*state_);
    return {};
  }

  void close() override {
    drop_handlers();
    boost::system::error_code ignored;
    state_->socket.close(ignored);
  }

  void reset() override {
    drop_handlers();
    boost::system::error_code ignored;
    if (state_->socket.is_open()) state_->socket.set_option(tcp::socket::linger(true, 0), ignored);
    state_->socket.close(ignored);
  }

  Result<Endpoint> local_endpoint() const override {
    boost::system::error_code ec;
    auto ep = state_->socket.local_endpoint(ec);
    if (ec) return to_std(ec);
    return from_asio(ep);
  }

  Result<Endpoint> remote_endpoint() const override {
    boost::system::error_code ec;
    auto ep = state_->socket.remote_endpoint(ec);
    if (ec) return to_std(ec);
    return from_asio(ep);
  }

private:
  struct Write {
    std::vector<std::uint8_t> data;
    net::WriteHandler handler;
  };
  struct State {
    explicit State(asio::io_context& io) : socket(io), timer(io) {}
    explicit State(tcp::socket&& s) : socket(std::move(s)), timer(socket.get_executor()) {}
    tcp::socket socket;
    asio::steady_timer timer;
    net::ConnectHandler connect_handler;
    net::ReadHandler read_handler;
    std::deque<Write> writes;
    std::size_t queued = 0;  ///< bytes in `writes`
    std::array<std::uint8_t, 65536> read_buffer{};
    bool timed_out = false;
    bool shutdown_requested = false;
  };

  template <typename Handler>
  void post_error(Handler handler, std::errc e) {
    asio::post(state_->socket.get_executor(), [h = std::move(handler), e] { h(net::errc(e)); });
  }

  static std::error_code do_shutdown(State& s) {
    boost::system::error_code ec;
    s.socket.shutdown(tcp::socket::shutdown_send, ec);
    return to_std(ec);
  }

  /// Writes everything queued so far in one gathered write (up to 64 messages): a tunnel
  /// queues many small framed messages per turn, and one system call should take them.
  static void write_next(const std::shared_ptr<State>& s) {
    constexpr std::size_t kGather = 64;
    std::vector<asio::const_buffer> buffers;
    const std::size_t n = std::min(s->writes.size(), kGather);
    buffers.reserve(n);
    for (std::size_t i = 0; i < n; ++i) buffers.push_back(asio::buffer(s->writes[i].data));
    asio::async_write(
        s->socket, buffers,
        [weak = std::weak_ptr<State>(s), n](const boost::system::error_code& ec, std::size_t) {
          auto st = weak.lock();
          if (!st || st->writes.size() < n) return;  // dropped by close() or reset()
          std::vector<net::WriteHandler> done;
          done.reserve(n);
          for (std::size_t i = 0; i < n; ++i) {
            done.push_back(std::move(st->writes.front().handler));
            st->queued -= st->writes.front().data.size();
            st->writes.pop_front();
          }
          if (!st->writes.empty() && !ec) {
            write_next(st);
          } else if (st->writes.empty() && st->shutdown_requested) {
            do_shutdown(*st);
          }
          for (auto& h : done) {
            if (h) h(to_std(ec));
          }
        });
  }

  void drop_handlers() {
    state_->connect_handler = nullptr;
    state_->read_handler = nullptr;
    state_->writes.clear();
    state_->queued = 0;
    state_->timer.cancel();
  }

  Family family_;
  std::shared_ptr<State> state_;
};

class PosixListener final : public net::Listener {
public:
  PosixListener(asio::io_context& io, Family family)
      : io_(io), family_(family), state_(std::make_shared<State>(io)) {}
  ~PosixListener() override { close(); }

  std::error_code open(const Endpoint& local, const net::ListenOptions& options) {
    boost::system::error_code ec;
    auto& a = state_->acceptor;
    a.open(protocol<tcp>(family_), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && family_ == Family::v6 && options.v6only) {
      a.set_option(asio::ip::v6_only(*options.v6only), ec);
    }
    if (!ec) a.bind(to_asio<tcp>(local), ec);
    if (!ec) a.listen(options.backlog, ec);
    return to_std(ec);
  }

  void accept(net::AcceptHandler handler) override {
    auto s = state_;
    if (!s->acceptor.is_open()) {
      asio::post(
          io_, [h = std::move(handler)] { h(net::errc(std::errc::bad_file_descriptor), nullptr); });
      return;
    }
    s->handler = std::move(handler);
    s->acceptor.async_accept([weak = std::weak_ptr<State>(s), family = family_](
                                 const boost::system::error_code& ec, tcp::socket peer) {
      auto st = weak.lock();
      if (!st || !st->handler) return;
      auto h = std::move(st->handler);
      if (ec) {
        h(to_std(ec), nullptr);
        return;
      }
      h({}, std::make_unique<PosixStreamSocket>(std::move(peer), family));
    });
  }

  Result<Endpoint> local_endpoint() const override {
    boost::system::error_code ec;
    auto ep = state_->acceptor.local_endpoint(ec);
    if (ec) return to_std(ec);
    return from_asio(ep);
  }

  void close() override {
    state_->handler = nullptr;
    boost::system::error_code ignored;
    state_->acceptor.close(ignored);
  }

private:
  struct State {
    explicit State(asio::io_context& io) : acceptor(io) {}
    tcp::acceptor acceptor;
    net::AcceptHandler handler;
  };
  asio::io_context& io_;
  Family family_;
  std::shared_ptr<State> state_;
};

int mask_length(const sockaddr* mask) {
  if (mask == nullptr) return 0;
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
  if (mask->sa_family == AF_INET) {
    p = reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    n = 4;
  } else {
    p = reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    n = 16;
  }
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) bits += __builtin_popcount(p[i]);
  return bits;
}

}  // namespace

struct PosixStack::Impl {
  Impl(asio::io_context& io, StackOptions o) : io(io), clock(io), options(o) {}
  asio::io_context& io;
  PosixClock clock;
  StackOptions options;
  std::shared_ptr<UdpCounters> udp = std::make_shared<UdpCounters>();
};

PosixStack::PosixStack(asio::io_context& io, StackOptions options) : impl_(std::make_unique<Impl>(io, options)) {}

const UdpCounters& PosixStack::udp_counters() const { return *impl_->udp; }
PosixStack::~PosixStack() = default;

net::Clock& PosixStack::clock() { return impl_->clock; }

std::unique_ptr<net::PendingOperation> PosixStack::resolve(const std::string& host,
                                                           const std::string& service,
                                                           const net::ResolveHints& hints,
                                                           net::ResolveHandler handler) {
  auto op = std::make_unique<PosixResolve>(impl_->io);
  if (auto literal = net::resolve_literal(host, service, hints)) {
    // Same answer as getaddrinfo, but without a trip through its thread.
    auto alive = std::make_shared<bool>(true);
    struct Literal final : net::PendingOperation {
      std::shared_ptr<bool> alive;
      ~Literal() override { *alive = false; }
    };
    auto handle = std::make_unique<Literal>();
    handle->alive = alive;
    asio::post(impl_->io, [alive, h = std::move(handler), r = std::move(*literal)]() mutable {
      if (*alive) h(std::move(r));
    });
    return handle;
  }
  op->start(host, service, hints, std::move(handler));
  return op;
}

Result<std::vector<net::InterfaceAddress>> PosixStack::interface_addresses() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::error_code(errno, std::generic_category());
  std::vector<net::InterfaceAddress> out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    net::InterfaceAddress ia;
    ia.interface = i->ifa_name;
    ia.up = (i->ifa_flags & IFF_UP) != 0;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      ia.prefix.address = Address::v4(ntohl(sin->sin_addr.s_addr));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      Address::Bytes b{};
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      ia.prefix.address = Address::v6(b, sin6->sin6_scope_id);
    } else {
      continue;
    }
    ia.prefix.length = static_cast<std::uint8_t>(mask_length(i->ifa_netmask));
    out.push_back(std::move(ia));
  }
  freeifaddrs(list);
  return out;
}

Result<std::unique_ptr<net::DatagramSocket>> PosixStack::open_datagram(Family family) {
  auto s = std::make_unique<PosixDatagramSocket>(impl_->io, family, impl_->options, impl_->udp);
  if (auto ec = s->open()) return ec;
  return std::unique_ptr<net::DatagramSocket>(std::move(s));
}

Result<std::unique_ptr<net::StreamSocket>> PosixStack::open_stream(Family family) {
  auto s = std::make_unique<PosixStreamSocket>(impl_->io, family);
  if (auto ec = s->open()) return ec;
  return std::unique_ptr<net::StreamSocket>(std::move(s));
}

Result<std::unique_ptr<net::Listener>> PosixStack::listen(const Endpoint& local,
                                                          const net::ListenOptions& options) {
  auto l = std::make_unique<PosixListener>(impl_->io, local.family());
  if (auto ec = l->open(local, options)) return ec;
  return std::unique_ptr<net::Listener>(std::move(l));
}

}  // namespace duet::posix

namespace duet::posix {

std::uint64_t PosixStack::random() {
  std::uint64_t v = 0;
  // getrandom() on 8 bytes does not fail or block once the kernel's pool is ready.
  while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
  }
  return v;
}

}  // namespace duet::posix
