// The primitives WireGuard uses, as thin wrappers over maintained libraries: libsodium
// (X25519, XChaCha20-Poly1305, base64, random bytes) and OpenSSL 3 (ChaCha20-Poly1305,
// BLAKE2s, keyed BLAKE2s, HMAC-BLAKE2s). No primitive is written here. ChaCha20-Poly1305
// is OpenSSL's because it is the data plane's hot path and OpenSSL's is the faster of the
// two on this machine (bench/RESULTS.md).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "duet/config/key.hpp"

namespace duet::tunnel {

using Key = config::Key;
using Bytes = std::vector<std::uint8_t>;
using Mac = std::array<std::uint8_t, 16>;

/// Initialises libsodium and runs every primitive once, so that OpenSSL has read its
/// configuration and fetched its algorithms before the first handshake (safe to call more
/// than once; per thread for the OpenSSL contexts); false if it cannot.
bool crypto_init();

// --- keys ------------------------------------------------------------------------------
/// A new X25519 private key (clamped), from the system's random generator.
Key generate_private_key();
/// 32 random bytes made into a private key (clamped as RFC 7748 says).
Key clamp_private_key(Key bytes);
/// X25519 public key of a private key.
Key public_key(const Key& private_key);
/// X25519 shared secret; nullopt for a low-order point (an all-zero result).
std::optional<Key> dh(const Key& private_key, const Key& public_key);
/// WireGuard's key format: standard base64 of the 32 bytes (44 characters).
using config::key_from_base64;
using config::key_to_base64;

// --- BLAKE2s -----------------------------------------------------------------------------
/// HASH(x) = BLAKE2s(x), 32 bytes, over the concatenation of `parts`.
Key hash(std::initializer_list<std::span<const std::uint8_t>> parts);
/// MAC(key, x) = keyed BLAKE2s(key, x), 16 bytes.
Mac mac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data);
/// HMAC(key, x) = HMAC-BLAKE2s(key, x), 32 bytes.
Key hmac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data);
/// KDF_n(key, input) of the whitepaper: n outputs of 32 bytes (n = 1..3).
std::vector<Key> kdf(const Key& key, std::span<const std::uint8_t> input, int n);

// --- AEADs ---------------------------------------------------------------------------------
/// ChaCha20-Poly1305 (IETF) with nonce = 4 zero bytes || counter (little endian).
Bytes aead_encrypt(const Key& key, std::uint64_t counter, std::span<const std::uint8_t> plain,
                   std::span<const std::uint8_t> auth);
std::optional<Bytes> aead_decrypt(const Key& key, std::uint64_t counter, std::span<const std::uint8_t> sealed,
                                  std::span<const std::uint8_t> auth);
/// The same, without allocating: seals the first `plain_length` bytes of `data` where they
/// lie and writes the 16-byte tag right after them (`data` must have room for it).
void aead_seal_in_place(const Key& key, std::uint64_t counter, std::span<std::uint8_t> data, std::size_t plain_length,
                        std::span<const std::uint8_t> auth);
/// Seals `plain` followed by `padding` zero bytes into `out` (at least plain.size() +
/// padding + 16 bytes: the sealed bytes, then the tag), without copying `plain` first.
void aead_seal_to(const Key& key, std::uint64_t counter, std::span<const std::uint8_t> plain, std::size_t padding,
                  std::span<std::uint8_t> out);
/// Opens `sealed` into `out` (at least sealed.size() - 16 bytes); false if not authentic
/// (then `out` holds garbage).
bool aead_open_to(const Key& key, std::uint64_t counter, std::span<const std::uint8_t> sealed,
                  std::span<const std::uint8_t> auth, std::span<std::uint8_t> out);
/// XChaCha20-Poly1305 with a 24-byte nonce (cookie replies).
Bytes xaead_encrypt(const Key& key, std::span<const std::uint8_t, 24> nonce, std::span<const std::uint8_t> plain,
                    std::span<const std::uint8_t> auth);
std::optional<Bytes> xaead_decrypt(const Key& key, std::span<const std::uint8_t, 24> nonce,
                                   std::span<const std::uint8_t> sealed, std::span<const std::uint8_t> auth);

/// Random bytes from the system generator (handshake ephemerals, indices, cookie secrets).
void random_bytes(std::span<std::uint8_t> out);

}  // namespace duet::tunnel
