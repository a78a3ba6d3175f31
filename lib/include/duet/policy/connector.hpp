// The connecting side's decisions as one pure machine, sans I/O (the shape of Firefox's
// happy-eyeballs crate): the caller feeds it resolver answers as they arrive, attempt
// outcomes and the time, and carries out what it asks — resolve this name for this
// family, start an attempt to this address, cancel that one, report this — so that every
// race is a table of (inputs over time -> outputs).
//
// One machine walks one round of the <connection> list. For the current block it:
// - asks every name of every remote at once, each family separately (RFC 8305 section 3);
//   a literal needs no question;
// - lets a name's addresses race as soon as they are usable: an AAAA answer at once, an A
//   answer once the AAAA answer is in or 50 ms later (the resolution delay); answers that
//   arrive in one turn of the caller's loop are taken together, ordered by the host's
//   destination rules (the `sort` it is given: glibc's on a real host);
// - orders each name's addresses with the families interleaved (racing) or as sorted
//   (in order), the remotes in their configured order (or shuffled: remote-random), a late
//   name's addresses going ahead of a later name's that have not started yet;
// - starts one attempt per connection-attempt delay (policy::attempt_delay), the next at
//   once when one fails; gives each attempt connect-timeout and the block
//   server-poll-timeout; the first attempt that succeeds wins and the others are cancelled;
// - checks each name's addresses against the families the connection binds (rule 6) once
//   all its answers are in, and never tries an address of a family it cannot bind.
// A slow, dead, NXDOMAIN or SERVFAIL name, or a family whose lookup never answers, delays
// no other name and no other family. When every block has failed the machine says so
// (`Exhausted`); policy::retry says how long to wait before the next round.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/address.hpp"
#include "duet/net/clock.hpp"
#include "duet/net/result.hpp"

namespace duet::policy {

/// How long an A answer waits for the AAAA answer before its addresses race (RFC 8305).
inline constexpr net::Duration kResolutionDelay = std::chrono::milliseconds(50);

/// A proxy that stands between the client and its remotes for one transport: its address
/// is resolved and raced instead of the remote's, and the remote's name is handed to it.
struct Hop {
  std::string host;  ///< a name or a literal
  std::uint16_t port = 0;
  std::string name;  ///< what it is, for the log ("http-proxy")
};

/// What one attempt connects to.
struct Candidate {
  net::Endpoint endpoint;  ///< where the socket connects: the remote, or the proxy
  config::Transport transport = config::Transport::udp;
  std::string via_host;  ///< through a proxy: the remote it is asked to reach
  std::uint16_t via_port = 0;
  bool operator==(const Candidate&) const = default;
};

class Connector {
public:
  // --- outputs --------------------------------------------------------------------------
  /// Ask the resolver for one family of one name; answer with on_resolved(query, ...).
  struct Resolve {
    std::size_t query = 0;
    std::string host;
    std::uint16_t port = 0;
    net::Family family = net::Family::v6;
    config::Transport transport = config::Transport::udp;  ///< for the socket-type hint
    bool operator==(const Resolve&) const = default;
  };
  /// A question whose answer is no longer wanted (the block ended).
  struct CancelResolve {
    std::size_t query = 0;
    bool operator==(const CancelResolve&) const = default;
  };
  /// Begin attempt `attempt`; report it with on_attempt_failed / on_attempt_succeeded.
  struct Start {
    std::size_t attempt = 0;
    Candidate candidate;
    bool operator==(const Start&) const = default;
  };
  /// Stop attempt `attempt` and forget it.
  struct Cancel {
    enum class Why { lost_race, timed_out, poll_timeout, block_over };
    std::size_t attempt = 0;
    Why why = Why::lost_race;
    /// poll_timeout: "server-poll-timeout 120 s"; timed_out: why the deadline came before
    /// connect-timeout (in order, a share of the block's time), else empty
    std::string detail;
    bool operator==(const Cancel&) const = default;
  };
  /// Attempt `attempt` won: the connection is made; the machine is done.
  struct Connected {
    std::size_t attempt = 0;
    bool operator==(const Connected&) const = default;
  };
  /// Something to tell the user.
  struct Note {
    enum class Kind { resolving, resolved, resolve_failed, bind_remote_warning, bind_remote_error };
    Kind kind = Kind::resolving;
    std::string detail;
    std::error_code error;
    bool operator==(const Note&) const = default;
  };
  /// Every block failed; `resolved_any`: some name resolved in this round (resolv-retry).
  struct Exhausted {
    bool resolved_any = false;
    bool operator==(const Exhausted&) const = default;
  };
  using Output = std::variant<Resolve, CancelResolve, Start, Cancel, Connected, Note, Exhausted>;
  using Outputs = std::vector<Output>;

  /// Orders destinations the way the host would (RFC 6724 / glibc); `name` is the name
  /// they came from.
  using Sort = std::function<std::vector<net::Endpoint>(const std::string& name, std::vector<net::Endpoint>)>;

  struct Settings {
    const config::Config* config = nullptr;  ///< outlives the machine
    std::optional<Hop> tcp_proxy, udp_proxy;
    Sort sort;                  ///< default: IPv6 before IPv4, order within a family kept
    std::uint64_t shuffle = 0;  ///< random bits for remote-random
    /// An address tried only when every other one of the block has been (a failover's:
    /// the path that just died), whichever remote it belongs to.
    std::optional<net::Endpoint> last_resort;
  };

  explicit Connector(Settings settings);

  /// Begins the round with the first <connection>.
  Outputs start(net::TimePoint now);
  /// The answer to `query`.
  Outputs on_resolved(std::size_t query, const net::Result<std::vector<net::Endpoint>>& answer, net::TimePoint now);
  /// Attempt `attempt` failed (the caller reports its error).
  Outputs on_attempt_failed(std::size_t attempt, net::TimePoint now);
  /// Attempt `attempt` was answered.
  Outputs on_attempt_succeeded(std::size_t attempt, net::TimePoint now);
  /// Time has reached next_deadline().
  Outputs on_timer(net::TimePoint now);
  /// When on_timer must next be called (may be `now`: answers of one turn are gathered).
  [[nodiscard]] std::optional<net::TimePoint> next_deadline() const;
  /// Connected or exhausted.
  [[nodiscard]] bool finished() const { return finished_; }
  /// The <connection> block being tried (index into the configuration's).
  [[nodiscard]] std::size_t block() const { return block_; }
  /// Every address this block has released so far (answered lookups and literals), in the
  /// order they are tried: what a client knows of its peer's other paths once connected.
  [[nodiscard]] std::vector<Candidate> candidates() const;

private:
  struct Lookup {
    enum class State { unasked, pending, answered, failed } state = State::unasked;
    std::size_t query = 0;
    std::vector<net::Endpoint> endpoints;  ///< as answered (every family the name has)
    std::error_code error;
  };
  struct Target {
    std::string host;  ///< what is resolved: the remote, or its proxy
    std::uint16_t port = 0;
    config::Transport transport = config::Transport::udp;
    std::string via_host;
    std::uint16_t via_port = 0;
    Lookup v6, v4;
    std::optional<net::TimePoint> a_at;  ///< when the A answer came (for the resolution delay)
    bool v6_released = false, v4_released = false;
    std::vector<net::Endpoint> sorted;  ///< released addresses, the first family's first
    std::vector<net::Endpoint> order;   ///< the same in the order to try (interleaved when racing)
    std::vector<net::Endpoint> tried;
    bool settled_noted = false;
    /// Whether an attempt to `e` was started in this block.
    [[nodiscard]] bool was_tried(const net::Endpoint& e) const {
      return std::find(tried.begin(), tried.end(), e) != tried.end();
    }
  };
  struct Attempt {
    std::size_t id = 0;
    net::TimePoint deadline{};
    bool running = true;
    std::string deadline_why;  ///< set when the deadline is a share of the block's time
  };

  void begin_block(std::size_t index, net::TimePoint now, Outputs& out);
  void end_block(Cancel::Why why, net::TimePoint now, Outputs& out);
  void release(net::TimePoint now, Outputs& out);
  void settle_notes(Target& t, Outputs& out);
  void advance(net::TimePoint now, bool failure, Outputs& out);
  bool start_next(net::TimePoint now, Outputs& out);
  void check_exhausted(net::TimePoint now, Outputs& out);
  [[nodiscard]] bool resolving() const;
  [[nodiscard]] std::size_t running() const;
  [[nodiscard]] bool filter_family(net::Family f) const;
  Target* target_of_query(std::size_t query, Lookup** lookup);

  Settings s_;
  std::uint64_t shuffle_;
  std::size_t block_ = 0;
  std::vector<Target> targets_;
  std::vector<net::Family> bound_;  ///< families the block binds (empty: no restriction)
  net::Duration delay_{0};
  net::Duration timeout_{0};
  net::TimePoint block_deadline_{};
  std::vector<Attempt> attempts_;  ///< this block's
  std::optional<net::TimePoint> last_start_;
  bool gather_ = false;  ///< answers arrived this turn: decide at on_timer(now)
  net::TimePoint gather_at_{};
  std::size_t next_query_ = 1, next_attempt_ = 1;
  bool resolved_any_ = false;
  bool finished_ = false;
};

std::string_view to_string(Connector::Cancel::Why why);

}  // namespace duet::policy
