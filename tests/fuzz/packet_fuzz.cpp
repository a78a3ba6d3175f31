// libFuzzer target: any bytes arriving on a tunnel socket must be refused or accepted by
// the WireGuard message parsers without a crash, and never accepted without the keys.
#include <cstdlib>

#include "duet/tunnel/noise.hpp"

using namespace duet::tunnel;

namespace {

struct Fixed {
  Fixed() {
    crypto_init();
    responder = Identity::from_private(Key{1});
    initiator = Identity::from_private(Key{2});
    keys.send = Key{3};
    keys.receive = Key{4};
    keys.local_index = 7;
    state.local_index = 9;
  }
  Identity responder, initiator;
  Keypair keys;
  InitiatorState state;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixed f;
  const std::span<const std::uint8_t> m(data, size);
  // Without the right keys nothing may be accepted: a random message that passes would
  // mean the checks are broken.
  if (consume_initiation(f.responder, m)) std::abort();
  if (consume_response(f.initiator, f.state, m)) std::abort();
  if (decrypt_data(f.keys, m)) std::abort();
  Bytes out;
  if (decrypt_data_into(f.keys, m, out, kMessageDuetPathCheck)) std::abort();
  if (decrypt_data_into(f.keys, m, out, kMessageDuetPathAnswer)) std::abort();
  (void)receiver_index(m);
  (void)mac1_valid(f.responder.public_key, m);
  ReplayWindow w;
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    std::uint64_t c = 0;
    for (int b = 0; b < 8; ++b) c |= std::uint64_t{data[i + b]} << (8 * b);
    (void)w.accept(c);
  }
  return 0;
}
