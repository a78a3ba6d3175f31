#include "duet/tunnel/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace duet::tunnel {

bool crypto_init() {
  if (sodium_init() < 0) return false;
  // OpenSSL reads its configuration and fetches each algorithm on first use: ~3-5 ms that
  // a daemon's first handshake paid on each side. Every primitive runs once here instead.
  const Key zero{};
  (void)public_key(zero);
  (void)hash({zero});
  (void)mac(zero, zero);
  (void)hmac(zero, zero);
  std::array<std::uint8_t, 16> sealed{};
  aead_seal_in_place(zero, 0, sealed, 0, zero);
  std::array<std::uint8_t, 1> none{};
  return aead_open_to(zero, 0, sealed, zero, std::span(none).first(0));
}

Key clamp_private_key(Key k) {
  // Clamping as RFC 7748 describes; crypto_scalarmult clamps too, this keeps the stored form canonical.
  k[0] &= 248;
  k[31] = static_cast<std::uint8_t>((k[31] & 127) | 64);
  return k;
}

Key generate_private_key() {
  Key k;
  randombytes_buf(k.data(), k.size());
  return clamp_private_key(k);
}

Key public_key(const Key& private_key) {
  Key pub;
  crypto_scalarmult_base(pub.data(), private_key.data());
  return pub;
}

std::optional<Key> dh(const Key& private_key, const Key& public_key) {
  Key out;
  if (crypto_scalarmult(out.data(), private_key.data(), public_key.data()) != 0) return std::nullopt;
  return out;
}

namespace {

/// The handshake's hashes and MACs run tens of times per handshake: the algorithms are
/// fetched and their contexts set up once per thread (fetching per call cost more than
/// the hashing), and each call only re-keys.
struct Hashers {
  EVP_MD_CTX* digest = EVP_MD_CTX_new();
  // Fetched explicitly: EVP_blake2s256() is a legacy handle that OpenSSL 3 looks up by
  // name (an implicit fetch) on every EVP_DigestInit_ex.
  EVP_MD* blake2s = EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr);
  EVP_MAC* hmac_alg = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC* keyed_alg = EVP_MAC_fetch(nullptr, "BLAKE2SMAC", nullptr);
  EVP_MAC_CTX* hmac = hmac_alg ? EVP_MAC_CTX_new(hmac_alg) : nullptr;
  EVP_MAC_CTX* keyed = keyed_alg ? EVP_MAC_CTX_new(keyed_alg) : nullptr;
  Hashers() {
    char digest_name[] = "BLAKE2S-256";
    std::size_t size = 16;
    OSSL_PARAM h[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                      OSSL_PARAM_construct_end()};
    OSSL_PARAM k[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
    if (!digest || !blake2s || !hmac || !keyed || EVP_MAC_CTX_set_params(hmac, h) != 1 ||
        EVP_MAC_CTX_set_params(keyed, k) != 1) {
      throw std::runtime_error("OpenSSL lacks BLAKE2s, HMAC or BLAKE2SMAC");
    }
  }
  ~Hashers() {
    EVP_MAC_CTX_free(hmac);
    EVP_MAC_CTX_free(keyed);
    EVP_MAC_free(hmac_alg);
    EVP_MAC_free(keyed_alg);
    EVP_MD_CTX_free(digest);
    EVP_MD_free(blake2s);
  }
  Hashers(const Hashers&) = delete;
  Hashers& operator=(const Hashers&) = delete;
};

Hashers& hashers() {
  thread_local Hashers h;
  return h;
}

/// `out.size()` bytes of MAC(key, data), the context keyed afresh; without a key, restarted
/// with the key it was last given (a null key re-uses the last one, HMAC_Init_ex(3)), which
/// saves hashing the padded key again.
void evp_mac(EVP_MAC_CTX* ctx, const char* algorithm, std::optional<std::span<const std::uint8_t>> key,
             std::span<const std::uint8_t> data, std::span<std::uint8_t> out) {
  std::size_t written = 0;
  const bool ok = EVP_MAC_init(ctx, key ? key->data() : nullptr, key ? key->size() : 0, nullptr) == 1 &&
                  EVP_MAC_update(ctx, data.data(), data.size()) == 1 &&
                  EVP_MAC_final(ctx, out.data(), &written, out.size()) == 1 && written == out.size();
  if (!ok) throw std::runtime_error(std::string(algorithm) + " failed");
}

}  // namespace

Key hash(std::initializer_list<std::span<const std::uint8_t>> parts) {
  Hashers& h = hashers();
  EVP_MD_CTX* ctx = h.digest;
  Key out;
  unsigned len = 0;
  bool ok = EVP_DigestInit_ex(ctx, h.blake2s, nullptr) == 1;
  for (const auto& p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == 32;
  if (!ok) throw std::runtime_error("BLAKE2s failed");
  return out;
}

Mac mac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  Mac out;
  evp_mac(hashers().keyed, "BLAKE2SMAC", key, data, out);
  return out;
}

Key hmac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  Key out;
  evp_mac(hashers().hmac, "HMAC-BLAKE2s", key, data, out);
  return out;
}

std::vector<Key> kdf(const Key& key, std::span<const std::uint8_t> input, int n) {
  const Key t0 = hmac(key, input);
  std::vector<Key> out;
  out.reserve(static_cast<std::size_t>(std::max(n, 0)));
  // T(i) = HMAC(T0, T(i-1) || i), T(0) empty: the previous output and a counter byte.
  std::array<std::uint8_t, 33> in{};
  std::size_t len = 0;
  // Every T(i) is keyed with T0: the context is keyed once, then only restarted.
  EVP_MAC_CTX* ctx = hashers().hmac;
  for (int i = 1; i <= n; ++i) {
    in[len] = static_cast<std::uint8_t>(i);
    Key ti;
    evp_mac(ctx, "HMAC-BLAKE2s", i == 1 ? std::optional(std::span<const std::uint8_t>(t0)) : std::nullopt,
            std::span<const std::uint8_t>(in).first(len + 1), ti);
    out.push_back(ti);
    std::copy(ti.begin(), ti.end(), in.begin());
    len = 32;
  }
  return out;
}

namespace {

/// libsodium declares its output (and some input) pointers non-null even for zero
/// lengths; an empty vector's data() may be null, so empty buffers point here instead.
std::uint8_t* nonnull(Bytes& b) {
  static std::uint8_t empty = 0;
  return b.empty() ? &empty : b.data();
}
const std::uint8_t* nonnull(std::span<const std::uint8_t> b) {
  static const std::uint8_t empty = 0;
  return b.empty() ? &empty : b.data();
}

std::array<std::uint8_t, 12> nonce_of(std::uint64_t counter) {
  std::array<std::uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(counter >> (8 * i));
  return n;
}
}  // namespace

/// One EVP context per thread and direction, set to ChaCha20-Poly1305 once; each message
/// only sets its key and nonce (no allocation, no algorithm fetch per packet).
EVP_CIPHER_CTX* aead_context(bool encrypt) {
  struct Contexts {
    EVP_CIPHER_CTX* seal = nullptr;
    EVP_CIPHER_CTX* open = nullptr;
    ~Contexts() {
      EVP_CIPHER_CTX_free(seal);
      EVP_CIPHER_CTX_free(open);
    }
  };
  thread_local Contexts c;
  EVP_CIPHER_CTX*& ctx = encrypt ? c.seal : c.open;
  if (ctx == nullptr) {
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == nullptr ||
        EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1) {
      throw std::runtime_error("OpenSSL has no ChaCha20-Poly1305");
    }
  }
  return ctx;
}

void aead_seal_in_place(const Key& key, std::uint64_t counter, std::span<std::uint8_t> data, std::size_t plain_length,
                        std::span<const std::uint8_t> auth) {
  if (data.size() < plain_length + 16) throw std::length_error("aead_seal_in_place: no room for the tag");
  EVP_CIPHER_CTX* ctx = aead_context(true);
  const auto n = nonce_of(counter);
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data(), n.data()) == 1;
  if (ok && !auth.empty()) ok = EVP_EncryptUpdate(ctx, nullptr, &len, auth.data(), static_cast<int>(auth.size())) == 1;
  if (ok && plain_length > 0)
    ok = EVP_EncryptUpdate(ctx, data.data(), &len, data.data(), static_cast<int>(plain_length)) == 1;
  if (ok) ok = EVP_EncryptFinal_ex(ctx, data.data() + plain_length, &len) == 1;
  if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, data.data() + plain_length) == 1;
  if (!ok) throw std::runtime_error("OpenSSL could not seal a message");
}

void aead_seal_to(const Key& key, std::uint64_t counter, std::span<const std::uint8_t> plain, std::size_t padding,
                  std::span<std::uint8_t> out) {
  static constexpr std::uint8_t kZeros[16] = {};
  if (padding > sizeof kZeros || out.size() < plain.size() + padding + 16)
    throw std::length_error("aead_seal_to: no room for the message");
  EVP_CIPHER_CTX* ctx = aead_context(true);
  const auto n = nonce_of(counter);
  const std::size_t length = plain.size() + padding;
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data(), n.data()) == 1;
  if (ok && !plain.empty())
    ok = EVP_EncryptUpdate(ctx, out.data(), &len, plain.data(), static_cast<int>(plain.size())) == 1;
  if (ok && padding > 0)
    ok = EVP_EncryptUpdate(ctx, out.data() + plain.size(), &len, kZeros, static_cast<int>(padding)) == 1;
  if (ok) ok = EVP_EncryptFinal_ex(ctx, out.data() + length, &len) == 1;
  if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out.data() + length) == 1;
  if (!ok) throw std::runtime_error("OpenSSL could not seal a message");
}

bool aead_open_to(const Key& key, std::uint64_t counter, std::span<const std::uint8_t> sealed,
                  std::span<const std::uint8_t> auth, std::span<std::uint8_t> out) {
  if (sealed.size() < 16 || out.size() < sealed.size() - 16) return false;
  const std::size_t n_plain = sealed.size() - 16;
  EVP_CIPHER_CTX* ctx = aead_context(false);
  const auto n = nonce_of(counter);
  int len = 0;
  std::uint8_t tag[16];
  std::memcpy(tag, sealed.data() + n_plain, 16);
  bool ok = EVP_DecryptInit_ex(ctx, nullptr, nullptr, key.data(), n.data()) == 1;
  if (ok && !auth.empty()) ok = EVP_DecryptUpdate(ctx, nullptr, &len, auth.data(), static_cast<int>(auth.size())) == 1;
  if (ok && n_plain > 0) ok = EVP_DecryptUpdate(ctx, out.data(), &len, sealed.data(), static_cast<int>(n_plain)) == 1;
  if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1;
  // Final checks the tag; on failure `out` holds unauthenticated bytes the caller drops.
  return ok && EVP_DecryptFinal_ex(ctx, out.data() + n_plain, &len) == 1;
}

Bytes aead_encrypt(const Key& key, std::uint64_t counter, std::span<const std::uint8_t> plain,
                   std::span<const std::uint8_t> auth) {
  Bytes out(plain.size() + 16);
  std::copy(plain.begin(), plain.end(), out.begin());
  aead_seal_in_place(key, counter, out, plain.size(), auth);
  return out;
}

std::optional<Bytes> aead_decrypt(const Key& key, std::uint64_t counter, std::span<const std::uint8_t> sealed,
                                  std::span<const std::uint8_t> auth) {
  if (sealed.size() < 16) return std::nullopt;
  Bytes out(sealed.size() - 16);
  if (!aead_open_to(key, counter, sealed, auth, out)) return std::nullopt;
  return out;
}

Bytes xaead_encrypt(const Key& key, std::span<const std::uint8_t, 24> nonce, std::span<const std::uint8_t> plain,
                    std::span<const std::uint8_t> auth) {
  Bytes out(plain.size() + 16);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &len, nonnull(plain), plain.size(), nonnull(auth), auth.size(),
                                             nullptr, nonce.data(), key.data());
  out.resize(len);
  return out;
}

std::optional<Bytes> xaead_decrypt(const Key& key, std::span<const std::uint8_t, 24> nonce,
                                   std::span<const std::uint8_t> sealed, std::span<const std::uint8_t> auth) {
  if (sealed.size() < 16) return std::nullopt;
  Bytes out(sealed.size() - 16);
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(nonnull(out), &len, nullptr, sealed.data(), sealed.size(),
                                                 nonnull(auth), auth.size(), nonce.data(), key.data()) != 0) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

void random_bytes(std::span<std::uint8_t> out) {
  if (!out.empty()) randombytes_buf(out.data(), out.size());  // declared non-null
}

}  // namespace duet::tunnel
