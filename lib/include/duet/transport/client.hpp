// The connecting side: for each <connection> in turn, resolve every remote, order the
// addresses (policy), and race attempts over them (policy::HappyEyeballs) until one
// session handshake is answered. UDP has no connect, so a UDP attempt succeeds when the
// session's hello is answered; TCP when connected and answered. A connection that dies
// (EOF, reset, an error the kernel reports, keepalive silence) is made again from the
// top: resolve again, walk the list again; a round where everything failed waits
// connect-retry (doubling up to its maximum) before the next.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/network_stack.hpp"
#include "duet/policy/happy_eyeballs.hpp"
#include "duet/transport/events.hpp"
#include "duet/transport/framing.hpp"
#include "duet/transport/server.hpp"
#include "duet/transport/session.hpp"
#include "duet/transport/socket_factory.hpp"

namespace duet::transport {

class Client {
public:
  /// `shared` (p2p): a Server whose listening UDP sockets the attempts send from.
  Client(net::NetworkStack& stack, SocketFactory& sockets, const config::Config& config,
         SessionFactory& sessions, EventSink events, Server* shared = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void start();
  [[nodiscard]] bool connected() const;
  [[nodiscard]] std::optional<net::Endpoint> remote() const;
  [[nodiscard]] std::optional<config::Transport> transport() const;
  /// How many times a connection was made (1 after the first, 2 after one reconnect...).
  [[nodiscard]] std::size_t connections_made() const { return connections_made_; }
  /// True once resolv-retry ran out: the client stopped trying.
  [[nodiscard]] bool gave_up() const { return gave_up_; }
  /// Sends one session message on the current connection; false when there is none.
  bool send(std::span<const std::uint8_t> message);

private:
  struct Candidate {
    net::Endpoint remote;  ///< where the socket connects: the remote, or a proxy's address
    config::Transport transport;
    std::string via_host;  ///< through a proxy: the remote it is asked to reach
    std::uint16_t via_port = 0;
  };
  struct Attempt;

  void begin_round();
  void begin_connection(std::size_t index);
  void resolve_remote(std::size_t remote);
  void race();
  void execute(const std::vector<policy::HappyEyeballs::Action>& actions, bool cancels_are_timeouts);
  void arm_race_timer();
  void poll_timed_out();
  void begin_attempt(std::size_t i);
  void begin_udp(Attempt& a);
  void begin_tcp(Attempt& a);
  void udp_receive(Attempt& a);
  void tcp_read(Attempt& a);
  void on_message(Attempt& a, std::span<const std::uint8_t> message);
  void attempt_failed(std::size_t i, std::error_code ec, const std::string& why = "");
  void connection_failed();
  void established(std::size_t i);
  void keepalive_tick();
  void lost(std::error_code ec, const std::string& why);
  bool offer(const net::Endpoint& from, std::span<const std::uint8_t> data);
  void emit(Event e);

  net::NetworkStack& stack_;
  SocketFactory& sockets_;
  const config::Config& config_;
  SessionFactory& sessions_;
  EventSink events_;
  Server* shared_;

  std::size_t connection_ = 0;  ///< index into config_.connections
  std::vector<Candidate> candidates_;
  std::vector<std::size_t> remote_order_;  ///< indices into the connection's remotes
  std::vector<net::Endpoint> locals_;
  std::unique_ptr<net::PendingOperation> resolving_;
  std::unique_ptr<policy::HappyEyeballs> race_;
  std::vector<std::unique_ptr<Attempt>> attempts_;
  std::unique_ptr<Attempt> active_;
  std::unique_ptr<net::Timer> race_timer_;
  std::unique_ptr<net::Timer> keepalive_timer_;
  std::unique_ptr<net::Timer> retry_timer_;
  std::unique_ptr<net::Timer> poll_timer_;  ///< server-poll-timeout of the current <connection>
  net::TimePoint round_started_{};
  net::TimePoint last_received_{};
  int failed_rounds_ = 0;
  std::optional<net::TimePoint> resolve_failing_since_;  ///< for resolv-retry
  bool resolved_any_ = false;                            ///< in the current round
  bool gave_up_ = false;
  std::size_t connections_made_ = 0;
  std::uint64_t generation_ = 0;  ///< bumps on every new round; stale callbacks check it
};

}  // namespace duet::transport
