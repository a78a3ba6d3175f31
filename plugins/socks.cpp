// socks: a duet socket plugin that reaches a remote through a SOCKS5 proxy (RFC 1928),
// with no authentication or username/password (RFC 1929). CONNECT carries TCP tunnels;
// UDP ASSOCIATE carries UDP tunnels through the proxy's relay. Remote names are sent as
// names (ATYP 3): the proxy resolves them. Loaded by `socks-proxy HOST PORT [AUTHFILE]`.
#include <arpa/inet.h>

#include <memory>

#include "common.hpp"

namespace {

using namespace duet_plugins;

struct Instance {
  ProxyArgs args;
};

enum class State { method, auth, reply, done, failed };

struct Conn {
  Instance* inst = nullptr;
  Outbox out;
  State state = State::method;
  std::vector<std::uint8_t> in;  ///< the current reply so far
  bool datagram = false;
  std::vector<std::uint8_t> address;  ///< ATYP + address + port of the remote, as SOCKS writes it
  std::string relay_host;
  std::uint16_t relay_port = 0;
};

void* create(int argc, const char* const* argv, char* err, std::size_t err_size) {
  auto inst = std::make_unique<Instance>();
  std::string why;
  if (!parse_args(argc, argv, inst->args, why)) {
    say(err, err_size, why);
    return nullptr;
  }
  if (inst->args.user.size() > 255 || inst->args.password.size() > 255) {
    say(err, err_size, "SOCKS5 user names and passwords are at most 255 bytes");
    return nullptr;
  }
  return inst.release();
}

void destroy(void* instance) {
  auto* inst = static_cast<Instance*>(instance);
  std::fill(inst->args.password.begin(), inst->args.password.end(), '\0');
  delete inst;
}

int proxy(void* instance, char* host, std::size_t host_size, std::uint16_t* port) {
  auto* inst = static_cast<Instance*>(instance);
  *port = inst->args.port;
  return copy_out(host, host_size, inst->args.host) ? 0 : -1;
}

/// ATYP, address and port of host:port as SOCKS5 writes them; empty if impossible.
std::vector<std::uint8_t> socks_address(const std::string& host, std::uint16_t port) {
  std::vector<std::uint8_t> a;
  std::uint8_t buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) {
    a.push_back(1);
    a.insert(a.end(), buf, buf + 4);
  } else if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    a.push_back(4);
    a.insert(a.end(), buf, buf + 16);
  } else {
    if (host.empty() || host.size() > 255) return {};
    a.push_back(3);
    a.push_back(static_cast<std::uint8_t>(host.size()));
    a.insert(a.end(), host.begin(), host.end());
  }
  a.push_back(static_cast<std::uint8_t>(port >> 8));
  a.push_back(static_cast<std::uint8_t>(port));
  return a;
}

/// Length of an address (ATYP + address + port) at the start of `p`: 0 if more bytes are
/// needed, SIZE_MAX if the ATYP is not one SOCKS5 has.
std::size_t address_length(const std::uint8_t* p, std::size_t n) {
  if (n < 1) return 0;
  switch (p[0]) {
    case 1:
      return 1 + 4 + 2;
    case 4:
      return 1 + 16 + 2;
    case 3:
      return n < 2 ? 0 : 1 + 1 + std::size_t{p[1]} + 2;
    default:
      return SIZE_MAX;
  }
}

void* open(void* instance, const duet_plugin_target* target, char* err, std::size_t err_size) {
  auto* inst = static_cast<Instance*>(instance);
  auto c = std::make_unique<Conn>();
  c->inst = inst;
  c->datagram = target->datagram != 0;
  c->address = socks_address(target->host ? target->host : "", target->port);
  if (c->address.empty()) {
    say(err, err_size, "a remote name must be 1 to 255 bytes for SOCKS5");
    return nullptr;
  }
  if (inst->args.has_credentials)
    c->out.put({5, 2, 0, 2});  // no auth, or user/password
  else
    c->out.put({5, 1, 0});
  return c.release();
}

std::size_t output(void* conn, std::uint8_t* out, std::size_t size) {
  return static_cast<Conn*>(conn)->out.take(out, size);
}

int fail(Conn* c, int* error, int code, char* err, std::size_t err_size, const std::string& text) {
  c->state = State::failed;
  *error = code;
  say(err, err_size, text);
  return DUET_PLUGIN_FAILED;
}

void send_request(Conn* c) {
  c->out.put({5, static_cast<std::uint8_t>(c->datagram ? 3 : 1), 0});
  if (c->datagram)
    c->out.put({1, 0, 0, 0, 0, 0, 0});  // we do not know our own address: 0.0.0.0:0
  else
    c->out.put(c->address);
}

int reply_error(std::uint8_t rep, std::string& text) {
  switch (rep) {
    case 1:
      text = "general SOCKS server failure";
      return DUET_PLUGIN_E_PROXY_FAILED;
    case 2:
      text = "connection not allowed by ruleset";
      return DUET_PLUGIN_E_FORBIDDEN;
    case 3:
      text = "network unreachable";
      return DUET_PLUGIN_E_UNREACHABLE;
    case 4:
      text = "host unreachable";
      return DUET_PLUGIN_E_UNREACHABLE;
    case 5:
      text = "connection refused";
      return DUET_PLUGIN_E_REFUSED;
    case 6:
      text = "TTL expired";
      return DUET_PLUGIN_E_TIMEOUT;
    case 7:
      text = "command not supported";
      return DUET_PLUGIN_E_UNSUPPORTED;
    case 8:
      text = "address type not supported";
      return DUET_PLUGIN_E_UNSUPPORTED;
    default:
      text = "unknown reply code " + std::to_string(rep);
      return DUET_PLUGIN_E_MALFORMED;
  }
}

int feed(void* conn, const std::uint8_t* in, std::size_t len, std::size_t* consumed, int* error, char* err,
         std::size_t err_size) {
  auto* c = static_cast<Conn*>(conn);
  if (c->state == State::failed) return fail(c, error, DUET_PLUGIN_E_PROXY_FAILED, err, err_size, "already failed");
  for (std::size_t i = 0; i < len; ++i) {
    c->in.push_back(in[i]);
    const auto& b = c->in;
    switch (c->state) {
      case State::method:
        if (b.size() < 2) continue;
        if (b[0] != 5)
          return fail(c, error, DUET_PLUGIN_E_MALFORMED, err, err_size,
                      "not a SOCKS5 server (version " + std::to_string(b[0]) + ")");
        if (b[1] == 0xff) {
          return fail(c, error, c->inst->args.has_credentials ? DUET_PLUGIN_E_AUTH_FAILED : DUET_PLUGIN_E_AUTH_REQUIRED,
                      err, err_size, "the proxy accepts none of our authentication methods");
        }
        if (b[1] == 2 && c->inst->args.has_credentials) {
          const auto& a = c->inst->args;
          c->out.put({1, static_cast<std::uint8_t>(a.user.size())});
          c->out.put(a.user);
          c->out.put({static_cast<std::uint8_t>(a.password.size())});
          c->out.put(a.password);
          c->state = State::auth;
        } else if (b[1] == 0) {
          send_request(c);
          c->state = State::reply;
        } else {
          return fail(c, error, DUET_PLUGIN_E_MALFORMED, err, err_size,
                      "the proxy chose a method we did not offer (" + std::to_string(b[1]) + ")");
        }
        c->in.clear();
        break;
      case State::auth:
        if (b.size() < 2) continue;
        if (b[0] != 1) return fail(c, error, DUET_PLUGIN_E_MALFORMED, err, err_size, "malformed authentication reply");
        if (b[1] != 0) return fail(c, error, DUET_PLUGIN_E_AUTH_FAILED, err, err_size, "user name or password refused");
        send_request(c);
        c->state = State::reply;
        c->in.clear();
        break;
      case State::reply: {
        if (b.size() < 4) continue;
        if (b[0] != 5 || b[2] != 0)
          return fail(c, error, DUET_PLUGIN_E_MALFORMED, err, err_size, "malformed SOCKS5 reply");
        if (b[1] != 0) {
          std::string text;
          const int code = reply_error(b[1], text);
          return fail(c, error, code, err, err_size, "the proxy says: " + text);
        }
        const std::size_t need = address_length(b.data() + 3, b.size() - 3);
        if (need == SIZE_MAX)
          return fail(c, error, DUET_PLUGIN_E_MALFORMED, err, err_size, "unknown address type " + std::to_string(b[3]));
        if (need == 0 || b.size() < 3 + need) continue;
        // The bound address: for UDP ASSOCIATE, where datagrams go.
        const std::uint8_t* a = b.data() + 3;
        c->relay_port = static_cast<std::uint16_t>((b[3 + need - 2] << 8) | b[3 + need - 1]);
        char text[INET6_ADDRSTRLEN] = {};
        if (a[0] == 1)
          inet_ntop(AF_INET, a + 1, text, sizeof text);
        else if (a[0] == 4)
          inet_ntop(AF_INET6, a + 1, text, sizeof text);
        else
          c->relay_host.assign(reinterpret_cast<const char*>(a + 2), a[1]);
        if (a[0] != 3) c->relay_host = text;
        if (c->relay_host == "0.0.0.0" || c->relay_host == "::") c->relay_host.clear();  // "the proxy's address"
        c->state = State::done;
        *consumed = i + 1;
        return DUET_PLUGIN_DONE;
      }
      case State::done:
      case State::failed:
        break;
    }
  }
  *consumed = len;
  return DUET_PLUGIN_MORE;
}

int relay(void* conn, char* host, std::size_t host_size, std::uint16_t* port) {
  auto* c = static_cast<Conn*>(conn);
  if (c->state != State::done || !c->datagram) return -1;
  *port = c->relay_port;
  return copy_out(host, host_size, c->relay_host) ? 0 : -1;
}

std::size_t wrap(void* conn, const std::uint8_t* payload, std::size_t len, std::uint8_t* out, std::size_t size) {
  auto* c = static_cast<Conn*>(conn);
  const std::size_t n = 3 + c->address.size() + len;
  if (n > size) return 0;
  out[0] = out[1] = out[2] = 0;  // RSV, FRAG 0
  std::memcpy(out + 3, c->address.data(), c->address.size());
  if (len > 0) std::memcpy(out + 3 + c->address.size(), payload, len);
  return n;
}

long unwrap(void*, const std::uint8_t* in, std::size_t len) {
  if (len < 4 || in[0] != 0 || in[1] != 0 || in[2] != 0) return -1;  // fragments are not reassembled: dropped
  const std::size_t a = address_length(in + 3, len - 3);
  if (a == 0 || a == SIZE_MAX || 3 + a > len) return -1;
  return static_cast<long>(3 + a);
}

void close(void* conn) {
  auto* c = static_cast<Conn*>(conn);
  std::fill(c->out.bytes.begin(), c->out.bytes.end(), 0);  // may hold the password
  delete c;
}

const duet_plugin kPlugin = {
    DUET_PLUGIN_ABI_VERSION,
    "socks",
    DUET_PLUGIN_STREAM | DUET_PLUGIN_DATAGRAM,
    create,
    destroy,
    proxy,
    open,
    output,
    feed,
    relay,
    wrap,
    unwrap,
    close,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const duet_plugin* duet_plugin_entry(std::uint32_t host_abi_version) {
  return host_abi_version == DUET_PLUGIN_ABI_VERSION ? &kPlugin : nullptr;
}
