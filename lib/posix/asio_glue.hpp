// What the PosixStack's files share: conversions between Asio's types and duet's, and
// the factories each file provides to posix_stack.cpp. Not a public header.
#pragma once

#include <utility>  // before Asio 1.74, whose awaitable.hpp uses std::exchange unannounced

#include <boost/asio.hpp>
#include <memory>
#include <mutex>
#include <optional>

#include "duet/net/error.hpp"
#include "duet/posix/posix_stack.hpp"

namespace duet::posix::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using net::Address;
using net::Endpoint;
using net::Family;
using net::Result;

inline std::error_code to_std(const boost::system::error_code& ec) {
  if (!ec) return {};
  if (ec == asio::error::operation_aborted) return net::errc(std::errc::operation_canceled);
  if (ec.category() == boost::system::system_category() || ec.category() == boost::system::generic_category()) {
    return {ec.value(), std::generic_category()};
  }
  if (ec == asio::error::eof) return net::errc(std::errc::connection_reset);
  return net::errc(std::errc::io_error);
}

inline asio::ip::address to_asio(const Address& a) {
  if (a.is_v4()) return asio::ip::address_v4(a.v4_value());
  return asio::ip::address_v6(a.bytes(), a.scope_id());
}

inline Address from_asio(const asio::ip::address& a) {
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

/// Memory for one recurring asynchronous operation (a socket's wait, its end-of-turn
/// flush, a stream's write): the operation Asio allocates for it comes from here, so a busy
/// socket allocates nothing per turn. Asio's own recycling keeps one block per thread, and
/// with several operations in flight at once (two sockets and a TUN) some of them went to
/// malloc every turn. Shared by the operations' handlers, so it outlives a socket closed
/// with one still pending; one operation at a time uses it (another falls back to new).
class HandlerMemory {
public:
  void* allocate(std::size_t size) {
    if (!in_use_ && size <= sizeof storage_) {
      in_use_ = true;
      return storage_;
    }
    return ::operator new(size);
  }
  void deallocate(void* p) {
    if (p == static_cast<void*>(storage_)) {
      in_use_ = false;
    } else {
      ::operator delete(p);
    }
  }

private:
  alignas(std::max_align_t) unsigned char storage_[256];  // a wait, a post or a write with its handler
  bool in_use_ = false;
};

/// The allocator Asio finds on a handler made by with_memory().
template <typename T>
struct HandlerAllocator {
  using value_type = T;
  HandlerMemory* memory;
  explicit HandlerAllocator(HandlerMemory* m) noexcept : memory(m) {}
  template <typename U>
  HandlerAllocator(const HandlerAllocator<U>& other) noexcept : memory(other.memory) {}  // NOLINT: rebinding
  T* allocate(std::size_t n) { return static_cast<T*>(memory->allocate(sizeof(T) * n)); }
  void deallocate(T* p, std::size_t) { memory->deallocate(p); }
  template <typename U>
  bool operator==(const HandlerAllocator<U>& o) const noexcept {
    return memory == o.memory;
  }
  template <typename U>
  bool operator!=(const HandlerAllocator<U>& o) const noexcept {
    return memory != o.memory;
  }
};

/// A handler whose operation is allocated from `memory` (Asio asks get_allocator()).
template <typename Handler>
class MemoryHandler {
public:
  using allocator_type = HandlerAllocator<Handler>;
  MemoryHandler(std::shared_ptr<HandlerMemory> memory, Handler h) : memory_(std::move(memory)), h_(std::move(h)) {}
  allocator_type get_allocator() const noexcept { return allocator_type(memory_.get()); }
  template <typename... Args>
  void operator()(Args&&... args) {
    h_(std::forward<Args>(args)...);
  }

private:
  std::shared_ptr<HandlerMemory> memory_;
  Handler h_;
};

/// `h`, its operation allocated from `memory`.
template <typename Handler>
MemoryHandler<std::decay_t<Handler>> with_memory(const std::shared_ptr<HandlerMemory>& memory, Handler&& h) {
  return MemoryHandler<std::decay_t<Handler>>(memory, std::forward<Handler>(h));
}

/// Posts `h` to the loop of `socket`, its operation allocated from `memory`. Through the
/// io_context's own executor: a socket's type-erased executor (any_io_executor) drops the
/// handler's allocator and takes memory from Asio's thread cache instead.
template <typename Socket, typename Handler>
void post_with_memory(Socket& socket, const std::shared_ptr<HandlerMemory>& memory, Handler&& h) {
  auto ex = socket.get_executor();
  if (const auto* io = ex.template target<asio::io_context::executor_type>()) {
    asio::post(*io, with_memory(memory, std::forward<Handler>(h)));
  } else {
    asio::post(ex, with_memory(memory, std::forward<Handler>(h)));
  }
}

template <typename Proto>
Proto protocol(Family f) {
  return f == Family::v4 ? Proto::v4() : Proto::v6();
}

/// The stack's event loop as threads see it: null once the stack is gone.
struct LoopLink {
  std::mutex mutex;
  asio::io_context* io = nullptr;
  // Questions still on their threads keep the loop's run() from returning for want of
  // work, as a socket's pending receive does (loop thread only; let go with the stack).
  int questions = 0;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> busy;
};

// --- what each file makes --------------------------------------------------------------
std::unique_ptr<net::Clock> make_clock(asio::io_context& io);  // clock.cpp
std::unique_ptr<net::PendingOperation> resolve(const std::shared_ptr<LoopLink>& loop, const std::string& host,
                                               const std::string& service, const net::ResolveHints& hints,
                                               net::ResolveHandler handler);  // resolver.cpp
std::vector<Endpoint> sort_destinations(std::vector<Endpoint> destinations);  // resolver.cpp
Result<std::vector<net::InterfaceAddress>> interface_addresses();             // interfaces.cpp
Result<std::unique_ptr<net::DatagramSocket>> open_datagram(asio::io_context& io, Family family, StackOptions options,
                                                           std::shared_ptr<UdpCounters> counters);  // udp.cpp
Result<std::unique_ptr<net::StreamSocket>> open_stream(asio::io_context& io, Family family,
                                                       std::shared_ptr<TcpCounters> counters);  // tcp.cpp
Result<std::unique_ptr<net::Listener>> listen(asio::io_context& io, const Endpoint& local,
                                              const net::ListenOptions& options,
                                              std::shared_ptr<TcpCounters> counters);  // tcp.cpp

}  // namespace duet::posix::detail
