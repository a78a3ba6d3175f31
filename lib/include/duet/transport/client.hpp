// The connecting side: carries out what policy::Connector decides (which names to
// resolve, which addresses to try when, which attempt wins) with sockets from the stack
// or a proxy plugin, and reports every step as an Event. UDP has no connect, so a UDP
// attempt succeeds when the session's hello is answered; TCP when connected and
// answered. A connection that dies (EOF, reset, an error the kernel reports, keepalive
// silence) is made again from the top: resolve again, walk the list again; a round where
// everything failed waits connect-retry (policy::retry_wait) before the next.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/network_stack.hpp"
#include "duet/policy/connector.hpp"
#include "duet/transport/events.hpp"
#include "duet/transport/framing.hpp"
#include "duet/transport/server.hpp"
#include "duet/transport/session.hpp"
#include "duet/transport/socket_factory.hpp"

namespace duet::transport {

class Client {
public:
  /// `shared` (p2p): a Server whose listening UDP sockets the attempts send from.
  Client(net::NetworkStack& stack, SocketFactory& sockets, const config::Config& config, SessionFactory& sessions,
         EventSink events, Server* shared = nullptr);
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
  /// Where TCP connections report that they are too full (nullptr: nobody listens, and
  /// a full stream drops at the high water mark). Set before start().
  void set_flow(FlowControl* flow) { flow_ = flow; }

private:
  struct Attempt;

  void begin_round();
  void carry_out(policy::Connector::Outputs outputs);
  void arm_timer();
  void note(const policy::Connector::Note& n);
  void begin_attempt(std::size_t id, const policy::Candidate& candidate);
  void begin_udp(Attempt& a);
  void begin_tcp(Attempt& a);
  void udp_receive(Attempt& a);
  void tcp_read(Attempt& a);
  void on_message(Attempt& a, std::span<const std::uint8_t> message);
  /// Reports an attempt's end to the connector on a clean stack (we may be inside its socket).
  void attempt_failed(Attempt& a, std::error_code ec, const std::string& why = "");
  void cancelled(const policy::Connector::Cancel& c);
  void round_failed(bool resolved_any);
  void established(std::size_t id);
  void keepalive_tick();
  void lost(std::error_code ec, const std::string& why);
  bool offer(const net::Endpoint& from, std::span<const std::uint8_t> data);
  [[nodiscard]] const config::Connection& block() const;
  void emit(Event e);

  net::NetworkStack& stack_;
  SocketFactory& sockets_;
  const config::Config& config_;
  SessionFactory& sessions_;
  EventSink events_;
  Server* shared_;
  FlowControl* flow_ = nullptr;

  std::unique_ptr<policy::Connector> connector_;
  std::map<std::size_t, std::unique_ptr<net::PendingOperation>> lookups_;  ///< by query
  std::map<std::size_t, std::unique_ptr<Attempt>> attempts_;               ///< by attempt
  std::unique_ptr<Attempt> active_;
  std::size_t active_block_ = 0;  ///< the <connection> the active attempt came from
  std::unique_ptr<net::Timer> race_timer_;
  std::unique_ptr<net::Timer> keepalive_timer_;
  std::unique_ptr<net::Timer> retry_timer_;
  net::TimePoint round_started_{};
  net::TimePoint last_received_{};
  int failed_rounds_ = 0;
  std::optional<net::TimePoint> resolve_failing_since_;  ///< for resolv-retry
  bool gave_up_ = false;
  std::size_t connections_made_ = 0;
  std::uint64_t generation_ = 0;  ///< bumps on every new round; stale callbacks check it
};

}  // namespace duet::transport
