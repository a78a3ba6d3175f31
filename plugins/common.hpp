// Helpers both proxy plugins share: argument parsing, the credentials file, and writing
// error texts into the host's buffers. Plugins depend on duet/plugin.h only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "duet/plugin.h"

namespace duet_plugins {

inline void say(char* buf, std::size_t size, const std::string& text) {
  if (buf == nullptr || size == 0) return;
  const std::size_t n = std::min(size - 1, text.size());
  std::memcpy(buf, text.data(), n);
  buf[n] = '\0';
}

/// Copies `text` into a host buffer; false if it does not fit.
inline bool copy_out(char* buf, std::size_t size, const std::string& text) {
  if (buf == nullptr || size <= text.size()) return false;
  std::memcpy(buf, text.c_str(), text.size() + 1);
  return true;
}

/// HOST PORT [AUTHFILE]: the arguments of `http-proxy` and `socks-proxy`.
struct ProxyArgs {
  std::string host;
  std::uint16_t port = 0;
  std::string user, password;  ///< from AUTHFILE (first line user, second password)
  bool has_credentials = false;
};

inline bool parse_args(int argc, const char* const* argv, ProxyArgs& out, std::string& why) {
  if (argc < 2 || argc > 3) {
    why = "expected HOST PORT [AUTHFILE], got " + std::to_string(argc) + " arguments";
    return false;
  }
  out.host = argv[0];
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  char* end = nullptr;
  const long port = std::strtol(argv[1], &end, 10);
  if (end == argv[1] || *end != '\0' || port < 1 || port > 65535) {
    why = std::string("port '") + argv[1] + "' is not a number from 1 to 65535";
    return false;
  }
  out.port = static_cast<std::uint16_t>(port);
  if (argc == 3) {
    std::ifstream in(argv[2]);
    if (!in) {
      why = std::string("cannot read the credentials file '") + argv[2] + "'";
      return false;
    }
    std::getline(in, out.user);
    std::getline(in, out.password);
    for (auto* s : {&out.user, &out.password}) {
      if (!s->empty() && s->back() == '\r') s->pop_back();
    }
    if (out.user.empty()) {
      why = std::string("the credentials file '") + argv[2] + "' has no user name on its first line";
      return false;
    }
    out.has_credentials = true;
  }
  return true;
}

/// Bytes queued for the host to send, handed out by output().
struct Outbox {
  std::vector<std::uint8_t> bytes;
  std::size_t take(std::uint8_t* out, std::size_t size) {
    const std::size_t n = std::min(size, bytes.size());
    if (n > 0) {
      std::memcpy(out, bytes.data(), n);
      bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return n;
  }
  void put(const std::string& s) { bytes.insert(bytes.end(), s.begin(), s.end()); }
  void put(std::initializer_list<std::uint8_t> b) { bytes.insert(bytes.end(), b); }
  void put(const std::vector<std::uint8_t>& b) { bytes.insert(bytes.end(), b.begin(), b.end()); }
};

/// True if `host` is an IPv6 literal (it has a colon).
inline bool is_ipv6_literal(const std::string& host) { return host.find(':') != std::string::npos; }

}  // namespace duet_plugins
