// getaddrinfo on its own thread per question, so that questions run side by side: the
// connector asks every name once per family at once, and one slow or silent question must
// not hold the others back (Asio's resolver runs them one after another on one thread).
// The answer comes back through the io_context; a question whose handle was destroyed is
// answered to nobody. And the order glibc would give to one merged answer
// (sort_destinations), found the way glibc finds it: a UDP "connect" per destination.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "asio_glue.hpp"
#include "duet/net/destination_order.hpp"
#include "duet/net/resolve_literal.hpp"

namespace duet::posix::detail {

namespace {

std::error_code resolver_error(int gai) {
  using net::ResolveError;
  switch (gai) {
    case EAI_NONAME:
      return make_error_code(ResolveError::no_such_name);
#ifdef EAI_NODATA
    case EAI_NODATA:
      return make_error_code(ResolveError::no_data);
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
      return make_error_code(ResolveError::no_data);
#endif
    case EAI_AGAIN:
      return make_error_code(ResolveError::temporary_failure);
    case EAI_SERVICE:
      return make_error_code(ResolveError::bad_service);
    case EAI_FAMILY:
      return make_error_code(ResolveError::bad_hints);
    default:
      return make_error_code(ResolveError::temporary_failure);
  }
}

Endpoint from_sockaddr(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return {Address::v4(ntohl(in->sin_addr.s_addr)), ntohs(in->sin_port)};
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
  Address::Bytes b{};
  std::memcpy(b.data(), &in6->sin6_addr, 16);
  return {Address::v6(b, in6->sin6_scope_id), ntohs(in6->sin6_port)};
}

/// One question, shared by its thread and its handle (which only the loop thread touches).
struct Question {
  net::ResolveHandler handler;           // loop thread only
  bool cancelled = false;                // loop thread only
  std::shared_ptr<LoopLink> counted_in;  // set while the question counts as the loop's work

  void count(const std::shared_ptr<LoopLink>& loop) {
    if (loop->questions++ == 0) loop->busy.emplace(loop->io->get_executor());
    counted_in = loop;
  }
  void uncount() {  // loop thread; once
    if (!counted_in) return;
    if (--counted_in->questions == 0) counted_in->busy.reset();
    counted_in.reset();
  }
};

class PosixResolve final : public net::PendingOperation {
public:
  explicit PosixResolve(std::shared_ptr<Question> q) : q_(std::move(q)) {}
  ~PosixResolve() override {
    q_->cancelled = true;
    q_->handler = nullptr;
    q_->uncount();
  }

private:
  std::shared_ptr<Question> q_;
};

net::Result<std::vector<Endpoint>> lookup(const std::string& host, const std::string& service,
                                          const net::ResolveHints& hints) {
  addrinfo want{};
  want.ai_family = !hints.family ? AF_UNSPEC : *hints.family == Family::v4 ? AF_INET : AF_INET6;
  want.ai_socktype = hints.type == net::SocketType::datagram ? SOCK_DGRAM : SOCK_STREAM;
  want.ai_flags = AI_NUMERICSERV | (hints.passive ? AI_PASSIVE : 0);
  addrinfo* list = nullptr;
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &want, &list);
  if (rc != 0) return resolver_error(rc);
  std::vector<Endpoint> out;
  for (const addrinfo* i = list; i != nullptr; i = i->ai_next) {
    if (i->ai_addr == nullptr || (i->ai_family != AF_INET && i->ai_family != AF_INET6)) continue;
    const Endpoint e = from_sockaddr(i->ai_addr);
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
  }
  ::freeaddrinfo(list);
  if (out.empty()) return make_error_code(net::ResolveError::no_data);
  return out;
}

}  // namespace

std::unique_ptr<net::PendingOperation> resolve(const std::shared_ptr<LoopLink>& loop, const std::string& host,
                                               const std::string& service, const net::ResolveHints& hints,
                                               net::ResolveHandler handler) {
  auto q = std::make_shared<Question>(Question{std::move(handler)});
  auto deliver = [q](net::Result<std::vector<Endpoint>> r) {
    q->uncount();
    if (q->cancelled || !q->handler) return;
    auto h = std::move(q->handler);
    h(std::move(r));
  };
  if (auto literal = net::resolve_literal(host, service, hints)) {
    // Same answer as getaddrinfo, without a thread.
    asio::post(*loop->io, [deliver, r = std::move(*literal)]() mutable { deliver(std::move(r)); });
  } else {
    // The answer goes to the loop only while its stack lives (the thread may outlive both).
    q->count(loop);
    std::thread([loop, deliver, host, service, hints]() mutable {
      auto r = lookup(host, service, hints);
      const std::lock_guard lock(loop->mutex);
      if (loop->io) asio::post(*loop->io, [deliver, r = std::move(r)]() mutable { deliver(std::move(r)); });
    }).detach();
  }
  return std::make_unique<PosixResolve>(std::move(q));
}

std::vector<Endpoint> sort_destinations(std::vector<Endpoint> destinations) {
  std::vector<net::Destination> d;
  for (const auto& e : destinations) {
    net::Destination x{e, false, std::nullopt};
    const int fd = ::socket(e.family() == Family::v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      sockaddr_storage ss{};
      socklen_t len = 0;
      if (e.family() == Family::v4) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        in->sin_family = AF_INET;
        in->sin_port = htons(e.port);
        in->sin_addr.s_addr = htonl(e.address.v4_value());
        len = sizeof *in;
      } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(e.port);
        std::memcpy(&in6->sin6_addr, e.address.bytes().data(), 16);
        in6->sin6_scope_id = e.address.scope_id();
        len = sizeof *in6;
      }
      // Connecting a UDP socket sends nothing: it only asks the routing table.
      if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
        sockaddr_storage local{};
        socklen_t local_len = sizeof local;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) {
          x.usable = true;
          x.source = from_sockaddr(reinterpret_cast<sockaddr*>(&local)).address;
        }
      }
      ::close(fd);
    }
    d.push_back(x);
  }
  return net::glibc_destination_order(std::move(d));
}

}  // namespace duet::posix::detail
