// The connecting side: carries out what policy::Connector decides (which names to
// resolve, which addresses to try when, which attempt wins) with sockets from the stack
// or a proxy plugin, and reports every step as an Event. UDP has no connect, so a UDP
// attempt succeeds when the session's hello is answered; TCP when connected and
// answered. A connection that dies (EOF, reset, an error the kernel reports, keepalive
// silence) is made again from the top: resolve again, walk the list again; a round where
// everything failed waits connect-retry (policy::retry_wait) before the next.
//
// Path health: a path that carried something of ours and then stays silent for a few
// round trips is probed (Session::probe), and declared dead when kProbes probes go
// unanswered; the kernel's errors (ICMP) end it at once. A dead path is left for the next
// address at once: the round that follows reuses the answers of the last lookup and tries
// the dead address last, so the standby (the other family, usually) answers within one
// round trip. While on a standby the client checks the path it left, with growing pauses,
// and moves back when it answers again; a path moved back to that dies soon after makes the
// next move back wait longer (no flapping).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <tuple>
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
  /// The active path's smoothed round-trip time (0: not measured yet).
  [[nodiscard]] net::Duration smoothed_rtt() const { return health_.srtt; }
  /// Paths declared dead by path health (silence after sending, probes unanswered).
  [[nodiscard]] std::uint64_t paths_declared_dead() const { return paths_dead_; }
  /// Path probes sent (nothing heard back for a while after sending).
  [[nodiscard]] std::uint64_t probes_sent() const { return probes_sent_; }
  /// Moves back to a path that had died once it answered again.
  [[nodiscard]] std::uint64_t moves_back() const { return moves_back_; }
  /// A standby: another address of the peer, checked ahead of need (see check_standby).
  struct Standby {
    policy::Candidate candidate;
    net::TimePoint checked{};  ///< when it last answered a check
    net::Duration rtt{0};      ///< that check's round trip
  };
  /// The standby known to work now, if any.
  [[nodiscard]] const std::optional<Standby>& standby() const { return standby_; }
  /// Path checks sent to standbys so far.
  [[nodiscard]] std::uint64_t standby_checks() const { return standby_checks_; }
  /// Failovers that went straight to a known standby, keeping the tunnel keys.
  [[nodiscard]] std::uint64_t standby_moves() const { return standby_moves_; }
  /// Sends one session message on the current connection; false when there is none.
  bool send(std::span<const std::uint8_t> message);
  /// Where TCP connections and UDP sockets report that they are too full (nullptr: nobody
  /// listens, and a full stream drops at the high water mark). Set before start().
  void set_flow(FlowControl* flow) { flow_ = flow; }

  /// Probes sent into a silence before the path is declared dead.
  static constexpr int kProbes = 7;

private:
  struct Attempt;
  /// What the active path has shown of itself.
  struct Health {
    net::Duration srtt{0}, rttvar{0};                ///< RFC 6298 estimates; 0: no sample yet
    std::optional<net::TimePoint> unanswered_since;  ///< our first send since the peer was last heard
    std::optional<net::TimePoint> timing;            ///< a probe or keepalive whose answer times the path
    int probes = 0;                                  ///< probes unanswered in this silence
    std::uint64_t progress = 0;                      ///< FlowControl::progress() at the last probe
    bool from_hello = false;                         ///< srtt is the hello exchange's (an upper bound)
  };

  void begin_round();
  void carry_out(policy::Connector::Outputs outputs);
  void arm_timer();
  void note(const policy::Connector::Note& n);
  void begin_attempt(std::size_t id, const policy::Candidate& candidate);
  void begin_udp(Attempt& a);
  /// Connects a TCP attempt and sends its opening (its hello unless the attempt has other
  /// messages to open with); `bind` as open_udp's.
  void begin_tcp(Attempt& a, bool bind = true);
  void udp_receive(Attempt& a);
  void tcp_read(Attempt& a);
  void on_message(Attempt& a, std::span<const std::uint8_t> message);
  /// Reports an attempt's end to the connector on a clean stack (we may be inside its socket).
  void attempt_failed(Attempt& a, std::error_code ec, const std::string& why = "");
  void cancelled(const policy::Connector::Cancel& c);
  void round_failed(bool resolved_any);
  void established(std::size_t id);
  /// Once connected elsewhere than the address a failover left (avoid_) or the race tried
  /// first: checks that one now and then, to move back (see try_failback).
  void watch_path_left();
  /// A new round after the active path was lost (`demote`: as a failover's, see lost()).
  void reconnect(bool demote);
  /// active_ is the path from now on (a race won, or a move back): its health starts
  /// afresh, `connected` is said, the session sends on it and its first keepalive goes.
  void activate(net::TimePoint now, net::Duration elapsed, std::string detail);
  void keepalive_tick();
  /// `demote`: the path itself failed (silence, an ICMP error), not the peer (EOF): the
  /// next round tries this address last and starts from the last lookup's answers.
  void lost(std::error_code ec, const std::string& why, bool demote);
  // Path health.
  void on_sent();
  void on_heard();
  void rtt_sample(net::Duration r);
  [[nodiscard]] net::Duration rto() const;
  [[nodiscard]] net::Duration quiet_deadline() const;
  [[nodiscard]] net::Duration probe_interval() const;
  void health_check();
  // Moving back to the path a failover left.
  void schedule_failback(net::Duration wait);
  void try_failback();
  void trial_over(std::size_t id);
  void promote_trial(std::size_t id);
  // A standby checked ahead of need, and the move to it when the active path dies.
  [[nodiscard]] std::optional<policy::Candidate> standby_candidate() const;
  /// The attempt's UDP socket, bound as the configuration says unless `bind` is false (a
  /// standby check: `--bind` binds only the family being connected over).
  std::error_code open_udp(Attempt& a, bool bind = true);
  void check_standby();
  void standby_checked(std::size_t id, bool answered);
  bool move_to_standby(const std::string& why);
  void move_over(std::size_t id, bool answered);
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
  Health health_;
  std::unique_ptr<net::Timer> health_timer_;
  std::uint64_t probes_sent_ = 0;
  std::uint64_t paths_dead_ = 0, moves_back_ = 0;
  /// A failover's: the address that died (tried last in the next round) ...
  std::optional<policy::Candidate> avoid_;
  bool use_cache_ = false;  ///< ... and the next round answers lookups from answers_
  std::map<std::tuple<std::string, std::uint16_t, net::Family, config::Transport>, std::vector<net::Endpoint>>
      answers_;                                   ///< the last answer for each question
  std::optional<policy::Candidate> preferred_;    ///< the path a failover left, checked to move back
  bool preferred_worked_ = false;                 ///< it carried this session before (checked more often)
  std::optional<policy::Candidate> first_tried_;  ///< this round's first attempt: the host's favourite
  std::unique_ptr<Attempt> trial_;                ///< a check of preferred_ in flight
  std::unique_ptr<net::Timer> failback_timer_;
  net::Duration failback_wait_{0}, failback_first_{0};
  std::optional<net::TimePoint> moved_back_at_;
  std::size_t next_trial_id_ = std::size_t{1} << 40;  ///< apart from the connector's attempt ids
  std::unique_ptr<Attempt> check_;                    ///< a standby check in flight
  std::unique_ptr<Attempt> move_;                     ///< a move to the standby in flight
  std::optional<Standby> standby_;
  std::vector<policy::Candidate> known_;  ///< the winning round's addresses (standby candidates)
  std::unique_ptr<net::Timer> standby_timer_, check_timer_, move_timer_;
  net::TimePoint last_traffic_{};  ///< the session last sent on the active path
  net::TimePoint lost_at_{};       ///< the active path was declared dead
  std::uint64_t standby_checks_ = 0, standby_moves_ = 0;
  bool standby_checked_since_connect_ = false;
  int failed_rounds_ = 0;
  std::optional<net::TimePoint> resolve_failing_since_;  ///< for resolv-retry
  bool gave_up_ = false;
  std::size_t connections_made_ = 0;
  std::uint64_t generation_ = 0;  ///< bumps on every new round; stale callbacks check it
};

}  // namespace duet::transport
