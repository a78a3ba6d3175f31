// A proxy server on a simulated host, honest or not, for testing the proxy plugins: HTTP
// CONNECT or SOCKS5 (CONNECT), relaying to the remote when honest, and otherwise
// refusing, lying (malformed or truncated replies, wrong lengths, huge headers), stalling
// or dropping the connection.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "duet/net/network_stack.hpp"

namespace duet::test {

struct ProxyBehaviour {
  std::string reply;  ///< non-empty: answer the request with exactly these bytes, then wait
  bool close_after_reply = false;
  bool stall = false;     ///< read the request, answer nothing
  bool drop = false;      ///< close as soon as the request arrives
  std::string need_auth;  ///< HTTP: required "Basic ..." value; SOCKS: "user:password"
};

class FakeProxy {
public:
  enum class Kind { http, socks };
  using Behaviour = ProxyBehaviour;
  FakeProxy(net::NetworkStack& stack, Kind kind, const net::Endpoint& listen, Behaviour b = {})
      : stack_(stack), kind_(kind), b_(std::move(b)) {
    listener_ = std::move(*stack.listen(listen, {false, 16}));
    accept();
  }
  /// Where it listens (the port the kernel chose for port 0).
  [[nodiscard]] net::Endpoint local() const { return *listener_->local_endpoint(); }
  int connections = 0;
  std::vector<std::string> requests;  ///< HTTP request heads; SOCKS: "host:port" asked for

private:
  struct Conn {
    std::unique_ptr<net::StreamSocket> client, remote;
    std::vector<std::uint8_t> in;
    int socks_state = 0;  // 0 greeting, 1 auth, 2 request, 3 relaying
    std::unique_ptr<net::PendingOperation> resolving;
  };

  void accept() {
    listener_->accept([this](std::error_code ec, std::unique_ptr<net::StreamSocket> s) {
      if (!ec && s) {
        ++connections;
        auto c = std::make_shared<Conn>();
        c->client = std::move(s);
        conns_[next_] = c;
        read(next_++, c.get());
      }
      accept();
    });
  }

  void send(Conn& c, const std::string& s) {
    c.client->write(std::vector<std::uint8_t>(s.begin(), s.end()), [](std::error_code) {});
  }
  void send(Conn& c, std::vector<std::uint8_t> b) {
    c.client->write(b, [](std::error_code) {});
  }

  // Callbacks hold a plain pointer: the connection owns its sockets, and a socket never
  // calls back after it is destroyed (a shared_ptr here would keep both alive in a cycle).
  void read(int id, Conn* c) {
    c->client->read_some([this, id, c](std::error_code ec, std::span<const std::uint8_t> d) {
      if (ec || d.empty()) {
        if (c->remote) c->remote->close();
        stack_.clock().post([this, id] { conns_.erase(id); });
        return;
      }
      if (c->socks_state == 3) {
        c->remote->write(d, [](std::error_code) {});
        return read(id, c);
      }
      c->in.insert(c->in.end(), d.begin(), d.end());
      if (!(kind_ == Kind::http ? on_http(*c) : on_socks(*c))) {
        if (b_.drop) {
          c->client->close();
          stack_.clock().post([this, id] { conns_.erase(id); });
          return;
        }
      }
      read(id, c);
    });
  }

  /// False when the request is complete and a lie or a stall took over.
  bool respond_badly(Conn& c) {
    if (b_.drop) return false;
    if (b_.stall) return true;
    send(c, b_.reply);
    if (b_.close_after_reply) c.client->shutdown_send();
    return true;
  }

  bool on_http(Conn& c) {
    const std::string text(c.in.begin(), c.in.end());
    const auto end = text.find("\r\n\r\n");
    if (end == std::string::npos) return true;
    requests.push_back(text.substr(0, end));
    c.in.clear();
    if (b_.drop || b_.stall || !b_.reply.empty()) return respond_badly(c) && !b_.drop;
    if (!b_.need_auth.empty() && text.find("Proxy-Authorization: " + b_.need_auth + "\r\n") == std::string::npos) {
      send(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n\r\n");
      return true;
    }
    const auto sp = text.find(' '), sp2 = text.find(' ', sp + 1);
    std::string authority = text.substr(sp + 1, sp2 - sp - 1);
    const auto colon = authority.rfind(':');
    std::string host = authority.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    connect_remote(c, host, static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1))),
                   "HTTP/1.1 200 Connection established\r\n\r\n", "HTTP/1.1 502 Bad Gateway\r\n\r\n");
    return true;
  }

  bool on_socks(Conn& c) {
    auto& b = c.in;
    if (c.socks_state == 0) {
      if (b.size() < 2 || b.size() < 2u + b[1]) return true;
      bool offers_auth = false;
      for (std::size_t i = 0; i < b[1]; ++i) offers_auth = offers_auth || b[2 + i] == 2;
      b.clear();
      if (b_.drop || b_.stall || !b_.reply.empty()) return respond_badly(c) && !b_.drop;
      if (!b_.need_auth.empty()) {
        send(c, offers_auth ? std::vector<std::uint8_t>{5, 2} : std::vector<std::uint8_t>{5, 0xff});
        c.socks_state = offers_auth ? 1 : 9;
      } else {
        send(c, std::vector<std::uint8_t>{5, 0});
        c.socks_state = 2;
      }
      return true;
    }
    if (c.socks_state == 1) {
      if (b.size() < 2 || b.size() < 3u + b[1] || b.size() < 3u + b[1] + b[2u + b[1]]) return true;
      const std::string user(b.begin() + 2, b.begin() + 2 + b[1]);
      const std::string pass(b.begin() + 3 + b[1], b.begin() + 3 + b[1] + b[2u + b[1]]);
      b.clear();
      const bool ok = user + ":" + pass == b_.need_auth;
      send(c, std::vector<std::uint8_t>{1, static_cast<std::uint8_t>(ok ? 0 : 1)});
      c.socks_state = ok ? 2 : 9;
      return true;
    }
    if (c.socks_state == 2) {
      if (b.size() < 5) return true;
      std::string host;
      std::size_t at = 4;
      if (b[3] == 1 && b.size() >= 10) {
        host = net::Address::v4(b[4], b[5], b[6], b[7]).to_string();
        at = 8;
      } else if (b[3] == 3 && b.size() >= 7u + b[4]) {
        host.assign(b.begin() + 5, b.begin() + 5 + b[4]);
        at = 5 + b[4];
      } else if (b[3] == 4 && b.size() >= 22) {
        net::Address::Bytes a{};
        std::copy(b.begin() + 4, b.begin() + 20, a.begin());
        host = net::Address::v6(a).to_string();
        at = 20;
      } else {
        return true;
      }
      const auto port = static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
      if (b[1] == 3) {  // UDP ASSOCIATE
        requests.push_back("udp");
        b.clear();
        associate(c);
        return true;
      }
      requests.push_back(host + ":" + std::to_string(port));
      b.clear();
      connect_remote(c, host, port, std::string("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10),
                     std::string("\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00", 10));
      return true;
    }
    return true;
  }

  /// A UDP relay on the proxy host: datagrams from the client are unwrapped (ATYP 1 only)
  /// and sent on from `outside`; answers come back wrapped with their source.
  void associate(Conn& c) {
    relay_ = std::move(*stack_.open_datagram(net::Family::v4));
    (void)relay_->bind(*net::Endpoint::parse(listener_->local_endpoint()->address.to_string() + ":0"));
    outside_ = std::move(*stack_.open_datagram(net::Family::v4));
    const auto bound = *relay_->local_endpoint();
    std::vector<std::uint8_t> reply{5, 0, 0, 1};
    const auto& a = bound.address.bytes();
    reply.insert(reply.end(), a.begin(), a.begin() + 4);
    reply.push_back(static_cast<std::uint8_t>(bound.port >> 8));
    reply.push_back(static_cast<std::uint8_t>(bound.port));
    send(c, reply);
    relay_loop();
    outside_loop();
  }
  void relay_loop() {
    relay_->receive([this](std::error_code ec, const net::Endpoint& from, std::span<const std::uint8_t> d) {
      if (!ec && d.size() > 10 && d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 1) {
        client_udp_ = from;
        ++relayed;
        const net::Endpoint dst{net::Address::v4(d[4], d[5], d[6], d[7]),
                                static_cast<std::uint16_t>((d[8] << 8) | d[9])};
        (void)outside_->send_to(dst, d.subspan(10));
      }
      relay_loop();
    });
  }
  void outside_loop() {
    outside_->receive([this](std::error_code ec, const net::Endpoint& from, std::span<const std::uint8_t> d) {
      if (!ec && client_udp_) {
        std::vector<std::uint8_t> w{0, 0, 0, 1};
        const auto& a = from.address.bytes();
        w.insert(w.end(), a.begin(), a.begin() + 4);
        w.push_back(static_cast<std::uint8_t>(from.port >> 8));
        w.push_back(static_cast<std::uint8_t>(from.port));
        w.insert(w.end(), d.begin(), d.end());
        (void)relay_->send_to(*client_udp_, w);
      }
      outside_loop();
    });
  }

public:
  int relayed = 0;  ///< datagrams the UDP relay carried from the client
  /// Ends every connection (and so every UDP association).
  void close_all() {
    for (auto& [id, c] : conns_) c->client->close();
    conns_.clear();
  }

private:
  std::unique_ptr<net::DatagramSocket> relay_, outside_;
  std::optional<net::Endpoint> client_udp_;

  void connect_remote(Conn& c, const std::string& host, std::uint16_t port, std::string ok, std::string bad) {
    auto ep = net::Endpoint::parse((host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                                   std::to_string(port));
    if (!ep) {  // a name: the proxy resolves it
      Conn* raw = &c;
      c.resolving = stack_.resolve(host, std::to_string(port), {net::Family::v4, false, net::SocketType::stream},
                                   [this, raw, ok, bad](net::Result<std::vector<net::Endpoint>> r) {
                                     if (!r || r->empty()) return send(*raw, bad);
                                     const auto e = r->front();
                                     connect_remote(*raw, e.address.to_string(), e.port, ok, bad);
                                   });
      return;
    }
    auto r = stack_.open_stream(ep->family());
    c.remote = std::move(*r);
    Conn* raw = &c;
    c.remote->connect(*ep, std::chrono::seconds(5), [this, raw, ok, bad](std::error_code ec) {
      if (ec) {
        send(*raw, bad);
        return;
      }
      send(*raw, ok);
      raw->socks_state = 3;
      pump_back(raw);
    });
  }
  void pump_back(Conn* c) {
    c->remote->read_some([this, c](std::error_code ec, std::span<const std::uint8_t> d) {
      if (ec || d.empty()) {
        c->client->close();
        return;
      }
      c->client->write(d, [](std::error_code) {});
      pump_back(c);
    });
  }

  net::NetworkStack& stack_;
  Kind kind_;
  Behaviour b_;
  std::unique_ptr<net::Listener> listener_;
  std::map<int, std::shared_ptr<Conn>> conns_;
  int next_ = 0;
};

}  // namespace duet::test
