// WireGuard's protocol constants, with the names the whitepaper and the kernel use.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace duet::tunnel {

using namespace std::chrono_literals;

inline constexpr std::string_view kConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
inline constexpr std::string_view kIdentifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";
inline constexpr std::string_view kLabelMac1 = "mac1----";
inline constexpr std::string_view kLabelCookie = "cookie--";

enum MessageType : std::uint8_t {
  kMessageHandshakeInitiation = 1,
  kMessageHandshakeResponse = 2,
  kMessageHandshakeCookie = 3,
  kMessageData = 4,
  // duet's own, never sent to a peer not known to be duet's (WireGuard drops unknown types):
  // a data message's format, empty, under the current keys, that asks whether a path works
  // (check) or says it does (answer) without moving the session there (roaming would).
  kMessageDuetPathCheck = 0xd0,
  kMessageDuetPathAnswer = 0xd1,
};

inline constexpr std::size_t kKeyLength = 32;
inline constexpr std::size_t kAeadTagLength = 16;
inline constexpr std::size_t kTimestampLength = 12;  // TAI64N
inline constexpr std::size_t kMacLength = 16;
inline constexpr std::size_t kCookieNonceLength = 24;

inline constexpr std::size_t kInitiationLength = 148;
inline constexpr std::size_t kResponseLength = 92;
inline constexpr std::size_t kCookieReplyLength = 64;
inline constexpr std::size_t kDataHeaderLength = 16;  // type, reserved, receiver, counter
inline constexpr std::size_t kDataMinLength = kDataHeaderLength + kAeadTagLength;

inline constexpr std::uint64_t kRekeyAfterMessages = 1ull << 60;
inline constexpr std::uint64_t kRejectAfterMessages = ~0ull - (1ull << 13);
inline constexpr auto kRekeyAfterTime = 120s;
inline constexpr auto kRejectAfterTime = 180s;
inline constexpr auto kRekeyAttemptTime = 90s;
inline constexpr auto kRekeyTimeout = 5s;
inline constexpr auto kKeepaliveTimeout = 10s;
inline constexpr auto kCookieRefreshTime = 120s;

/// Replay window: counters up to this far behind the newest are still accepted once.
inline constexpr std::uint64_t kCounterWindowSize = 8192 - 64;

}  // namespace duet::tunnel
