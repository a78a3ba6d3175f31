// One duetd's WireGuard state: its identity, its peers with their allowed IPs and keys,
// and the sessions that carry each peer's traffic. Packets from the TUN are routed to a
// peer by destination (cryptokey routing); packets from a peer are accepted only from
// source addresses in that peer's allowed IPs.
//
// Keys live here, not in the sessions. A session is a path (one UDP source address or one
// TCP connection); every message names its keypair by receiver index, so:
// - a peer whose address changes is recognised by its first authenticated packet from
//   the new address, and its traffic follows it there (endpoint roaming);
// - a rekey may travel on any path, and packets sealed with the previous keypair that are
//   still in flight are accepted.
//
// The timers are the whitepaper's (section 6): a keypair is used for sending while younger
// than Reject-After-Time (180 s); the initiator of the current keypair starts a new
// handshake after Rekey-After-Time (120 s) when it sends, or at 165 s when it receives; an
// unanswered handshake is sent again every Rekey-Timeout (5 s, plus up to 1/3 s of jitter)
// for Rekey-Attempt-Time (90 s); a peer that received data and sent nothing for
// Keepalive-Timeout (10 s) sends a keepalive; all keys are erased after 3 × 180 s without
// a new handshake. A responder sends with a new keypair only after the initiator used it.
//
// Under load (more than `Limits::handshakes_per_second` initiations in a second) a
// handshake initiation is processed only if its mac2 carries the sender's cookie; others
// get a cookie reply (a MAC of their address under a secret that changes every 2 minutes),
// so a flood from spoofed addresses costs one keyed hash each, not a Diffie-Hellman.
#pragma once

#include <array>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "duet/net/address.hpp"
#include "duet/net/clock.hpp"
#include "duet/transport/session.hpp"
#include "duet/tunnel/allowed_ips.hpp"
#include "duet/tunnel/noise.hpp"

namespace duet::tunnel {

class CryptoPool;

struct PeerConfig {
  Key public_key{};
  Key preshared{};
  std::vector<net::Prefix> allowed_ips;
  /// Where to reach the peer before it has spoken (WireGuard's `endpoint`): with a path
  /// hook set, the device asks for a path there when it has something to send.
  std::optional<net::Endpoint> endpoint;
  /// WireGuard's persistent keepalive: a keepalive after this many seconds without
  /// sending anything (0: off), to keep a NAT mapping open.
  std::uint16_t persistent_keepalive = 0;
};

/// One keypair in use: its keys, whose it is, its age and its counters.
struct KeypairState {
  Keypair keys;
  std::size_t peer = 0;
  net::TimePoint created{};
  std::uint64_t send_counter = 0;
  ReplayWindow replay;
};

class WgSession;

struct DeviceLimits {
  /// Initiations per second above which the device is "under load" and asks for cookies.
  /// About a quarter of what one core completes here (4 000-6 000 a second, RESULTS.md): a
  /// flood meets cookies long before the loop saturates, while a server whose 10 000
  /// peers rekey every two minutes (~80 a second) never makes them pay the cookie round
  /// trip. (It was 64: such a server asked every handshake for a cookie.)
  std::size_t handshakes_per_second = 1000;
  /// Packets held per peer while a handshake is under way (WireGuard holds 128).
  std::size_t staged_packets = 128;
  /// Under load, initiations that do carry a valid cookie are processed at most this many
  /// per second per source (an IPv4 address, an IPv6 /64), after a burst of
  /// `handshake_burst`: a host that answers its cookie still cannot make us do a
  /// Diffie-Hellman for every packet it sends (WireGuard's ratelimiter: 20 and 5).
  std::size_t handshakes_per_source = 20;
  std::size_t handshake_burst = 5;
  /// The TUN's MTU: data is padded to a multiple of 16 but not past it, so that a full-size
  /// packet still fits the outer path (0: pad without limit).
  std::size_t mtu = 0;
  /// At most this many peers hold keys at once (`max-clients`; 0: no bound). Past it, a
  /// handshake from a peer without keys is refused; a peer that has them is never evicted.
  std::size_t max_clients = 0;
  /// Whether a keepalive that comes back soon after ours may be taken as an answer (path
  /// health then probes with keepalives instead of handshakes). Only when our peers are
  /// servers: duet's answer keepalives, WireGuard's do not (and are then never taken for
  /// one). Between p2p peers, whose keepalive timers run side by side, a keepalive of the
  /// peer's own would look like an answer.
  bool peers_may_answer_keepalives = false;
  /// Peers may be asked a path check before one is known to answer it: p2p, where a peer
  /// is as likely a duet node (which answers) as WireGuard (which drops the unknown type).
  /// Such a peer is asked twice at most until it answers once.
  bool peers_may_answer_path_checks = false;
  /// Threads that seal a TUN read's packets and open a turn's data messages together
  /// (`crypto-threads`); nullptr: all on the loop. Not owned.
  CryptoPool* crypto = nullptr;
};

class Device {
public:
  using PacketSink = std::function<void(std::span<const std::uint8_t>)>;
  /// Where ephemeral keys, session indices, cookie secrets and timer jitter come from: the
  /// stack's generator (the kernel's, or the simulator's seeded one, so a run replays).
  using RandomSource = std::function<void(std::span<std::uint8_t>)>;

  using Limits = DeviceLimits;

  Device(Identity me, std::vector<PeerConfig> peers, net::Clock& clock, PacketSink to_tun, RandomSource random,
         Limits limits = {});
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  /// A packet from the TUN: sealed for the peer whose allowed IPs hold its destination.
  /// When that peer's keys are missing or too old, the packet waits (up to
  /// Limits::staged_packets) for the handshake this starts. False when no peer matches or
  /// the peer has no path to send on (it has never connected).
  bool route(std::span<const std::uint8_t> ip_packet);
  /// route() of one TUN read's packets (a super-packet's segments: mostly one flow), in
  /// order. A run of packets to one destination costs one lookup; returns how many were
  /// sealed or staged.
  std::size_t route_batch(std::span<const std::span<const std::uint8_t>> ip_packets);
  /// A turn's received datagrams, before they are handed over one by one: with crypto
  /// threads, their data messages are opened together now (counters, replay window and
  /// everything else are still checked in order as each is handed over).
  void open_batch(std::span<const net::ReceivedDatagram> batch);
  /// Data messages sealed, and opened, on the crypto threads so far.
  struct ThreadedCrypto {
    std::uint64_t sealed = 0, opened = 0;
  };
  [[nodiscard]] const ThreadedCrypto& threaded_crypto() const { return threaded_; }

  struct PeerState {
    PeerConfig config;
    bool removed = false;          ///< dropped by a reload: a free slot, reused by the next new peer
    std::uint32_t generation = 0;  ///< bumped when the slot changes hands (sessions check it)
    bool live = false;             ///< holds keys (counted against max_clients)
    WgSession* active = nullptr;   ///< the path carrying its traffic now
    Timestamp last_timestamp{};    ///< newest initiation seen (replayed ones are refused)
    std::optional<net::TimePoint> last_initiation_consumed;
    std::uint64_t rx_bytes = 0, tx_bytes = 0;
    std::optional<net::TimePoint> last_handshake;
    std::uint64_t handshakes = 0;           ///< completed, either side initiating
    std::optional<net::Endpoint> endpoint;  ///< where its active path talks to
    config::Transport transport = config::Transport::udp;

    // WireGuard's keypairs: `current` seals; `previous` still opens packets in flight;
    // `next` are responder keypairs waiting for the initiator's first packet.
    std::shared_ptr<KeypairState> previous, current;
    std::vector<std::shared_ptr<KeypairState>> next;
    std::optional<Mac> cookie;         ///< from the peer's last cookie reply
    std::optional<Key> static_static;  ///< DH(our static, its static), kept after the first handshake
    net::TimePoint cookie_received{};
    net::TimePoint last_sent{}, last_data_received{};
    std::optional<net::TimePoint> rekey_since;  ///< a handshake we started, not answered yet
    net::TimePoint last_initiation_sent{};
    net::TimePoint keepalive_sent{};            ///< the engine's last keepalive or probe to it
    bool answers_keepalives = false;            ///< answered one at once (a duet responder; WireGuard does not)
    bool answers_path_checks = false;           ///< answered a path check: a duet peer, whatever its role
    std::uint8_t path_checks_asked = 0;         ///< path checks sent before one was answered (at most 2)
    std::unique_ptr<std::deque<Bytes>> staged;  ///< made when a packet first has to wait
    std::unique_ptr<net::Timer> retransmit_timer, keepalive_timer, erase_timer;
    std::unique_ptr<net::Timer> persistent_timer;  ///< persistent keepalive
  };
  [[nodiscard]] const std::vector<PeerState>& peers() const { return peers_; }

  /// A reload: peers with the same key keep their state and session (their allowed IPs
  /// and preshared key are updated), new ones are added (in freed slots first), missing
  /// ones are removed and their keys, timers and held packets freed.
  /// Returns how many were (kept, added, removed).
  struct PeerChanges {
    std::size_t kept = 0, added = 0, removed = 0;
  };
  PeerChanges update_peers(const std::vector<PeerConfig>& peers);
  /// Index of a live peer by key (for the initiator side of a client after a reload).
  [[nodiscard]] std::optional<std::size_t> peer_index(const Key& public_key) const { return find_peer(public_key); }
  /// The prefixes a peer holds now (a prefix given to a later peer has moved to it).
  [[nodiscard]] std::vector<net::Prefix> allowed_ips(std::size_t peer) const {
    return allowed_.prefixes_of(static_cast<AllowedIps::PeerId>(peer));
  }

  /// Sessions for the engine: initiators talk to one configured peer; responders learn
  /// theirs from the first authenticated message.
  std::unique_ptr<transport::Session> make_initiator(std::size_t peer, const net::Endpoint& remote,
                                                     config::Transport transport);
  std::unique_ptr<transport::Session> make_responder(const net::Endpoint& remote, config::Transport transport);
  [[nodiscard]] const Identity& identity() const { return me_; }
  /// False until a private key is set (a device configured at run time starts without).
  [[nodiscard]] bool has_identity() const { return has_identity_; }
  /// A new private key (nullopt: none): every peer's keys and handshakes in flight are
  /// dropped, as they were made with the old one; new handshakes start when traffic needs them.
  void set_identity(const std::optional<Identity>& id);

  /// Asked for a path to a peer that has none when the device has something to send it
  /// (data, a handshake, a persistent keepalive): the owner may open one (to the peer's
  /// endpoint) with make_path. Without a hook such packets are dropped.
  using PathNeeded = std::function<void(std::size_t peer)>;
  void set_path_needed(PathNeeded hook) { path_needed_ = std::move(hook); }
  /// A path to `remote` that the device uses for `peer` as soon as it is attached (an
  /// endpoint configured or last known), before the peer has authenticated on it.
  std::unique_ptr<transport::Session> make_path(std::size_t peer, const net::Endpoint& remote);
  /// Sends a keepalive to `peer` now (a handshake first when it has no keys).
  void send_keepalive(std::size_t peer);

  [[nodiscard]] bool under_load() const;
  /// Peers holding keys now, and handshakes refused because max_clients were.
  [[nodiscard]] std::size_t live_peers() const { return live_; }
  [[nodiscard]] std::uint64_t refused_max_clients() const { return refused_max_clients_; }
  /// Handshakes completed since the device started (either side initiating).
  [[nodiscard]] std::uint64_t handshakes() const { return handshakes_; }
  /// Handshakes completed per second, over the last 10 whole seconds.
  [[nodiscard]] double handshake_rate() const;
  /// A new max-clients bound (a reload); peers over it keep their keys.
  void set_max_clients(std::size_t n) { limits_.max_clients = n; }
  [[nodiscard]] std::uint64_t cookie_replies_sent() const { return cookie_replies_; }
  /// Cookie-carrying initiations dropped by the per-source limit.
  [[nodiscard]] std::uint64_t handshakes_rate_limited() const { return rate_limited_; }

private:
  friend class WgSession;
  std::optional<std::size_t> find_peer(const Key& public_key) const;
  /// The peer a session talks for, unless that peer has since been removed.
  [[nodiscard]] std::optional<std::size_t> peer_of(const WgSession& s) const;
  /// A path that is not (or no longer) where its peer's traffic goes.
  [[nodiscard]] bool path_is_stale(const WgSession& s) const;
  void bind_peer(WgSession& s, std::size_t peer);
  /// Whether `peer` may authenticate on path `s`: a path no one holds, its own, or a
  /// responder's path (a source address) its peer has been silent on for a while.
  [[nodiscard]] bool path_open_to(const WgSession& s, std::size_t peer) const;
  /// `peer` authenticated on `s` now: the path is its own from here on (the peer that held
  /// it before no longer sends there).
  void prove_path(WgSession& s, std::size_t peer);
  /// A slot for a new peer: a freed one, else a new one.
  std::size_t add_peer(const PeerConfig& config);
  /// Computes the peers' static-static Diffie-Hellman results a few at a time, one batch
  /// per turn of the loop, so that a first handshake does four of them instead of five.
  void precompute_static_static();
  std::uint32_t new_index();
  Key new_ephemeral();

  // What a session asks of the device, by message type.
  Bytes initiation(WgSession& s, std::size_t peer);
  void on_initiation(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r);
  void on_response(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r);
  void on_cookie(WgSession& s, std::span<const std::uint8_t> m);
  /// The keypair a data-format message names by its receiver index, unless too old to use.
  [[nodiscard]] std::shared_ptr<KeypairState> keypair_for(std::span<const std::uint8_t> m) const;
  void on_data(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r);
  /// duet's path check and its answer: authenticated like data, but the path is not bound
  /// to the peer and the session does not move to it.
  void on_path_message(WgSession& s, std::span<const std::uint8_t> m, transport::Session::Reply& r);
  /// A path check or answer for `peer` under its current keys; empty without usable keys.
  Bytes path_message(std::size_t peer, MessageType type);
  /// A data message for `peer` with its current keypair (empty packet: a keepalive);
  /// nullopt when there is no usable keypair. Starts a rekey when one is due. The message
  /// lives in the device's buffer until the next seal (send it, or copy it).
  std::optional<std::span<const std::uint8_t>> seal(std::size_t peer, std::span<const std::uint8_t> packet);
  /// The last destination looked up in a batch, and its peer (see route_batch).
  struct LastRoute {
    std::optional<net::Address> destination;
    std::optional<AllowedIps::PeerId> peer;
  };
  /// A packet from the TUN: its peer and the packet without what follows its IP length.
  struct Addressed {
    std::size_t peer;
    std::span<const std::uint8_t> inner;
  };
  /// Whose packet this is (nullopt: malformed, or nobody's), with a lookup saved when the
  /// destination is `last`'s.
  std::optional<Addressed> addressed(std::span<const std::uint8_t> packet, LastRoute& last) const;
  /// route() with a lookup saved when the destination is `last`'s.
  bool route_one(std::span<const std::uint8_t> packet, LastRoute& last);
  /// seal() straight into the buffer `peer`'s active path sends from (no copy between the
  /// cipher and the socket's queue); false without a usable keypair or active path.
  bool send_sealed(std::size_t peer, std::span<const std::uint8_t> packet);
  /// The keypair the next data message for `peer` is sealed with, its counter taken and
  /// the message's bytes counted; nullptr without a usable one.
  KeypairState* take_counter(std::size_t peer, std::size_t message_size, std::uint64_t& counter);
  /// After sealing for `peer` with `k`: starts a rekey when one is due.
  void rekey_if_due(std::size_t peer, const KeypairState& k);
  void make_active(WgSession& s);
  void forget(WgSession& s);

  std::shared_ptr<KeypairState> add_keypair(std::size_t peer, const Keypair& k);
  void retire(std::shared_ptr<KeypairState>& k);
  void retire_all(PeerState& ps);
  [[nodiscard]] bool usable(const std::shared_ptr<KeypairState>& k) const;
  void handshake_done(std::size_t peer);
  void begin_handshake(std::size_t peer, bool retry);
  void flush_staged(std::size_t peer);
  net::Timer& timer(std::unique_ptr<net::Timer>& t);
  Mac cookie_for(const net::Endpoint& source);
  /// The per-source token bucket for cookie-carrying initiations under load.
  bool handshake_allowed(const net::Endpoint& source);

  /// Gives a peer its configured prefixes in the table (later peers take overlaps).
  void add_allowed_ips(std::size_t peer);
  /// (Re)arms a peer's persistent keepalive from its configuration.
  void arm_persistent(std::size_t peer);
  /// Packets wait for a peer without usable keys: start the handshake they need, unless
  /// one we answered is about to be confirmed by the initiator.
  void handshake_for_staged(std::size_t peer);

  Identity me_;
  bool has_identity_ = true;
  PathNeeded path_needed_;
  std::vector<PeerState> peers_;
  AllowedIps allowed_;
  struct KeyHash {
    std::size_t operator()(const Key& k) const {  // keys are uniformly random: any 8 bytes do
      std::size_t h = 0;
      std::memcpy(&h, k.data(), sizeof h);
      return h;
    }
  };
  std::unordered_map<Key, std::size_t, KeyHash> by_key_;  ///< configured peers
  std::vector<std::size_t> free_slots_;
  std::size_t live_ = 0;
  std::size_t precomputed_ = 0;  ///< peers_[0..precomputed_) have been visited
  std::unique_ptr<net::Timer> precompute_timer_;
  std::uint64_t refused_max_clients_ = 0;
  std::uint64_t handshakes_ = 0;
  /// Handshakes per second for the last seconds (by second number, modulo the size).
  std::array<std::pair<std::int64_t, std::uint32_t>, 11> handshakes_by_second_{};
  net::Clock& clock_;
  PacketSink to_tun_;
  RandomSource random_;
  Limits limits_;
  std::uint32_t next_index_ = 0;
  std::unordered_map<std::uint32_t, std::shared_ptr<KeypairState>> by_index_;
  Key cookie_secret_{};
  std::optional<net::TimePoint> cookie_secret_at_;
  net::TimePoint load_window_{};
  std::size_t load_count_ = 0;
  std::optional<net::TimePoint> under_load_until_;
  std::uint64_t cookie_replies_ = 0;
  struct Bucket {
    net::Duration tokens{};  ///< time's worth of handshakes saved up (one costs 1 s / rate)
    net::TimePoint last{};
  };
  std::map<std::pair<bool, std::uint64_t>, Bucket> buckets_;  ///< by (IPv6?, address or /64)
  std::uint64_t rate_limited_ = 0;
  Bytes seal_buffer_, open_buffer_;  ///< reused for every data message: no allocation per packet
  /// route_batch() on crypto threads: each packet sealed into its place in `sealed_area_`.
  struct SealJob {
    std::size_t peer;
    KeypairState* keys;
    std::uint64_t counter;
    std::span<const std::uint8_t> packet;
    std::size_t offset, size;
  };
  std::vector<SealJob> seal_jobs_;
  Bytes sealed_area_;
  std::size_t route_batch_on_threads(std::span<const std::span<const std::uint8_t>> packets);
  /// open_batch(): each data message opened into its place in `opened_area_`, found again
  /// by on_data() by where the message lies, its keys and its tag.
  struct Opened {
    const std::uint8_t* data;
    std::size_t size;
    const KeypairState* keys;
    std::array<std::uint8_t, 16> tag;
    std::size_t offset;
    std::optional<std::uint64_t> counter;  ///< nullopt: not authentic
  };
  std::vector<Opened> opened_;
  ThreadedCrypto threaded_;
  std::size_t opened_next_ = 0;
  Bytes opened_area_;
  /// What open_batch() made of `m` under `k`, if it did.
  const Opened* opened_for(std::span<const std::uint8_t> m, const KeypairState& k);
};

/// A SessionFactory over a Device: initiators for a client, responders for listeners.
class DeviceSessions final : public transport::SessionFactory {
public:
  DeviceSessions(Device& device, std::optional<std::size_t> initiator_peer) : device_(device), peer_(initiator_peer) {}
  std::unique_ptr<transport::Session> create(const net::Endpoint& remote, config::Transport transport) override {
    return peer_ ? device_.make_initiator(*peer_, remote, transport) : device_.make_responder(remote, transport);
  }
  void prepare(std::span<const net::ReceivedDatagram> batch) override { device_.open_batch(batch); }

private:
  Device& device_;
  std::optional<std::size_t> peer_;
};

}  // namespace duet::tunnel
