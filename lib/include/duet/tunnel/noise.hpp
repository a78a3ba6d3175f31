// WireGuard's handshake (Noise_IKpsk2) and transport data messages, as pure functions
// over byte buffers: no sockets, no clock (timestamps and indices are given), so they are
// tested byte for byte and against wireguard-go.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "duet/tunnel/constants.hpp"
#include "duet/tunnel/crypto.hpp"

namespace duet::tunnel {

using Timestamp = std::array<std::uint8_t, kTimestampLength>;

/// TAI64N: 8 bytes big-endian seconds since 1970 plus 2^62, 4 bytes big-endian nanoseconds.
Timestamp tai64n(std::uint64_t unix_seconds, std::uint32_t nanoseconds);

struct Identity {
  Key private_key{};
  Key public_key{};
  static Identity from_private(const Key& private_key);
};

/// Session keys from a completed handshake.
struct Keypair {
  Key send{};
  Key receive{};
  std::uint32_t local_index = 0;   ///< what the peer puts in messages to us
  std::uint32_t remote_index = 0;  ///< what we put in messages to the peer
  bool initiator = false;
};

/// The initiator's state between its initiation and the response.
struct InitiatorState {
  Key chaining{};
  Key hash{};
  Key ephemeral_private{};
  Key remote_static{};
  Key preshared{};
  std::uint32_t local_index = 0;
};

/// Builds a handshake initiation (148 bytes) to `peer` with a fresh `ephemeral` private
/// key (the caller draws it: these functions use no randomness). `cookie` (from a cookie
/// reply) fills mac2; without one mac2 is zero.
Bytes create_initiation(const Identity& me, const Key& peer, const Key& preshared, std::uint32_t local_index,
                        const Timestamp& timestamp, const Key& ephemeral, InitiatorState& state,
                        const std::optional<Mac>& cookie = std::nullopt);

/// What a responder learns from a valid initiation.
struct ReceivedInitiation {
  Key peer_static{};
  Timestamp timestamp{};
  std::uint32_t remote_index = 0;
  Key remote_ephemeral{};
  Key chaining{};
  Key hash{};
};

/// DH(our static, the peer's static) for a peer key, which never changes for a peer: a
/// responder keeps it (WireGuard's precomputed static-static) instead of computing it for
/// every initiation; nullopt for a key it does not know, refused before that work.
using StaticStatic = std::function<std::optional<Key>(const Key& peer_static)>;

/// Checks mac1 (keyed with our public key) and decrypts; nullopt for anything else.
/// `static_static`, when given, supplies DH(static, static).
std::optional<ReceivedInitiation> consume_initiation(const Identity& me, std::span<const std::uint8_t> message,
                                                     const StaticStatic& static_static = nullptr);

/// Builds the response (92 bytes, with a fresh `ephemeral` private key) and the
/// responder's keypair.
Bytes create_response(const Identity& me, const ReceivedInitiation& initiation, const Key& preshared,
                      std::uint32_t local_index, const Key& ephemeral, Keypair& keys);

/// The initiator's side: checks the response and derives the keypair.
std::optional<Keypair> consume_response(const Identity& me, const InitiatorState& state,
                                        std::span<const std::uint8_t> message);

/// mac1 of a handshake message as the receiver `receiver_public` checks it.
bool mac1_valid(const Key& receiver_public, std::span<const std::uint8_t> message);

// --- cookies (whitepaper 5.4.7): a responder under load answers a handshake message whose
// mac2 is not made with the sender's current cookie by a cookie reply instead of doing the
// Diffie-Hellman work; the sender's next message carries mac2 = MAC(cookie, message).

/// The mac1 field of a handshake initiation or response (what a cookie reply is bound to).
std::optional<Mac> mac1_of(std::span<const std::uint8_t> message);
/// True when a handshake message's mac2 is MAC(cookie, everything before mac2).
bool mac2_valid(const Mac& cookie, std::span<const std::uint8_t> message);
/// A cookie reply (64 bytes) to `message`, for its sender index, with the cookie sealed
/// under HASH("cookie--" || our public key) and bound to the message's mac1; nullopt if
/// `message` is not a handshake message. The 24-byte nonce is the caller's.
std::optional<Bytes> create_cookie_reply(const Key& my_public, std::span<const std::uint8_t> message, const Mac& cookie,
                                         std::span<const std::uint8_t, kCookieNonceLength> nonce);
/// The initiator's side: the cookie from a reply sealed by `peer_public` for our message
/// with mac1 `sent_mac1`; nullopt for anything forged, truncated or meant for another message.
std::optional<Mac> consume_cookie_reply(const Key& peer_public, std::span<const std::uint8_t> reply,
                                        const Mac& sent_mac1);

/// A transport data message: the packet is zero-padded to a multiple of 16 bytes.
Bytes encrypt_data(const Keypair& keys, std::uint64_t counter, std::span<const std::uint8_t> packet);

struct Decrypted {
  std::uint64_t counter = 0;
  Bytes packet;  ///< with its padding (the inner IP header tells the real length)
};
/// Authenticates and decrypts; nullopt for a wrong key, a bad tag or a short message.
std::optional<Decrypted> decrypt_data(const Keypair& keys, std::span<const std::uint8_t> message);

/// The data path's versions: the message (or the padded packet) is written into `out`,
/// whose capacity is reused from packet to packet, so a warm path allocates nothing.
/// decrypt_data_into returns the message's counter. encrypt_data_into pads to a multiple
/// of 16 but not past `mtu` (the TUN's; 0: no limit), as WireGuard does.
/// `type`: kMessageData, or one of duet's path messages in the same format.
void encrypt_data_into(const Keypair& keys, std::uint64_t counter, std::span<const std::uint8_t> packet, Bytes& out,
                       std::size_t mtu, MessageType type = kMessageData);
/// The size of the data message encrypt_data_to() makes of a `packet_size`-byte packet.
std::size_t data_message_size(std::size_t packet_size, std::size_t mtu);
/// encrypt_data_into() into `out`, which has room for data_message_size() bytes (else
/// nothing is written): the packet is sealed straight into it, not copied first. Returns
/// the bytes written.
std::size_t encrypt_data_to(const Keypair& keys, std::uint64_t counter, std::span<const std::uint8_t> packet,
                            std::span<std::uint8_t> out, std::size_t mtu, MessageType type = kMessageData);
/// decrypt_data_into() into `out` (at least message.size() - kDataMinLength bytes): the
/// padded packet is its first message.size() - kDataMinLength bytes.
std::optional<std::uint64_t> decrypt_data_to(const Keypair& keys, std::span<const std::uint8_t> message,
                                             std::span<std::uint8_t> out, MessageType type = kMessageData);
std::optional<std::uint64_t> decrypt_data_into(const Keypair& keys, std::span<const std::uint8_t> message, Bytes& out,
                                               MessageType type = kMessageData);

/// The receiver index of a data or response message (to find the keypair), if long enough.
std::optional<std::uint32_t> receiver_index(std::span<const std::uint8_t> message);

/// Sliding window of received counters (RFC 6479): each counter is accepted once, and
/// only within kCounterWindowSize of the newest.
class ReplayWindow {
public:
  /// True the first time `counter` is seen inside the window; false for replays, for
  /// counters too far behind, and past kRejectAfterMessages.
  bool accept(std::uint64_t counter);

private:
  static constexpr std::size_t kWords = 8192 / 64;
  std::array<std::uint64_t, kWords> bits_{};
  std::uint64_t newest_ = 0;  ///< highest counter + 1 seen (0: none yet)
};

}  // namespace duet::tunnel
