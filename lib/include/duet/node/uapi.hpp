// WireGuard's cross-platform configuration protocol (the "UAPI" that `wg` speaks to a
// userspace implementation over /var/run/wireguard/DEV.sock), on a Node.
//
//   get=1\n\n        -> key=value lines: the private key, port, mark, then each peer's
//                       public key, preshared key, endpoint, last handshake, byte counts,
//                       persistent keepalive and allowed IPs; then errno=0\n\n
//   set=1\n KEY=VALUE... \n\n  -> errno=N\n\n
//
// Errors are answered with the values wireguard-go gives (negative errno: -22 for a bad
// key or value, -71 for a line without '=', -98 for a listen port in use). Unlike
// wireguard-go, which applies a set line by line and stops at the first bad one, a set
// here is parsed and checked whole and then applied at once: a request with an error
// changes nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "duet/config/key.hpp"
#include "duet/net/address.hpp"
#include "duet/net/network_stack.hpp"

namespace duet::node {
class Node;
}

namespace duet::node::uapi {

/// The errno values of the answers, as wireguard-go prints them.
inline constexpr int kOk = 0;
inline constexpr int kIo = -5;          ///< EIO
inline constexpr int kInvalid = -22;    ///< EINVAL: a bad key or value
inline constexpr int kProtocol = -71;   ///< EPROTO: a line that is not KEY=VALUE
inline constexpr int kPortInUse = -98;  ///< EADDRINUSE: the listen port cannot be bound

/// What went wrong, with the errno value to answer.
struct Error {
  int code = kOk;
  std::string message;
  [[nodiscard]] bool ok() const { return code == kOk; }
};

/// One allowed-IP line of a peer, in order: add, remove (`allowed_ip=-PREFIX`), or clear
/// (`replace_allowed_ips=true`).
struct AllowedIpChange {
  enum class Kind : std::uint8_t { add, remove, clear } kind = Kind::add;
  net::Prefix prefix;
};

/// The lines about one peer (from its public_key line to the next one).
struct PeerChange {
  config::Key public_key{};
  bool remove = false;
  bool update_only = false;
  std::optional<config::Key> preshared;  ///< all zeros: none
  std::optional<net::Endpoint> endpoint;
  std::optional<std::uint16_t> persistent_keepalive;
  std::vector<AllowedIpChange> allowed_ips;
};

/// A whole set request, parsed.
struct SetRequest {
  std::optional<std::optional<config::Key>> private_key;  ///< set to a key, or (all zeros) removed
  std::optional<std::uint16_t> listen_port;
  std::optional<std::uint32_t> fwmark;
  bool replace_peers = false;
  std::vector<PeerChange> peers;
};

/// Parses the lines of a set operation (after "set=1\n", without the final blank line).
std::variant<SetRequest, Error> parse_set(std::string_view body);

/// The answer to get (without the closing errno line).
std::string get(const Node& node, net::NetworkStack& stack);

/// Applies a parsed request to `node` (all or nothing).
Error apply(Node& node, net::NetworkStack& stack, const SetRequest& request);

/// A UDP port free on both families' wildcards, of the system's ephemeral range (as
/// WireGuard picks one for listen_port 0); nullopt after 100 tries.
std::optional<std::uint16_t> free_port(net::NetworkStack& stack);

/// parse_set, then apply.
Error set(Node& node, net::NetworkStack& stack, std::string_view body);

/// One client connection's byte stream, cut into operations: feed what arrives, run each
/// complete operation, write back what feed returns. Bounded: an operation line longer
/// than 64 bytes, a line longer than `max_line` or a request larger than `max_request`
/// closes the connection, as does an unknown operation (as in wireguard-go).
class Connection {
public:
  enum class Op : std::uint8_t { get, set };
  /// Runs one operation; returns its whole answer (ending in "errno=N\n\n").
  using Run = std::function<std::string(Op op, std::string_view body)>;

  explicit Connection(std::size_t max_line = 4096, std::size_t max_request = 32u << 20)
      : max_line_(max_line), max_request_(max_request) {}
  /// Takes received bytes; returns the answers to operations they completed.
  std::string feed(std::string_view data, const Run& run);
  /// The peer closed its side: a set cut short is run with the lines it has (as
  /// wireguard-go does); returns its answer.
  std::string finish(const Run& run);
  /// No more bytes will be read; close once the answers are written.
  [[nodiscard]] bool closed() const { return closed_; }
  /// Bytes held for an operation not yet complete.
  [[nodiscard]] std::size_t pending() const { return buffer_.size(); }

private:
  enum class State : std::uint8_t { op, get_blank, set_body };
  std::size_t max_line_, max_request_;
  State state_ = State::op;
  std::string buffer_;
  std::size_t line_start_ = 0;  ///< where the line being received begins in buffer_
  bool closed_ = false;
};

/// The answer line for an error code.
std::string errno_line(int code);

}  // namespace duet::node::uapi
