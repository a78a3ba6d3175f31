// The WireGuard protocol core: primitives against published vectors, the handshake
// between two identities, transport data, and the replay window.
#include <gtest/gtest.h>

#include "duet/tunnel/noise.hpp"

using namespace duet::tunnel;

namespace {

Key hex_key(const std::string& h) {
  Key k{};
  for (std::size_t i = 0; i < 32; ++i) k[i] = static_cast<std::uint8_t>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  return k;
}
std::string hex(std::span<const std::uint8_t> b) {
  std::string s;
  char buf[3];
  for (auto x : b) {
    std::snprintf(buf, sizeof buf, "%02x", x);
    s += buf;
  }
  return s;
}

class Tunnel : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_TRUE(crypto_init()); }
};

TEST_F(Tunnel, X25519MatchesRfc7748) {
  const Key alice = hex_key("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const Key bob = hex_key("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  EXPECT_EQ(hex(public_key(alice)), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(hex(public_key(bob)), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  EXPECT_EQ(hex(*dh(alice, public_key(bob))), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_FALSE(dh(alice, Key{})) << "a low-order point gives no shared secret";
}

TEST_F(Tunnel, Blake2sMatchesRfc7693) {
  const std::uint8_t abc[] = {'a', 'b', 'c'};
  EXPECT_EQ(hex(hash({abc})), "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  const std::uint8_t a[] = {'a'}, bc[] = {'b', 'c'};
  EXPECT_EQ(hash({a, bc}), hash({abc})) << "parts are concatenated";
  EXPECT_NE(mac(Key{}, abc), mac(Key{1}, abc));
  EXPECT_EQ(kdf(Key{}, abc, 3).size(), 3u);
  EXPECT_EQ(kdf(Key{}, abc, 3)[0], kdf(Key{}, abc, 1)[0]);
}

// WireGuard's KDF_n is HKDF over HMAC-BLAKE2s: T0 = HMAC(key, input), then
// T1 = HMAC(T0, 0x1), Ti = HMAC(T0, T(i-1) || i).
TEST_F(Tunnel, KdfIsHkdfOverHmacBlake2s) {
  const std::uint8_t input[] = {'d', 'u', 'e', 't'};
  const Key key{7, 1, 2};
  const Key t0 = hmac(key, input);
  const std::uint8_t one[] = {1};
  const Key t1 = hmac(t0, one);
  Bytes in(t1.begin(), t1.end());
  in.push_back(2);
  const Key t2 = hmac(t0, in);
  in.assign(t2.begin(), t2.end());
  in.push_back(3);
  const Key t3 = hmac(t0, in);
  const auto out = kdf(key, input, 3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], t1);
  EXPECT_EQ(out[1], t2);
  EXPECT_EQ(out[2], t3);
}

TEST_F(Tunnel, KeysInWireguardBase64) {
  const Key k = generate_private_key();
  const auto text = key_to_base64(k);
  EXPECT_EQ(text.size(), 44u);
  EXPECT_EQ(*key_from_base64(text), k);
  EXPECT_FALSE(key_from_base64("not a key"));
  EXPECT_FALSE(key_from_base64(std::string(44, '!')));
  EXPECT_EQ(k[0] & 7, 0) << "clamped";
}

TEST_F(Tunnel, Tai64nIsSecondsPlus2Pow62ThenNanoseconds) {
  EXPECT_EQ(hex(tai64n(0, 0)), "400000000000000a00000000");
  EXPECT_EQ(hex(tai64n(1, 2)), "400000000000000b00000002");
}

struct Pair {
  Identity initiator = Identity::from_private(generate_private_key());
  Identity responder = Identity::from_private(generate_private_key());
  Key psk{};
};

TEST_F(Tunnel, HandshakeGivesBothSidesTheSameKeys) {
  for (bool with_psk : {false, true}) {
    Pair p;
    if (with_psk) random_bytes(p.psk);
    InitiatorState st;
    const Bytes init = create_initiation(p.initiator, p.responder.public_key, p.psk, 0x11223344, tai64n(1000, 5),
                                         generate_private_key(), st);
    ASSERT_EQ(init.size(), kInitiationLength);
    EXPECT_TRUE(mac1_valid(p.responder.public_key, init));
    auto got = consume_initiation(p.responder, init);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->peer_static, p.initiator.public_key);
    EXPECT_EQ(got->timestamp, tai64n(1000, 5));
    EXPECT_EQ(got->remote_index, 0x11223344u);
    Keypair responder_keys;
    const Bytes resp = create_response(p.responder, *got, p.psk, 0x55667788, generate_private_key(), responder_keys);
    ASSERT_EQ(resp.size(), kResponseLength);
    EXPECT_EQ(*receiver_index(resp), 0x11223344u);
    auto initiator_keys = consume_response(p.initiator, st, resp);
    ASSERT_TRUE(initiator_keys);
    EXPECT_EQ(initiator_keys->send, responder_keys.receive);
    EXPECT_EQ(initiator_keys->receive, responder_keys.send);
    EXPECT_NE(initiator_keys->send, initiator_keys->receive);
    EXPECT_EQ(initiator_keys->remote_index, 0x55667788u);

    // Data both ways, padded to 16.
    const std::uint8_t packet[] = {0x45, 0, 0, 20, 1, 2, 3};
    const Bytes sealed = encrypt_data(*initiator_keys, 0, packet);
    EXPECT_EQ(sealed.size(), kDataHeaderLength + 16 + kAeadTagLength);
    auto opened = decrypt_data(responder_keys, sealed);
    ASSERT_TRUE(opened);
    EXPECT_EQ(opened->counter, 0u);
    EXPECT_EQ(Bytes(opened->packet.begin(), opened->packet.begin() + 7), Bytes(std::begin(packet), std::end(packet)));
    auto back = decrypt_data(*initiator_keys, encrypt_data(responder_keys, 7, packet));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->counter, 7u);
  }
}

TEST_F(Tunnel, PaddingStopsAtTheMtu) {
  // A full-size packet must not grow past the TUN's MTU when padded: 1420 + 80 bytes of
  // IPv6, UDP and WireGuard is exactly 1500 (the whitepaper pads to min(16k, MTU)).
  Keypair k;
  k.send = Key{1};
  k.remote_index = 9;
  Bytes out;
  const Bytes full(1420, 0x45), small(100, 0x45), odd(1419, 0x45);
  encrypt_data_into(k, 0, full, out, 1420);
  EXPECT_EQ(out.size(), kDataHeaderLength + 1420 + kAeadTagLength);
  encrypt_data_into(k, 1, full, out, 0);
  EXPECT_EQ(out.size(), kDataHeaderLength + 1424 + kAeadTagLength) << "no MTU given: a multiple of 16";
  encrypt_data_into(k, 2, odd, out, 1420);
  EXPECT_EQ(out.size(), kDataHeaderLength + 1420 + kAeadTagLength);
  encrypt_data_into(k, 3, small, out, 1420);
  EXPECT_EQ(out.size(), kDataHeaderLength + 112 + kAeadTagLength);
  Keypair r;
  r.receive = Key{1};
  r.local_index = 9;
  encrypt_data_into(k, 4, full, out, 1420);
  auto opened = decrypt_data(r, out);
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->packet, full);
}

TEST_F(Tunnel, SealingStraightIntoARoomGivesTheSameMessage) {
  // encrypt_data_to() is what the data path uses (sealing into the socket's queue): same
  // bytes as the copying version, for every padding case, and a room too small is left
  // untouched.
  Keypair k;
  k.send = Key{3};
  k.remote_index = 11;
  Keypair r;
  r.receive = Key{3};
  r.local_index = 11;
  for (const std::size_t size : {0, 1, 15, 16, 17, 100, 1419, 1420, 1500}) {
    SCOPED_TRACE(size);
    Bytes packet(size);
    for (std::size_t i = 0; i < size; ++i) packet[i] = static_cast<std::uint8_t>(i * 13 + 5);
    Bytes copied;
    encrypt_data_into(k, size, packet, copied, 1420);
    ASSERT_EQ(data_message_size(size, 1420), copied.size());
    Bytes room(copied.size() + 40, 0xee);
    ASSERT_EQ(encrypt_data_to(k, size, packet, room, 1420), copied.size());
    EXPECT_EQ(Bytes(room.begin(), room.begin() + static_cast<std::ptrdiff_t>(copied.size())), copied);
    EXPECT_EQ(room.back(), 0xee) << "wrote past the message";
    auto opened = decrypt_data(r, copied);
    ASSERT_TRUE(opened);
    EXPECT_EQ(Bytes(opened->packet.begin(), opened->packet.begin() + static_cast<std::ptrdiff_t>(size)), packet);
    Bytes tight(copied.size() - 1, 0xee);
    EXPECT_EQ(encrypt_data_to(k, size, packet, tight, 1420), 0u);
    EXPECT_EQ(tight, Bytes(copied.size() - 1, 0xee)) << "a room too small was written to";
  }
}

TEST_F(Tunnel, WrongKeysAndTamperingAreRejected) {
  Pair p;
  InitiatorState st;
  Bytes init =
      create_initiation(p.initiator, p.responder.public_key, p.psk, 1, tai64n(1, 0), generate_private_key(), st);
  const Identity stranger = Identity::from_private(generate_private_key());
  EXPECT_FALSE(consume_initiation(stranger, init)) << "mac1 is keyed with the responder's public key";
  for (std::size_t i = 0; i < 132; i += 3) {  // everything up to mac2
    Bytes bad = init;
    bad[i] ^= 0x01;
    EXPECT_FALSE(consume_initiation(p.responder, bad)) << "byte " << i;
  }
  Bytes other_mac2 = init;
  other_mac2[140] ^= 0x01;
  EXPECT_TRUE(consume_initiation(p.responder, other_mac2)) << "mac2 counts only under load (cookies)";
  auto got = consume_initiation(p.responder, init);
  ASSERT_TRUE(got);
  Keypair rk;
  Bytes resp = create_response(p.responder, *got, p.psk, 2, generate_private_key(), rk);
  InitiatorState other = st;
  other.local_index = 99;
  EXPECT_FALSE(consume_response(p.initiator, other, resp)) << "the response answers another handshake";
  Key wrong_psk{};
  wrong_psk[0] = 1;
  InitiatorState psk_mismatch = st;
  psk_mismatch.preshared = wrong_psk;
  EXPECT_FALSE(consume_response(p.initiator, psk_mismatch, resp)) << "preshared keys must agree";
  auto ik = consume_response(p.initiator, st, resp);
  ASSERT_TRUE(ik);
  const std::uint8_t data[] = {1, 2, 3};
  Bytes sealed = encrypt_data(*ik, 3, data);
  sealed.back() ^= 0x80;
  EXPECT_FALSE(decrypt_data(rk, sealed)) << "a flipped tag bit";
  EXPECT_FALSE(decrypt_data(rk, std::span<const std::uint8_t>(sealed).first(20))) << "truncated";
  EXPECT_FALSE(decrypt_data(*ik, encrypt_data(*ik, 1, data))) << "our own key, wrong direction";
  for (std::size_t n = 0; n < 200; ++n) {
    Bytes junk(n);
    random_bytes(junk);
    if (n > 0) junk[0] = static_cast<std::uint8_t>(1 + n % 4);
    EXPECT_FALSE(consume_initiation(p.responder, junk));
    EXPECT_FALSE(decrypt_data(rk, junk));
    EXPECT_FALSE(consume_response(p.initiator, st, junk));
  }
}

TEST_F(Tunnel, ACookieReplyCarriesTheCookieOnlyToTheMessageItAnswers) {
  Pair p;
  InitiatorState st;
  const Bytes init = create_initiation(p.initiator, p.responder.public_key, p.psk, 0x01020304, tai64n(1, 0),
                                       generate_private_key(), st);
  Mac cookie{};
  random_bytes(cookie);
  std::array<std::uint8_t, kCookieNonceLength> nonce{};
  random_bytes(nonce);
  const auto reply = create_cookie_reply(p.responder.public_key, init, cookie, nonce);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->size(), kCookieReplyLength);
  EXPECT_EQ((*reply)[0], kMessageHandshakeCookie);
  EXPECT_EQ(receiver_index(*reply), 0x01020304u) << "addressed to the initiation's sender index";
  const Mac sent_mac1 = *mac1_of(init);
  EXPECT_EQ(consume_cookie_reply(p.responder.public_key, *reply, sent_mac1), cookie);
  Mac other_mac1 = sent_mac1;
  other_mac1[0] ^= 1;
  EXPECT_FALSE(consume_cookie_reply(p.responder.public_key, *reply, other_mac1)) << "bound to the message's mac1";
  EXPECT_FALSE(consume_cookie_reply(p.initiator.public_key, *reply, sent_mac1)) << "sealed by the responder's key";
  for (std::size_t i = 0; i < reply->size(); i += 5) {
    Bytes bad = *reply;
    bad[i] ^= 0x10;
    if (i >= 4 && i < 8) continue;  // the receiver index is not authenticated (it only routes)
    EXPECT_FALSE(consume_cookie_reply(p.responder.public_key, bad, sent_mac1)) << "byte " << i;
  }
  EXPECT_FALSE(consume_cookie_reply(p.responder.public_key, std::span(*reply).first(63), sent_mac1));
  EXPECT_FALSE(create_cookie_reply(p.responder.public_key, std::span(init).first(100), cookie, nonce));

  // With the cookie, the next initiation's mac2 proves the sender got the reply.
  EXPECT_FALSE(mac2_valid(cookie, init)) << "no cookie yet: mac2 is zero";
  const Bytes again = create_initiation(p.initiator, p.responder.public_key, p.psk, 5, tai64n(2, 0),
                                        generate_private_key(), st, cookie);
  EXPECT_TRUE(mac2_valid(cookie, again));
  Mac stale = cookie;
  stale[3] ^= 1;
  EXPECT_FALSE(mac2_valid(stale, again)) << "an old cookie does not count";
  EXPECT_TRUE(consume_initiation(p.responder, again)) << "mac2 does not disturb mac1 or the handshake";
}

TEST(ReplayWindow, AcceptsEachCounterOnceWithinTheWindow) {
  ReplayWindow w;
  const std::uint64_t W = kCounterWindowSize;
  struct Step {
    std::uint64_t counter;
    bool accepted;
  } steps[] = {
      {0, true},
      {0, false},
      {1, true},
      {1, false},
      {9, true},
      {8, true},
      {7, true},
      {7, false},
      {W, true},
      {1, false},
      {W + 1, true},
      {2, true},
      {0, false},
      {3 * W, true},
      {2 * W, true},
      {2 * W - 1, false},
      {3 * W - 1, true},
      {3 * W - 1, false},
      {3 * W + 1, true},
      {3 * W + 64, true},
      {kRejectAfterMessages - 1, true},
      {kRejectAfterMessages, false},
      {kRejectAfterMessages - 1, false},
  };
  for (const auto& s : steps) EXPECT_EQ(w.accept(s.counter), s.accepted) << "counter " << s.counter;
}

TEST(ReplayWindow, OutOfOrderInsideTheWindowIsFine) {
  ReplayWindow w;
  for (std::uint64_t c = 0; c < 20000; c += 2) ASSERT_TRUE(w.accept(c));
  for (std::uint64_t c = 20000 - 2 * 100 + 1; c < 20000; c += 2) EXPECT_TRUE(w.accept(c)) << c;
  for (std::uint64_t c = 0; c < 20000 - kCounterWindowSize - 1; c += 997) EXPECT_FALSE(w.accept(c)) << c;
}

}  // namespace
