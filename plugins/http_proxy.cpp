// http-proxy: a duet socket plugin that reaches a remote through an HTTP/1.1 proxy with
// CONNECT (RFC 9110 section 9.3.6), optionally with Basic authentication (RFC 7617).
// Loaded by `http-proxy HOST PORT [AUTHFILE]` (AUTHFILE: user on the first line, password
// on the second). Streams only: HTTP CONNECT carries TCP.
#include <sodium.h>

#include <memory>

#include "common.hpp"

namespace {

using namespace duet_plugins;

constexpr std::size_t kMaxReplyHeader = 8192;  // a CONNECT reply is a status line and a few headers

struct Instance {
  ProxyArgs args;
  std::string authorization;  ///< "Basic ..." or empty; never logged
};

struct Conn {
  Outbox out;
  bool sent_credentials = false;
  std::string header;  ///< the reply so far, up to its blank line
};

void* create(int argc, const char* const* argv, char* err, std::size_t err_size) {
  auto inst = std::make_unique<Instance>();
  std::string why;
  if (!parse_args(argc, argv, inst->args, why)) {
    say(err, err_size, why);
    return nullptr;
  }
  if (inst->args.has_credentials) {
    if (sodium_init() < 0) {
      say(err, err_size, "libsodium could not start");
      return nullptr;
    }
    const std::string pair = inst->args.user + ":" + inst->args.password;
    std::string b64(sodium_base64_ENCODED_LEN(pair.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(pair.data()), pair.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    b64.resize(std::strlen(b64.c_str()));
    inst->authorization = "Basic " + b64;
    sodium_memzero(b64.data(), b64.size());
  }
  return inst.release();
}

void destroy(void* instance) {
  auto* inst = static_cast<Instance*>(instance);
  sodium_memzero(inst->authorization.data(), inst->authorization.size());
  sodium_memzero(inst->args.password.data(), inst->args.password.size());
  delete inst;
}

int proxy(void* instance, char* host, std::size_t host_size, std::uint16_t* port) {
  auto* inst = static_cast<Instance*>(instance);
  *port = inst->args.port;
  return copy_out(host, host_size, inst->args.host) ? 0 : -1;
}

bool clean_host(const std::string& h) {
  if (h.empty() || h.size() > 255) return false;
  for (char c : h) {
    if (c <= ' ' || c == '/' || c == '@' || c == '[' || c == ']' || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

void* open(void* instance, const duet_plugin_target* target, char* err, std::size_t err_size) {
  auto* inst = static_cast<Instance*>(instance);
  if (target->datagram) {
    say(err, err_size, "HTTP CONNECT carries TCP only");
    return nullptr;
  }
  const std::string host = target->host ? target->host : "";
  if (!clean_host(host)) {
    say(err, err_size, "'" + host + "' cannot be put in a CONNECT request");
    return nullptr;
  }
  const std::string authority = (is_ipv6_literal(host) ? "[" + host + "]" : host) + ":" + std::to_string(target->port);
  auto c = std::make_unique<Conn>();
  c->out.put("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n");
  if (!inst->authorization.empty()) {
    c->out.put("Proxy-Authorization: " + inst->authorization + "\r\n");
    c->sent_credentials = true;
  }
  c->out.put("\r\n");
  return c.release();
}

std::size_t output(void* conn, std::uint8_t* out, std::size_t size) {
  return static_cast<Conn*>(conn)->out.take(out, size);
}

int fail(int* error, int code, char* err, std::size_t err_size, const std::string& text) {
  *error = code;
  say(err, err_size, text);
  return DUET_PLUGIN_FAILED;
}

/// The status line "HTTP/1.x SSS reason": the code, or -1 if it is not one.
int status_code(const std::string& line) {
  if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ') {
    return -1;
  }
  for (int i = 9; i < 12; ++i) {
    if (line[static_cast<std::size_t>(i)] < '0' || line[static_cast<std::size_t>(i)] > '9') return -1;
  }
  if (line.size() > 12 && line[12] != ' ') return -1;
  return std::stoi(line.substr(9, 3));
}

int feed(void* conn, const std::uint8_t* in, std::size_t len, std::size_t* consumed, int* error, char* err,
         std::size_t err_size) {
  auto* c = static_cast<Conn*>(conn);
  // Take bytes up to the end of the header (the blank line); what follows is the tunnel's.
  std::size_t i = 0;
  for (; i < len; ++i) {
    c->header.push_back(static_cast<char>(in[i]));
    if (c->header.size() > kMaxReplyHeader) {
      return fail(error, DUET_PLUGIN_E_TOO_LARGE, err, err_size,
                  "reply header longer than " + std::to_string(kMaxReplyHeader) + " bytes");
    }
    const std::size_t n = c->header.size();
    if (n >= 4 && c->header.compare(n - 4, 4, "\r\n\r\n") == 0) break;
  }
  if (i == len) {
    *consumed = len;
    return DUET_PLUGIN_MORE;
  }
  *consumed = i + 1;
  const std::string line = c->header.substr(0, c->header.find("\r\n"));
  const int code = status_code(line);
  std::string shown = line.substr(0, 80);
  for (auto& ch : shown) {
    if (static_cast<unsigned char>(ch) < ' ' || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
  }
  if (code < 0) return fail(error, DUET_PLUGIN_E_MALFORMED, err, err_size, "not an HTTP status line: '" + shown + "'");
  if (code >= 200 && code < 300) return DUET_PLUGIN_DONE;
  int why = DUET_PLUGIN_E_PROXY_FAILED;
  // 407 is the proxy status; tinyproxy answers a bad password with 401.
  if (code == 407 || code == 401) why = c->sent_credentials ? DUET_PLUGIN_E_AUTH_FAILED : DUET_PLUGIN_E_AUTH_REQUIRED;
  if (code == 403) why = DUET_PLUGIN_E_FORBIDDEN;
  if (code == 502 || code == 503) why = DUET_PLUGIN_E_UNREACHABLE;
  if (code == 504) why = DUET_PLUGIN_E_TIMEOUT;
  if (code == 400 || code == 405 || code == 501) why = DUET_PLUGIN_E_UNSUPPORTED;
  return fail(error, why, err, err_size, "the proxy answered '" + shown + "'");
}

void close(void* conn) { delete static_cast<Conn*>(conn); }

const duet_plugin kPlugin = {
    DUET_PLUGIN_ABI_VERSION,
    "http-proxy",
    DUET_PLUGIN_STREAM,
    create,
    destroy,
    proxy,
    open,
    output,
    feed,
    nullptr,
    nullptr,
    nullptr,
    close,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const duet_plugin* duet_plugin_entry(std::uint32_t host_abi_version) {
  return host_abi_version == DUET_PLUGIN_ABI_VERSION ? &kPlugin : nullptr;
}
