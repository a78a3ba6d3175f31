// The seam: everything duet does on a network goes through NetworkStack. PosixStack
// carries it out with the kernel (Boost.Asio), SimStack in a deterministic simulated
// world. Both report errors with their POSIX meaning (see error.hpp) so code above
// cannot tell them apart.
//
// One asynchronous style: callbacks on one single-threaded event loop. Calls never block.
// A handler is never called after the object that started the operation was closed or
// destroyed; an operation started on an already closed object completes with EBADF.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "duet/net/address.hpp"
#include "duet/net/clock.hpp"
#include "duet/net/result.hpp"

namespace duet::net {

/// UDP or TCP.
enum class SocketType : std::uint8_t {
  datagram,  ///< UDP (SOCK_DGRAM)
  stream,    ///< TCP (SOCK_STREAM)
};

/// What a lookup asks for (getaddrinfo's hints).
struct ResolveHints {
  std::optional<Family> family;            ///< restrict to one family; nullopt = both
  bool passive = false;                    ///< AI_PASSIVE: an empty host means the wildcard addresses
  SocketType type = SocketType::datagram;  ///< the socket type the endpoints are for
};

/// One address of one interface of the host, as getifaddrs(3) reports it.
struct InterfaceAddress {
  std::string interface;  ///< the interface's name ("eth0")
  Prefix prefix;          ///< the address with its on-link prefix length
  bool up = false;        ///< the interface is up
};

/// An operation in flight; destroying the handle cancels it (its handler never runs).
class PendingOperation {
public:
  virtual ~PendingOperation() = default;
};

using ResolveHandler = std::function<void(Result<std::vector<Endpoint>>)>;
/// `data` is valid only during the call.
using ReceiveHandler = std::function<void(std::error_code, const Endpoint& from, std::span<const std::uint8_t> data)>;
/// A received datagram with the local address it was sent to (`to`); see
/// DatagramSocket::receive_to. `data` is valid only during the call.
using ReceiveToHandler =
    std::function<void(std::error_code, const Endpoint& from, const Address& to, std::span<const std::uint8_t> data)>;
/// One datagram of a batch (see DatagramSocket::receive_batch); `data` is valid only during
/// the handler's call.
struct ReceivedDatagram {
  Endpoint from;                       ///< the sender
  Address to;                          ///< the local address it was sent to (as receive_to())
  std::span<const std::uint8_t> data;  ///< its bytes
};
/// Several received datagrams, in order; or an error (then `datagrams` is empty).
using ReceiveBatchHandler = std::function<void(std::error_code, std::span<const ReceivedDatagram> datagrams)>;
using ConnectHandler = std::function<void(std::error_code)>;
/// Success with zero bytes means the peer finished sending (EOF).
using ReadHandler = std::function<void(std::error_code, std::span<const std::uint8_t> data)>;
using WriteHandler = std::function<void(std::error_code)>;

/// Writes one message in place: called with room for it, returns how many bytes of the
/// room it wrote (0: nothing to send). A reference to a callable, valid only during the
/// call it is handed to; unlike std::function it never allocates. It lets the tunnel seal
/// a packet straight into the buffer the stack sends it from (DatagramSocket::
/// send_soon_filled, StreamSocket::write_filled) instead of sealing it and copying it there.
class Fill {
public:
  /// Refers to `f` (any callable taking the room and returning the bytes written).
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, Fill> &&
           std::is_invocable_r_v<std::size_t, F&, std::span<std::uint8_t>>)
      Fill(F&& f)  // NOLINT(google-explicit-constructor): passed as an argument, like a lambda
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, std::span<std::uint8_t> room) -> std::size_t {
          return (*static_cast<std::remove_reference_t<F>*>(o))(room);
        }) {}
  /// Writes into `room`; returns the bytes written.
  std::size_t operator()(std::span<std::uint8_t> room) const { return call_(object_, room); }

  /// For stacks without a buffer of their own to fill: the message is written into a
  /// scratch buffer of this thread and handed to `send` (a copy, as before).
  template <typename Send>
  void through_scratch(std::size_t capacity, Send&& send) const {
    static thread_local std::vector<std::uint8_t> scratch;
    if (scratch.size() < capacity) scratch.resize(capacity);
    const std::size_t n = (*this)(std::span(scratch.data(), capacity));
    if (n > 0) send(std::span<const std::uint8_t>(scratch.data(), n));
  }

private:
  void* object_;
  std::size_t (*call_)(void*, std::span<std::uint8_t>);
};

/// A UDP socket of one family (see NetworkStack::open_datagram).
class DatagramSocket {
public:
  virtual ~DatagramSocket() = default;
  /// Family the socket was opened with.
  [[nodiscard]] virtual Family family() const = 0;
  /// IPV6_V6ONLY; IPv6 sockets only, before bind (else EINVAL; ENOPROTOOPT on IPv4).
  virtual std::error_code set_v6only(bool on) = 0;
  /// Binds a local address and port (port 0: ephemeral). EADDRINUSE, EADDRNOTAVAIL...
  virtual std::error_code bind(const Endpoint& local) = 0;
  /// SO_MARK: the mark policy routing sees on this socket's packets (EPERM without
  /// CAP_NET_ADMIN). A simulated host has no policy routing and ignores it.
  virtual std::error_code set_mark(std::uint32_t mark) {
    (void)mark;
    return {};
  }
  /// Fixes the peer: only its datagrams are received, and ICMP errors are reported.
  virtual std::error_code connect(const Endpoint& remote) = 0;
  /// The bound address and port (after bind, connect or a first send).
  [[nodiscard]] virtual Result<Endpoint> local_endpoint() const = 0;
  /// Sends one datagram; local errors (no route, EMSGSIZE...) are returned at once.
  virtual std::error_code send_to(const Endpoint& remote, std::span<const std::uint8_t> data) = 0;
  /// Sends to the connected peer.
  virtual std::error_code send(std::span<const std::uint8_t> data) = 0;
  /// Queues a datagram (copied) to go out at the end of this turn of the event loop with
  /// the others queued in it, so that a stack can send them together (PosixStack: one
  /// sendmmsg, consecutive equal-sized datagrams to one peer as one UDP GSO send). For the
  /// tunnel's data, whose fate nobody waits for: failures are counted by the stack, not
  /// reported. By default the datagram is sent at once.
  virtual void send_soon(const Endpoint& remote, std::span<const std::uint8_t> data) { (void)send_to(remote, data); }
  /// send_soon() from a chosen local address of the host (IP_PKTINFO / IPV6_PKTINFO), for a
  /// socket bound to a wildcard address that answers a peer from the address the peer
  /// reached (see receive_to). The unspecified address lets the kernel choose, as send_soon
  /// does. A source the host no longer has (its address was removed) is not an error: the
  /// datagram leaves at once from the address the kernel chooses. By default the source is
  /// ignored.
  virtual void send_soon_from(const Address& source, const Endpoint& remote, std::span<const std::uint8_t> data) {
    (void)source;
    send_soon(remote, data);
  }
  /// send_soon_from() of a datagram of at most `capacity` bytes that `fill` writes in place,
  /// into the buffer the stack sends it from (PosixStack: its queue for the end of the
  /// turn), so that nothing is copied between sealing and the kernel. By default it is
  /// written into a scratch buffer and sent with send_soon_from().
  virtual void send_soon_filled(const Address& source, const Endpoint& remote, std::size_t capacity, Fill fill) {
    fill.through_scratch(capacity, [&](std::span<const std::uint8_t> d) { send_soon_from(source, remote, d); });
  }
  /// Waits for one datagram, or for an error the kernel reports on a connected socket
  /// (ECONNREFUSED, EHOSTUNREACH, EACCES after ICMP). One receive at a time.
  virtual void receive(ReceiveHandler handler) = 0;
  /// As receive(), and says which local address the datagram was sent to (IP_PKTINFO /
  /// IPV6_RECVPKTINFO; an IPv4 one on a dual-stack socket as IPv4-mapped). By default, and on
  /// errors, that address is the unspecified one. PosixStack starts noting destinations at
  /// the first call: datagrams that were waiting before it may report the unspecified address.
  virtual void receive_to(ReceiveToHandler handler) {
    receive(
        [h = std::move(handler), any = Address::any(family())](
            std::error_code ec, const Endpoint& from, std::span<const std::uint8_t> data) { h(ec, from, any, data); });
  }
  /// receive() of every datagram that is there at once (at least one), in order: for a
  /// receiver that handles a turn's datagrams as one batch (PosixStack: what one recvmmsg
  /// brought, GRO's runs cut). With `destinations`, each says where it was sent to, as
  /// receive_to() does; without, that address is the unspecified one (a connected socket
  /// knows). One receive at a time, as receive(). By default a batch of one.
  virtual void receive_batch(bool destinations, ReceiveBatchHandler handler) {
    auto one = [h = std::move(handler)](std::error_code ec, const Endpoint& from, const Address& to,
                                        std::span<const std::uint8_t> data) {
      if (ec) return h(ec, {});
      const ReceivedDatagram batch[1] = {{from, to, data}};
      h({}, batch);
    };
    if (destinations) return receive_to(std::move(one));
    receive([one = std::move(one), any = Address::any(family())](std::error_code ec, const Endpoint& from,
                                                                 std::span<const std::uint8_t> data) {
      one(ec, from, any, data);
    });
  }
  /// Backpressure for send_soon(): `handler(true)` each time the kernel refuses datagrams
  /// the stack then holds (EAGAIN: the socket's send buffer is full, e.g. behind a slow
  /// interface queue) until the socket is writable again; `handler(false)` once it has
  /// handed the kernel every datagram it held. Between the two, what send_soon() adds
  /// waits too, up to the stack's cap (past it datagrams are dropped and counted). A
  /// stack that never holds datagrams (the simulator's, the default) never calls it.
  virtual void on_blocked(std::function<void(bool blocked)> handler) { (void)handler; }
  /// Closes the socket; a pending receive is dropped.
  virtual void close() = 0;
};

/// A TCP socket of one family, before or after connecting (see NetworkStack::open_stream
/// and Listener::accept).
class StreamSocket {
public:
  virtual ~StreamSocket() = default;
  /// Family the socket was opened with.
  [[nodiscard]] virtual Family family() const = 0;
  /// Binds the local side before connect (port 0: ephemeral).
  virtual std::error_code bind(const Endpoint& local) = 0;
  /// Connects, giving up with ETIMEDOUT after `timeout` (or the kernel's own give-up).
  virtual void connect(const Endpoint& remote, Duration timeout, ConnectHandler handler) = 0;
  /// Reads what has arrived (at least one byte), or reports EOF or an error. One at a time.
  virtual void read_some(ReadHandler handler) = 0;
  /// Queues all of `data` (copied); the handler runs once the stack has accepted it.
  virtual void write(std::span<const std::uint8_t> data, WriteHandler handler) = 0;
  /// write() of `head` followed by `body`, as one write (a framing header and its message),
  /// without joining them in a new buffer first where the stack can (PosixStack appends
  /// both to its queue). By default they are joined and written.
  virtual void write_parts(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body,
                           WriteHandler handler) {
    std::vector<std::uint8_t> joined;
    joined.reserve(head.size() + body.size());
    joined.insert(joined.end(), head.begin(), head.end());
    joined.insert(joined.end(), body.begin(), body.end());
    write(joined, std::move(handler));
  }
  /// write() of a message of at most `capacity` bytes that `fill` writes in place, at the
  /// end of the stack's queue (PosixStack), so that nothing is copied between sealing and
  /// the kernel. When `fill` writes nothing, nothing is written and `handler` is dropped.
  /// By default the message is written into a scratch buffer and written with write().
  virtual void write_filled(std::size_t capacity, Fill fill, WriteHandler handler) {
    fill.through_scratch(capacity, [&](std::span<const std::uint8_t> d) { write(d, std::move(handler)); });
  }
  /// Bytes written that are still waiting on this side: in user space for PosixStack
  /// (the kernel's send buffer is not counted), unacknowledged for the simulator. A tunnel
  /// drops packets beyond a limit rather than queue without bound.
  [[nodiscard]] virtual std::size_t queued() const = 0;
  /// Sends FIN after the queued data; reading goes on.
  virtual std::error_code shutdown_send() = 0;
  /// Orderly close (FIN); pending handlers are dropped.
  virtual void close() = 0;
  /// Abortive close (RST, SO_LINGER 0); pending handlers are dropped.
  virtual void reset() = 0;
  /// The local address and port (after bind or connect).
  [[nodiscard]] virtual Result<Endpoint> local_endpoint() const = 0;
  /// The peer's address and port (once connected; ENOTCONN before).
  [[nodiscard]] virtual Result<Endpoint> remote_endpoint() const = 0;
  /// Words about the last error beyond its code (a proxy's reply, say); usually empty.
  [[nodiscard]] virtual std::string error_detail() const { return {}; }
};

using AcceptHandler = std::function<void(std::error_code, std::unique_ptr<StreamSocket>)>;

/// How NetworkStack::listen sets up a listening socket.
struct ListenOptions {
  std::optional<bool> v6only;  ///< IPV6_V6ONLY for IPv6; nullopt = the host's default
  int backlog = 128;           ///< listen(2)'s backlog
};

/// A listening TCP socket (see NetworkStack::listen).
class Listener {
public:
  virtual ~Listener() = default;
  /// Waits for the next established connection. One accept at a time.
  virtual void accept(AcceptHandler handler) = 0;
  /// The address and port listened on (the port chosen when 0 was asked).
  [[nodiscard]] virtual Result<Endpoint> local_endpoint() const = 0;
  /// Stops listening; a pending accept is dropped.
  virtual void close() = 0;
};

/// The seam: a host's network as duet's code sees it. PosixStack is the kernel's,
/// SimWorld::stack() a simulated host's. See the main page for the contracts (threading,
/// callback lifetime, error codes) both keep.
class NetworkStack {
public:
  virtual ~NetworkStack() = default;
  /// Time and scheduling for everything on this stack.
  virtual Clock& clock() = 0;
  /// getaddrinfo: `host` (name or literal; empty with passive = wildcards) and `service`
  /// (a port number) to an ordered list of endpoints, or a ResolveError.
  [[nodiscard]] virtual std::unique_ptr<PendingOperation> resolve(const std::string& host, const std::string& service,
                                                                  const ResolveHints& hints,
                                                                  ResolveHandler handler) = 0;
  /// `destinations` (answers for `name`, asked one family at a time) in the order this
  /// host's resolver would have put them had it answered for both families at once (see
  /// destination_order.hpp); the connector uses it to pick the family it tries first.
  virtual std::vector<Endpoint> sort_destinations(const std::string& name, std::vector<Endpoint> destinations) = 0;
  /// The host's interface addresses (getifaddrs).
  virtual Result<std::vector<InterfaceAddress>> interface_addresses() = 0;
  /// A new UDP socket of one family; IPv6 sockets start with the host's IPV6_V6ONLY default.
  virtual Result<std::unique_ptr<DatagramSocket>> open_datagram(Family family) = 0;
  /// A new, unconnected TCP socket.
  virtual Result<std::unique_ptr<StreamSocket>> open_stream(Family family) = 0;
  /// A TCP socket bound to `local` and listening (SO_REUSEADDR set).
  virtual Result<std::unique_ptr<Listener>> listen(const Endpoint& local, const ListenOptions& options) = 0;
  /// A random 64-bit value: the kernel's getrandom() on PosixStack, the world's seeded
  /// generator in the simulator, so that engine choices stay reproducible there.
  virtual std::uint64_t random() = 0;
  /// Fills `out` with random bytes (ephemeral keys, nonces): random() eight bytes at a time,
  /// little-endian, unless the stack has a cheaper way (PosixStack: one getrandom() for the
  /// whole span, where eight bytes at a time made four system calls per ephemeral key).
  virtual void random_fill(std::span<std::uint8_t> out) {
    for (std::size_t i = 0; i < out.size(); i += 8) {
      const std::uint64_t r = random();
      for (std::size_t j = 0; j < 8 && i + j < out.size(); ++j) out[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
    }
  }
};

}  // namespace duet::net
