// libFuzzer target for a proxy plugin's reply parser, through the plugin's own C ABI:
// the input is a proxy's reply (cut into chunks of a size the input also picks), fed to a
// handshake for a name or an IPv6 literal, with and without credentials; for datagram
// plugins the relay framing is fed too. Nothing may crash, leak or read out of bounds,
// and the parser must never claim more bytes than it was given. Built once per plugin
// with PLUGIN_SOURCE naming its source.
#include <cassert>
#include <cstdio>
#include <cstring>
#include <string>

#include PLUGIN_SOURCE

namespace {

struct Setup {
  const duet_plugin* p = duet_plugin_entry(DUET_PLUGIN_ABI_VERSION);
  void* plain = nullptr;
  void* with_auth = nullptr;
  Setup() {
    char err[256];
    const char* a[] = {"proxy.test", "1080", nullptr};
    plain = p->create(2, a, err, sizeof err);
    const std::string file = "/tmp/duet-proxy-fuzz-credentials";
    if (FILE* f = std::fopen(file.c_str(), "w")) {
      std::fputs("user\nsecret\n", f);
      std::fclose(f);
    }
    const char* b[] = {"proxy.test", "1080", file.c_str(), nullptr};
    with_auth = p->create(3, b, err, sizeof err);
    assert(plain && with_auth);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Setup s;
  if (size < 2) return 0;
  const bool datagram = (s.p->capabilities & DUET_PLUGIN_DATAGRAM) && (data[0] & 2);
  const duet_plugin_target target{(data[0] & 1) ? "vpn.test" : "fd00::1", 443, datagram ? 1 : 0};
  char err[256];
  void* c = s.p->open((data[0] & 4) ? s.with_auth : s.plain, &target, err, sizeof err);
  if (c == nullptr) return 0;
  std::uint8_t out[4096];
  while (s.p->output(c, out, sizeof out) > 0) {
  }
  const std::size_t chunk = 1 + data[1] % 64;
  int r = DUET_PLUGIN_MORE;
  for (std::size_t off = 2; off < size && r == DUET_PLUGIN_MORE; off += chunk) {
    const std::size_t n = std::min(chunk, size - off);
    std::size_t consumed = n;
    int error = 0;
    r = s.p->feed(c, data + off, n, &consumed, &error, err, sizeof err);
    if (consumed > n) __builtin_trap();
    if (r == DUET_PLUGIN_FAILED && (error <= 0 || std::strlen(err) >= sizeof err)) __builtin_trap();
    while (s.p->output(c, out, sizeof out) > 0) {
    }
  }
  if (r == DUET_PLUGIN_DONE && datagram) {
    char host[64];
    std::uint16_t port = 0;
    (void)s.p->relay(c, host, sizeof host, &port);
    std::uint8_t wrapped[600];
    const std::size_t w = s.p->wrap(c, data, std::min<std::size_t>(size, 300), wrapped, sizeof wrapped);
    if (w > sizeof wrapped) __builtin_trap();
  }
  if (s.p->unwrap != nullptr) {
    const long at = s.p->unwrap(c, data, size);
    if (at > static_cast<long>(size)) __builtin_trap();
  }
  s.p->close(c);
  return 0;
}
