// The configuration protocol on a Node: parsing and checking a set whole, applying it as
// one reload, answering get, and cutting a connection's bytes into operations.
#include "duet/node/uapi.hpp"

#include <charconv>
#include <map>
#include <unordered_map>

#include "duet/net/error.hpp"
#include "duet/node/node.hpp"
#include "duet/tunnel/noise.hpp"

namespace duet::node::uapi {

namespace {

constexpr std::size_t kMaxOpLine = 64;
constexpr std::uint16_t kEphemeralLow = 32768, kEphemeralHigh = 60999;

Error invalid(std::string text) { return {kInvalid, std::move(text)}; }

std::optional<config::Key> from_hex(std::string_view s) {
  if (s.size() != 64) return std::nullopt;
  config::Key k{};
  for (std::size_t i = 0; i < 32; ++i) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    k[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return k;
}

std::string to_hex(const config::Key& k) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(64, '0');
  for (std::size_t i = 0; i < 32; ++i) {
    s[2 * i] = kDigits[k[i] >> 4];
    s[2 * i + 1] = kDigits[k[i] & 0xf];
  }
  return s;
}

/// A decimal number in [0, max] (digits only, as Go's ParseUint with base 10).
template <typename T>
std::optional<T> decimal(std::string_view s, std::uint64_t max) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v > max) return std::nullopt;
  return static_cast<T>(v);
}

bool is_zero(const config::Key& k) {
  for (auto b : k) {
    if (b != 0) return false;
  }
  return true;
}

Error device_line(SetRequest& r, std::string_view key, std::string_view value) {
  if (key == "private_key") {
    auto k = from_hex(value);
    if (!k) return invalid("private_key is not 64 hexadecimal digits");
    r.private_key = is_zero(*k) ? std::optional<config::Key>{} : k;
  } else if (key == "listen_port") {
    auto p = decimal<std::uint16_t>(value, 65535);
    if (!p) return invalid("listen_port '" + std::string(value) + "' is not a port number");
    r.listen_port = p;
  } else if (key == "fwmark") {
    auto m = decimal<std::uint32_t>(value, 0xffffffffu);
    if (!m) return invalid("fwmark '" + std::string(value) + "' is not a 32-bit number");
    r.fwmark = m;
  } else if (key == "replace_peers") {
    if (value != "true") return invalid("replace_peers takes only 'true'");
    r.replace_peers = true;
  } else {
    return invalid("'" + std::string(key) + "' is not an interface key");
  }
  return {};
}

Error peer_line(PeerChange& p, std::string_view key, std::string_view value) {
  if (key == "update_only") {
    if (value != "true") return invalid("update_only takes only 'true'");
    p.update_only = true;
  } else if (key == "remove") {
    if (value != "true") return invalid("remove takes only 'true'");
    p.remove = true;
  } else if (key == "preshared_key") {
    auto k = from_hex(value);
    if (!k) return invalid("preshared_key is not 64 hexadecimal digits");
    p.preshared = *k;
  } else if (key == "endpoint") {
    auto e = net::Endpoint::parse(value);
    if (!e || e->port == 0) return invalid("endpoint '" + std::string(value) + "' is not ADDRESS:PORT");
    p.endpoint = e->address.is_v4_mapped() ? net::Endpoint{e->address.unmapped(), e->port} : *e;
  } else if (key == "persistent_keepalive_interval") {
    auto s = decimal<std::uint16_t>(value, 65535);
    if (!s) return invalid("persistent_keepalive_interval '" + std::string(value) + "' is not 0 to 65535 seconds");
    p.persistent_keepalive = s;
  } else if (key == "replace_allowed_ips") {
    if (value != "true") return invalid("replace_allowed_ips takes only 'true'");
    p.allowed_ips.push_back({AllowedIpChange::Kind::clear, {}});
  } else if (key == "allowed_ip") {
    const bool remove = !value.empty() && value.front() == '-';
    if (remove) value.remove_prefix(1);
    auto prefix = value.find('/') == std::string_view::npos
                      ? net::Result<net::Prefix>(net::errc(std::errc::invalid_argument))
                      : net::Prefix::parse(value);
    if (!prefix) return invalid("allowed_ip '" + std::string(value) + "' is not ADDRESS/LENGTH");
    p.allowed_ips.push_back({remove ? AllowedIpChange::Kind::remove : AllowedIpChange::Kind::add, prefix->network()});
  } else if (key == "protocol_version") {
    if (value != "1") return invalid("protocol_version '" + std::string(value) + "' is not 1");
  } else {
    return invalid("'" + std::string(key) + "' is not a peer key");
  }
  return {};
}

/// Whether `port` can be bound for UDP on both families' wildcards right now.
std::error_code port_free(net::NetworkStack& stack, std::uint16_t port) {
  std::vector<std::unique_ptr<net::DatagramSocket>> held;
  for (const auto family : {net::Family::v4, net::Family::v6}) {
    auto s = stack.open_datagram(family);
    if (!s) continue;
    if (family == net::Family::v6) (void)(*s)->set_v6only(true);
    const auto ec = (*s)->bind({net::Address::any(family), port});
    if (ec == std::errc::address_in_use) return ec;
    held.push_back(std::move(*s));
  }
  return {};
}

}  // namespace

std::optional<std::uint16_t> free_port(net::NetworkStack& stack) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto candidate =
        static_cast<std::uint16_t>(kEphemeralLow + stack.random() % (kEphemeralHigh - kEphemeralLow + 1));
    if (!port_free(stack, candidate)) return candidate;
  }
  return std::nullopt;
}

std::string errno_line(int code) { return "errno=" + std::to_string(code) + "\n\n"; }

std::variant<SetRequest, Error> parse_set(std::string_view body) {
  SetRequest r;
  PeerChange* peer = nullptr;
  while (!body.empty()) {
    const auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    if (line.empty()) break;  // the blank line ends the request
    const auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return Error{kProtocol, "'" + std::string(line.substr(0, 64)) + "' is not KEY=VALUE"};
    const std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "public_key") {
      auto k = from_hex(value);
      if (!k) return invalid("public_key is not 64 hexadecimal digits");
      r.peers.push_back({});
      peer = &r.peers.back();
      peer->public_key = *k;
      continue;
    }
    Error e = peer ? peer_line(*peer, key, value) : device_line(r, key, value);
    if (!e.ok()) return e;
  }
  return r;
}

Error apply(Node& node, net::NetworkStack& stack, const SetRequest& r) {
  if (node.device() == nullptr) return invalid("this duetd carries no WireGuard tunnel (no private-key)");
  // The key this request leaves the device with, and its public half: a peer with that
  // public key is ignored (as wireguard-go does).
  std::optional<config::Key> key = r.private_key ? *r.private_key : node.private_key();
  std::optional<config::Key> own;
  if (key) own = tunnel::Identity::from_private(*key).public_key;

  // The peer list as it will be: by key in order, with the prefixes each holds.
  std::vector<config::Peer> peers = r.replace_peers ? std::vector<config::Peer>{} : node.peers();
  std::map<net::Prefix, config::Key> owner;  // a prefix belongs to one peer (the latest to take it)
  std::unordered_map<std::string, std::size_t> at;
  auto name = [](const config::Key& k) { return std::string(k.begin(), k.end()); };
  std::vector<bool> gone(peers.size(), false);
  for (std::size_t i = 0; i < peers.size(); ++i) {
    at[name(peers[i].public_key)] = i;
    for (const auto& p : peers[i].allowed_ips) owner[p] = peers[i].public_key;
    if (own && peers[i].public_key == *own) gone[i] = true;
  }
  std::vector<std::pair<config::Key, net::Endpoint>> endpoints_set;
  for (const PeerChange& c : r.peers) {
    if (own && c.public_key == *own) continue;
    auto it = at.find(name(c.public_key));
    if (it != at.end() && gone[it->second]) it = at.end();
    if (c.remove) {
      if (it != at.end()) gone[it->second] = true;
      continue;
    }
    if (it == at.end()) {
      if (c.update_only) continue;
      config::Peer fresh;
      fresh.public_key = c.public_key;
      peers.push_back(fresh);
      gone.push_back(false);
      it = at.insert_or_assign(name(c.public_key), peers.size() - 1).first;
    }
    config::Peer& p = peers[it->second];
    if (c.preshared) p.preshared = is_zero(*c.preshared) ? std::optional<config::Key>{} : c.preshared;
    if (c.endpoint) {
      p.endpoint = c.endpoint;
      endpoints_set.emplace_back(c.public_key, *c.endpoint);
    }
    if (c.persistent_keepalive) p.persistent_keepalive = *c.persistent_keepalive;
    for (const auto& a : c.allowed_ips) {
      switch (a.kind) {
        case AllowedIpChange::Kind::clear:
          std::erase_if(owner, [&](const auto& e) { return e.second == c.public_key; });
          break;
        case AllowedIpChange::Kind::add:
          owner[a.prefix] = c.public_key;
          break;
        case AllowedIpChange::Kind::remove:
          if (auto o = owner.find(a.prefix); o != owner.end() && o->second == c.public_key) owner.erase(o);
          break;
      }
    }
  }
  std::vector<config::Peer> next_peers;
  std::unordered_map<std::string, std::size_t> next_at;
  for (std::size_t i = 0; i < peers.size(); ++i) {
    if (gone[i]) continue;
    peers[i].allowed_ips.clear();
    next_at[name(peers[i].public_key)] = next_peers.size();
    next_peers.push_back(std::move(peers[i]));
  }
  for (const auto& [prefix, k] : owner) {
    if (auto i = next_at.find(name(k)); i != next_at.end()) next_peers[i->second].allowed_ips.push_back(prefix);
  }

  config::Config next = node.config();
  if (r.listen_port) {
    if (next.listens.empty()) return invalid("this duetd does not listen (mode client): its port comes from its file");
    std::uint16_t port = *r.listen_port;
    const auto now = node.listen_port();
    if (port == 0) {
      // As WireGuard: a port of the system's choosing, the same for both families.
      const auto chosen = free_port(stack);
      if (!chosen) return {kPortInUse, "no free port for both families"};
      port = *chosen;
    } else if (!now || *now != port) {
      if (auto ec = port_free(stack, port))
        return {kPortInUse, "listen_port " + std::to_string(port) + ": " + ec.message()};
    }
    for (auto& l : next.listens) l.port = port;
  }
  if (r.fwmark) next.fwmark = *r.fwmark;
  next.peers = std::move(next_peers);

  // Checked: now all of it, at once.
  if (r.private_key) node.set_private_key(*r.private_key);
  const auto outcome = node.reload(next);
  if (!outcome.applied) return {kIo, "cannot apply without a restart: " + outcome.restart_needed};
  for (const auto& [k, e] : endpoints_set) {
    if (node.device()->peer_index(k)) (void)node.use_endpoint(k, e);
  }
  return {};
}

Error set(Node& node, net::NetworkStack& stack, std::string_view body) {
  auto parsed = parse_set(body);
  if (auto* e = std::get_if<Error>(&parsed)) return *e;
  return apply(node, stack, std::get<SetRequest>(parsed));
}

std::string get(const Node& node, net::NetworkStack& stack) {
  std::string out;
  auto line = [&out](std::string_view k, const std::string& v) {
    out.append(k);
    out += '=';
    out += v;
    out += '\n';
  };
  if (auto k = node.private_key()) line("private_key", to_hex(*k));
  if (auto p = node.listen_port(); p && *p != 0) line("listen_port", std::to_string(*p));
  if (node.config().fwmark != 0) line("fwmark", std::to_string(node.config().fwmark));
  const auto status = node.status();
  const auto wall_now = stack.clock().wall_now();
  for (const auto& p : status.peers) {
    line("public_key", to_hex(p.public_key));
    line("preshared_key", to_hex(p.preshared.value_or(config::Key{})));
    line("protocol_version", "1");
    if (p.endpoint) line("endpoint", p.endpoint->to_string());
    std::int64_t sec = 0, nsec = 0;
    if (p.since_handshake) {
      const auto at = std::chrono::duration_cast<std::chrono::nanoseconds>(
          (wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(*p.since_handshake))
              .time_since_epoch());
      sec = at.count() / 1'000'000'000;
      nsec = at.count() % 1'000'000'000;
    }
    line("last_handshake_time_sec", std::to_string(sec));
    line("last_handshake_time_nsec", std::to_string(nsec));
    line("tx_bytes", std::to_string(p.tx_bytes));
    line("rx_bytes", std::to_string(p.rx_bytes));
    line("persistent_keepalive_interval", std::to_string(p.persistent_keepalive));
    for (const auto& a : p.allowed_ips) line("allowed_ip", a.to_string());
  }
  return out;
}

std::string Connection::feed(std::string_view data, const Run& run) {
  std::string answers;
  for (const char c : data) {
    if (closed_) break;
    buffer_ += c;
    switch (state_) {
      case State::op:
        if (c != '\n') {
          if (buffer_.size() > kMaxOpLine) closed_ = true;
          break;
        }
        if (buffer_ == "get=1\n") {
          state_ = State::get_blank;
        } else if (buffer_ == "set=1\n") {
          state_ = State::set_body;
          line_start_ = 0;
        } else {
          closed_ = true;  // not an operation: as wireguard-go, hang up
        }
        buffer_.clear();
        break;
      case State::get_blank:
        answers += c == '\n' ? run(Op::get, {}) : errno_line(kInvalid);
        buffer_.clear();
        state_ = State::op;
        break;
      case State::set_body:
        if (c != '\n') {
          if (buffer_.size() - line_start_ > max_line_ || buffer_.size() > max_request_) closed_ = true;
          break;
        }
        if (buffer_.size() - line_start_ == 1) {  // a blank line: the request is complete
          answers += run(Op::set, std::string_view(buffer_).substr(0, line_start_));
          buffer_.clear();
          buffer_.shrink_to_fit();
          state_ = State::op;
        } else {
          line_start_ = buffer_.size();
        }
        break;
    }
  }
  if (closed_) {
    buffer_.clear();
    buffer_.shrink_to_fit();
  }
  return answers;
}

std::string Connection::finish(const Run& run) {
  std::string answer;
  if (!closed_ && state_ == State::set_body && line_start_ > 0) {
    answer = run(Op::set, std::string_view(buffer_).substr(0, line_start_));
  }
  closed_ = true;
  buffer_.clear();
  return answer;
}

}  // namespace duet::node::uapi
