#include "duet/tunnel/noise.hpp"

#include <algorithm>
#include <cstring>

namespace duet::tunnel {

namespace {

using Span = std::span<const std::uint8_t>;

Span bytes_of(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

void put_le32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get_le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}
void put_le64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// A value that depends only on one public key, kept for the last key asked: a responder
/// always asks with its own, so its handshakes stop recomputing hashes of constants. Each
/// call site (its own `compute` type) has its own slot, per thread.
template <typename Compute>
Key per_key(const Key& public_key, Compute compute) {
  struct Slot {
    Key key{};
    Key value{};
    bool set = false;
  };
  thread_local Slot slot;
  if (!slot.set || slot.key != public_key) slot = {public_key, compute(), true};
  return slot.value;
}

/// HASH(construction), HASH(. || identifier), HASH(. || responder's static): the start
/// both sides share.
void initial_state(const Key& responder_static, Key& chaining, Key& h) {
  static const Key c0 = hash({bytes_of(kConstruction)});
  static const Key h0 = hash({c0, bytes_of(kIdentifier)});
  chaining = c0;
  h = per_key(responder_static, [&] { return hash({h0, responder_static}); });
}

Key mac1_key(const Key& receiver_public) { return hash({bytes_of(kLabelMac1), receiver_public}); }
void mix_key(Key& chaining, Span input) { chaining = kdf(chaining, input, 1)[0]; }

Key mix_key_and_get(Key& chaining, Span input) {
  auto k = kdf(chaining, input, 2);
  chaining = k[0];
  return k[1];
}

void mix_hash(Key& h, Span input) { h = hash({h, input}); }

void write_macs(Span receiver_public_key, std::uint8_t* msg, std::size_t mac1_at, const std::optional<Mac>& cookie) {
  Key pub;
  std::memcpy(pub.data(), receiver_public_key.data(), 32);
  const Mac m1 = mac(mac1_key(pub), Span(msg, mac1_at));
  std::memcpy(msg + mac1_at, m1.data(), 16);
  if (cookie) {
    const Mac m2 = mac(*cookie, Span(msg, mac1_at + 16));
    std::memcpy(msg + mac1_at + 16, m2.data(), 16);
  } else {
    std::memset(msg + mac1_at + 16, 0, 16);
  }
}

}  // namespace

Timestamp tai64n(std::uint64_t unix_seconds, std::uint32_t nanoseconds) {
  Timestamp t{};
  const std::uint64_t s = 0x400000000000000aull + unix_seconds;
  for (int i = 0; i < 8; ++i) t[i] = static_cast<std::uint8_t>(s >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) t[8 + i] = static_cast<std::uint8_t>(nanoseconds >> (24 - 8 * i));
  return t;
}

Identity Identity::from_private(const Key& private_key) { return {private_key, tunnel::public_key(private_key)}; }

namespace {
/// Where mac1 sits in a handshake message (mac2 follows it); 0 for anything else.
std::size_t mac1_offset(Span message) {
  if (message.size() == kInitiationLength && message[0] == kMessageHandshakeInitiation) return 116;
  if (message.size() == kResponseLength && message[0] == kMessageHandshakeResponse) return 60;
  return 0;
}
Key cookie_key(const Key& responder_public) {
  return per_key(responder_public, [&] { return hash({bytes_of(kLabelCookie), responder_public}); });
}
}  // namespace

std::optional<Mac> mac1_of(Span message) {
  const std::size_t at = mac1_offset(message);
  if (at == 0) return std::nullopt;
  Mac m;
  std::memcpy(m.data(), message.data() + at, m.size());
  return m;
}

bool mac2_valid(const Mac& cookie, Span message) {
  const std::size_t at = mac1_offset(message);
  if (at == 0) return false;
  const Mac expected = mac(cookie, message.first(at + kMacLength));
  return std::memcmp(expected.data(), message.data() + at + kMacLength, kMacLength) == 0;
}

std::optional<Bytes> create_cookie_reply(const Key& my_public, Span message, const Mac& cookie,
                                         std::span<const std::uint8_t, kCookieNonceLength> nonce) {
  const auto m1 = mac1_of(message);
  if (!m1) return std::nullopt;
  Bytes reply(kCookieReplyLength, 0);
  reply[0] = kMessageHandshakeCookie;
  std::memcpy(&reply[4], message.data() + 4, 4);  // the sender index of the message answered
  std::memcpy(&reply[8], nonce.data(), nonce.size());
  const Bytes sealed = xaead_encrypt(cookie_key(my_public), nonce, cookie, *m1);
  std::memcpy(&reply[8 + kCookieNonceLength], sealed.data(), sealed.size());
  return reply;
}

std::optional<Mac> consume_cookie_reply(const Key& peer_public, Span reply, const Mac& sent_mac1) {
  if (reply.size() != kCookieReplyLength || reply[0] != kMessageHandshakeCookie || reply[1] || reply[2] || reply[3]) {
    return std::nullopt;
  }
  const auto nonce = reply.subspan<8, kCookieNonceLength>();
  auto plain = xaead_decrypt(cookie_key(peer_public), nonce, reply.subspan(8 + kCookieNonceLength), sent_mac1);
  if (!plain || plain->size() != kMacLength) return std::nullopt;
  Mac cookie;
  std::memcpy(cookie.data(), plain->data(), cookie.size());
  return cookie;
}

bool mac1_valid(const Key& receiver_public, Span message) {
  const std::size_t mac1_at = mac1_offset(message);
  if (mac1_at == 0) return false;
  // Checked with one's own key: kept (writing uses the peer's, which changes).
  const Key key = per_key(receiver_public, [&] { return mac1_key(receiver_public); });
  const Mac expected = mac(key, message.first(mac1_at));
  return std::memcmp(expected.data(), message.data() + mac1_at, 16) == 0;
}

Bytes create_initiation(const Identity& me, const Key& peer, const Key& preshared, std::uint32_t local_index,
                        const Timestamp& timestamp, const Key& ephemeral, InitiatorState& st,
                        const std::optional<Mac>& cookie) {
  Bytes msg(kInitiationLength, 0);
  msg[0] = kMessageHandshakeInitiation;
  put_le32(&msg[4], local_index);
  Key c, h;
  initial_state(peer, c, h);
  st.ephemeral_private = ephemeral;
  const Key e_pub = public_key(st.ephemeral_private);
  mix_key(c, e_pub);
  mix_hash(h, e_pub);
  std::memcpy(&msg[8], e_pub.data(), 32);
  const auto es = dh(st.ephemeral_private, peer).value_or(Key{});
  Key k = mix_key_and_get(c, es);
  const Bytes enc_static = aead_encrypt(k, 0, me.public_key, h);
  mix_hash(h, enc_static);
  std::memcpy(&msg[40], enc_static.data(), 48);
  const auto ss = dh(me.private_key, peer).value_or(Key{});
  k = mix_key_and_get(c, ss);
  const Bytes enc_ts = aead_encrypt(k, 0, timestamp, h);
  mix_hash(h, enc_ts);
  std::memcpy(&msg[88], enc_ts.data(), 28);
  write_macs(peer, msg.data(), 116, cookie);
  st.chaining = c;
  st.hash = h;
  st.remote_static = peer;
  st.preshared = preshared;
  st.local_index = local_index;
  return msg;
}

std::optional<ReceivedInitiation> consume_initiation(const Identity& me, Span m, const StaticStatic& static_static) {
  if (m.size() != kInitiationLength || m[0] != kMessageHandshakeInitiation || m[1] || m[2] || m[3]) return std::nullopt;
  if (!mac1_valid(me.public_key, m)) return std::nullopt;
  ReceivedInitiation r;
  r.remote_index = get_le32(&m[4]);
  Key c, h;
  initial_state(me.public_key, c, h);
  std::memcpy(r.remote_ephemeral.data(), &m[8], 32);
  mix_key(c, r.remote_ephemeral);
  mix_hash(h, r.remote_ephemeral);
  const auto es = dh(me.private_key, r.remote_ephemeral);
  if (!es) return std::nullopt;
  Key k = mix_key_and_get(c, *es);
  auto peer = aead_decrypt(k, 0, m.subspan(40, 48), h);
  if (!peer || peer->size() != 32) return std::nullopt;
  mix_hash(h, m.subspan(40, 48));
  std::memcpy(r.peer_static.data(), peer->data(), 32);
  const auto ss = static_static ? static_static(r.peer_static) : dh(me.private_key, r.peer_static);
  if (!ss) return std::nullopt;
  k = mix_key_and_get(c, *ss);
  auto ts = aead_decrypt(k, 0, m.subspan(88, 28), h);
  if (!ts || ts->size() != kTimestampLength) return std::nullopt;
  mix_hash(h, m.subspan(88, 28));
  std::memcpy(r.timestamp.data(), ts->data(), kTimestampLength);
  r.chaining = c;
  r.hash = h;
  return r;
}

Bytes create_response(const Identity& me, const ReceivedInitiation& in, const Key& preshared, std::uint32_t local_index,
                      const Key& ephemeral, Keypair& keys) {
  (void)me;
  Bytes msg(kResponseLength, 0);
  msg[0] = kMessageHandshakeResponse;
  put_le32(&msg[4], local_index);
  put_le32(&msg[8], in.remote_index);
  Key c = in.chaining, h = in.hash;
  const Key& e_priv = ephemeral;
  const Key e_pub = public_key(e_priv);
  mix_key(c, e_pub);
  mix_hash(h, e_pub);
  std::memcpy(&msg[12], e_pub.data(), 32);
  mix_key(c, dh(e_priv, in.remote_ephemeral).value_or(Key{}));
  mix_key(c, dh(e_priv, in.peer_static).value_or(Key{}));
  auto t = kdf(c, preshared, 3);
  c = t[0];
  mix_hash(h, t[1]);
  const Bytes enc_nothing = aead_encrypt(t[2], 0, {}, h);
  mix_hash(h, enc_nothing);
  std::memcpy(&msg[44], enc_nothing.data(), 16);
  write_macs(in.peer_static, msg.data(), 60, std::nullopt);
  const auto transport = kdf(c, {}, 2);
  keys.receive = transport[0];
  keys.send = transport[1];
  keys.local_index = local_index;
  keys.remote_index = in.remote_index;
  keys.initiator = false;
  return msg;
}

std::optional<Keypair> consume_response(const Identity& me, const InitiatorState& st, Span m) {
  if (m.size() != kResponseLength || m[0] != kMessageHandshakeResponse || m[1] || m[2] || m[3]) return std::nullopt;
  if (get_le32(&m[8]) != st.local_index) return std::nullopt;
  if (!mac1_valid(me.public_key, m)) return std::nullopt;
  Key c = st.chaining, h = st.hash;
  Key e_pub;
  std::memcpy(e_pub.data(), &m[12], 32);
  mix_key(c, e_pub);
  mix_hash(h, e_pub);
  const auto ee = dh(st.ephemeral_private, e_pub);
  const auto se = dh(me.private_key, e_pub);
  if (!ee || !se) return std::nullopt;
  mix_key(c, *ee);
  mix_key(c, *se);
  auto t = kdf(c, st.preshared, 3);
  c = t[0];
  mix_hash(h, t[1]);
  if (!aead_decrypt(t[2], 0, m.subspan(44, 16), h)) return std::nullopt;
  const auto transport = kdf(c, {}, 2);
  Keypair keys;
  keys.send = transport[0];
  keys.receive = transport[1];
  keys.local_index = st.local_index;
  keys.remote_index = get_le32(&m[4]);
  keys.initiator = true;
  return keys;
}

namespace {
/// The packet's length zero-padded to a multiple of 16, but never past the MTU (the
/// whitepaper, 5.4.6): a full-size packet's message must still fit the outer path (1420 +
/// 80 = 1500 over IPv6).
std::size_t padded_length(std::size_t packet_size, std::size_t mtu) {
  std::size_t padded = (packet_size + 15) & ~std::size_t{15};
  if (mtu != 0 && padded > mtu) padded = std::max(mtu, packet_size);
  return padded;
}
}  // namespace

std::size_t data_message_size(std::size_t packet_size, std::size_t mtu) {
  return kDataHeaderLength + padded_length(packet_size, mtu) + 16;
}

std::size_t encrypt_data_to(const Keypair& keys, std::uint64_t counter, Span packet, std::span<std::uint8_t> out,
                            std::size_t mtu, MessageType type) {
  const std::size_t size = data_message_size(packet.size(), mtu);
  if (out.size() < size) return 0;
  out[0] = type;
  out[1] = out[2] = out[3] = 0;
  put_le32(&out[4], keys.remote_index);
  put_le64(&out[8], counter);
  aead_seal_to(keys.send, counter, packet, padded_length(packet.size(), mtu) - packet.size(),
               out.subspan(kDataHeaderLength, size - kDataHeaderLength));
  return size;
}

void encrypt_data_into(const Keypair& keys, std::uint64_t counter, Span packet, Bytes& out, std::size_t mtu,
                       MessageType type) {
  out.resize(data_message_size(packet.size(), mtu));
  (void)encrypt_data_to(keys, counter, packet, out, mtu, type);
}

Bytes encrypt_data(const Keypair& keys, std::uint64_t counter, Span packet) {
  Bytes msg;
  encrypt_data_into(keys, counter, packet, msg, 0);
  return msg;
}

std::optional<std::uint64_t> decrypt_data_to(const Keypair& keys, Span m, std::span<std::uint8_t> out,
                                             MessageType type) {
  if (m.size() < kDataMinLength || m[0] != type || m[1] || m[2] || m[3]) return std::nullopt;
  if (get_le32(&m[4]) != keys.local_index) return std::nullopt;
  const std::uint64_t counter = get_le64(&m[8]);
  if (counter >= kRejectAfterMessages) return std::nullopt;
  const auto sealed = m.subspan(kDataHeaderLength);
  if (out.size() < sealed.size() - 16) return std::nullopt;
  if (!aead_open_to(keys.receive, counter, sealed, {}, out.first(sealed.size() - 16))) return std::nullopt;
  return counter;
}

std::optional<std::uint64_t> decrypt_data_into(const Keypair& keys, Span m, Bytes& out, MessageType type) {
  if (m.size() < kDataMinLength) return std::nullopt;
  out.resize(m.size() - kDataMinLength);
  return decrypt_data_to(keys, m, out, type);
}

std::optional<Decrypted> decrypt_data(const Keypair& keys, Span m) {
  Decrypted d;
  auto counter = decrypt_data_into(keys, m, d.packet);
  if (!counter) return std::nullopt;
  d.counter = *counter;
  return d;
}

std::optional<std::uint32_t> receiver_index(Span m) {
  if (m.size() >= kDataHeaderLength &&
      (m[0] == kMessageData || m[0] == kMessageDuetPathCheck || m[0] == kMessageDuetPathAnswer)) {
    return get_le32(&m[4]);
  }
  if (m.size() == kResponseLength && m[0] == kMessageHandshakeResponse) return get_le32(&m[8]);
  if (m.size() == kCookieReplyLength && m[0] == kMessageHandshakeCookie) return get_le32(&m[4]);
  return std::nullopt;
}

bool ReplayWindow::accept(std::uint64_t counter) {
  if (counter >= kRejectAfterMessages) return false;
  const std::uint64_t c = counter + 1;                 // 0 means "nothing seen yet"
  if (c + kCounterWindowSize < newest_) return false;  // too old
  if (c > newest_) {
    // Clear the words the window slides over, at most the whole ring.
    const std::uint64_t from = newest_ / 64, to = c / 64;
    const std::uint64_t steps = std::min<std::uint64_t>(to - from, kWords);
    for (std::uint64_t i = 1; i <= steps; ++i) bits_[(from + i) % kWords] = 0;
    newest_ = c;
  }
  std::uint64_t& word = bits_[(c / 64) % kWords];
  const std::uint64_t bit = std::uint64_t{1} << (c % 64);
  if (word & bit) return false;
  word |= bit;
  return true;
}

}  // namespace duet::tunnel
