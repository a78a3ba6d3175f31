// The listening side: every <listen> block (or the top-level proto/local/lport) becomes
// the sockets of its bind plan, all served at once on one event loop. Each UDP peer
// (by source endpoint) and each accepted TCP connection gets its own session.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/network_stack.hpp"
#include "duet/transport/events.hpp"
#include "duet/transport/framing.hpp"
#include "duet/transport/session.hpp"

namespace duet::transport {

struct ListeningSocket {
  net::Endpoint local;
  config::Transport transport = config::Transport::udp;
  bool v6only = false;
  /// "0.0.0.0:1194/udp"
  [[nodiscard]] std::string to_string() const;
};

class Server {
public:
  /// Called for every datagram before the server's own sessions see it; return true to
  /// take it (a p2p peer's outgoing attempts share the listening sockets).
  using DatagramHook = std::function<bool(const net::Endpoint& from, std::span<const std::uint8_t>)>;

  Server(net::NetworkStack& stack, const config::Config& config, SessionFactory& sessions, EventSink events);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Resolves every listen block with AI_PASSIVE and binds its plan; `done(false)` (and a
  /// startup_failed event) when not a single socket could be opened.
  void start(std::function<void(bool ok)> done);
  /// The sockets actually bound, in the order they were bound.
  [[nodiscard]] const std::vector<ListeningSocket>& listening() const { return listening_; }
  /// Peers that have completed a handshake.
  [[nodiscard]] std::size_t peers() const { return peers_accepted_; }
  /// Paths held now: authenticated UDP sources and TCP connections (for the scale tests).
  [[nodiscard]] std::size_t paths() const;
  /// The bound UDP socket of a family, if any (for p2p attempts).
  net::DatagramSocket* udp_socket(net::Family family);
  void set_datagram_hook(DatagramHook hook) { hook_ = std::move(hook); }
  /// Makes `session` the path to `remote` over the UDP socket of its family (replacing
  /// any path there): what it sends leaves from the listening port, and what `remote`
  /// sends comes to it. False when no UDP socket of that family is open.
  bool open_path(const net::Endpoint& remote, std::unique_ptr<Session> session);
  /// Where TCP connections and UDP sockets report that they are too full (see
  /// Client::set_flow).
  void set_flow(FlowControl* flow) { flow_ = flow; }

private:
  struct UdpListener;
  struct TcpListener;
  struct TcpPeer;
  void resolve_next(std::size_t listen, std::size_t local);
  void bind_all();
  /// A socket is bound: say so, and list it among the listening sockets.
  void record_bound(const net::Result<net::Endpoint>& bound, const net::Endpoint& asked, config::Transport transport,
                    bool v6only);
  void open_udp(const net::Endpoint& local, bool v6only);
  void open_tcp(const net::Endpoint& local, bool v6only);
  void receive(UdpListener& l);
  void on_datagram(UdpListener& l, const net::Endpoint& from, const net::Address& to,
                   std::span<const std::uint8_t> data);
  /// Forgets idle paths their peers have left, and TCP strangers that never authenticated.
  void sweep();
  void arm_sweep();
  void drop_tcp(std::uint64_t id);
  void accept(TcpListener& l);
  void read(TcpPeer& p);
  void emit(Event e);

  net::NetworkStack& stack_;
  const config::Config& config_;
  SessionFactory& sessions_;
  FlowControl* flow_ = nullptr;
  EventSink events_;
  std::function<void(bool)> done_;
  std::vector<std::vector<net::Endpoint>> passive_;  ///< per listen block
  std::unique_ptr<net::PendingOperation> resolving_;
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::map<std::uint64_t, std::unique_ptr<TcpPeer>> tcp_peers_;
  std::uint64_t next_peer_ = 1;
  std::vector<ListeningSocket> listening_;
  std::size_t peers_accepted_ = 0;
  std::size_t unauthenticated_tcp_ = 0;
  DatagramHook hook_;
  std::unique_ptr<net::Timer> sweep_timer_;
};

}  // namespace duet::transport
