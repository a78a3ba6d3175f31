#include "duet/plugin/host.hpp"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdlib>
#include <utility>

#include "duet/net/error.hpp"

#ifndef DUET_PLUGIN_DIR
#define DUET_PLUGIN_DIR "."
#endif

namespace duet::plugin {

namespace {

class PluginCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "duet-plugin"; }
  std::string message(int c) const override {
    switch (c) {
      case DUET_PLUGIN_E_MALFORMED: return "proxy reply malformed";
      case DUET_PLUGIN_E_TOO_LARGE: return "proxy reply too large";
      case DUET_PLUGIN_E_AUTH_REQUIRED: return "proxy requires authentication";
      case DUET_PLUGIN_E_AUTH_FAILED: return "proxy authentication failed";
      case DUET_PLUGIN_E_FORBIDDEN: return "proxy forbids this destination";
      case DUET_PLUGIN_E_UNREACHABLE: return "proxy cannot reach the remote";
      case DUET_PLUGIN_E_REFUSED: return "remote refused the proxy's connection";
      case DUET_PLUGIN_E_TIMEOUT: return "proxy timed out reaching the remote";
      case DUET_PLUGIN_E_UNSUPPORTED: return "proxy does not support the request";
      case DUET_PLUGIN_E_PROXY_FAILED: return "proxy failed";
      case DUET_PLUGIN_E_CLOSED: return "proxy closed the connection during the handshake";
      case DUET_PLUGIN_E_CONFIG: return "bad plugin arguments";
      default: return "plugin error " + std::to_string(c);
    }
  }
};

std::string text(const std::array<char, 256>& buf) { return std::string(buf.data()); }

}  // namespace

const std::error_category& plugin_category() {
  static const PluginCategory c;
  return c;
}
std::error_code make_error(int e) { return {e, plugin_category()}; }

// --- Library ------------------------------------------------------------------------------

std::shared_ptr<Library> Library::load(const std::string& path, std::string& why) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* e = dlerror();
    why = "cannot load plugin '" + path + "': " + (e ? e : "unknown error");
    return nullptr;
  }
  auto entry = reinterpret_cast<duet_plugin_entry_fn>(dlsym(h, "duet_plugin_entry"));
  if (entry == nullptr) {
    why = "'" + path + "' is not a duet plugin (no duet_plugin_entry symbol)";
    dlclose(h);
    return nullptr;
  }
  const duet_plugin* api = entry(DUET_PLUGIN_ABI_VERSION);
  if (api == nullptr || api->abi_version != DUET_PLUGIN_ABI_VERSION) {
    why = "plugin '" + path + "' speaks plugin ABI version " + (api ? std::to_string(api->abi_version) : "(none)") +
          ", this duet speaks version " + std::to_string(DUET_PLUGIN_ABI_VERSION);
    dlclose(h);
    return nullptr;
  }
  if (!api->create || !api->destroy || !api->proxy || !api->open || !api->output || !api->feed || !api->close ||
      ((api->capabilities & DUET_PLUGIN_DATAGRAM) && (!api->relay || !api->wrap || !api->unwrap))) {
    why = "plugin '" + path + "' leaves required functions empty";
    dlclose(h);
    return nullptr;
  }
  return std::shared_ptr<Library>(new Library(h, api, path));
}

Library::~Library() { dlclose(handle_); }

// --- Handshake ------------------------------------------------------------------------------

Handshake::~Handshake() { lib_->api().close(conn_); }

std::vector<std::uint8_t> Handshake::output() {
  std::vector<std::uint8_t> out;
  std::array<std::uint8_t, 4096> chunk{};
  for (std::size_t n; (n = lib_->api().output(conn_, chunk.data(), chunk.size())) > 0;) {
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(std::min(n, chunk.size())));
  }
  return out;
}

Handshake::Fed Handshake::feed(std::span<const std::uint8_t> bytes) {
  Fed f;
  std::size_t consumed = bytes.size();
  int error = 0;
  std::array<char, 256> err{};
  const int r = lib_->api().feed(conn_, bytes.data(), bytes.size(), &consumed, &error, err.data(), err.size());
  err.back() = '\0';
  if (r == DUET_PLUGIN_DONE) {
    f.status = Status::done;
    f.consumed = std::min(consumed, bytes.size());
  } else if (r == DUET_PLUGIN_FAILED) {
    f.status = Status::failed;
    f.error = make_error(error != 0 ? error : DUET_PLUGIN_E_PROXY_FAILED);
    f.message = text(err);
  }
  return f;
}

std::optional<std::pair<std::string, std::uint16_t>> Handshake::relay() {
  std::array<char, 256> host{};
  std::uint16_t port = 0;
  if (lib_->api().relay == nullptr || lib_->api().relay(conn_, host.data(), host.size(), &port) != 0) return std::nullopt;
  host.back() = '\0';
  return std::pair{text(host), port};
}

std::vector<std::uint8_t> Handshake::wrap(std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out(payload.size() + 300);
  const std::size_t n = lib_->api().wrap(conn_, payload.data(), payload.size(), out.data(), out.size());
  out.resize(std::min(n, out.size()));
  return out;
}

std::optional<std::span<const std::uint8_t>> Handshake::unwrap(std::span<const std::uint8_t> d) {
  const long off = lib_->api().unwrap(conn_, d.data(), d.size());
  if (off < 0 || static_cast<std::size_t>(off) > d.size()) return std::nullopt;
  return d.subspan(static_cast<std::size_t>(off));
}

// --- Instance -------------------------------------------------------------------------------

std::unique_ptr<Instance> Instance::create(std::shared_ptr<Library> lib, const std::vector<std::string>& args,
                                           std::string& why) {
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  std::array<char, 256> err{};
  void* inst = lib->api().create(static_cast<int>(args.size()), argv.data(), err.data(), err.size());
  err.back() = '\0';
  if (inst == nullptr) {
    why = std::string(lib->api().name ? lib->api().name : "plugin") + ": " + text(err);
    return nullptr;
  }
  std::unique_ptr<Instance> out(new Instance(lib, inst));
  out->name_ = lib->api().name ? lib->api().name : lib->path();
  std::array<char, 256> host{};
  if (lib->api().proxy(inst, host.data(), host.size(), &out->proxy_port_) != 0) {
    why = out->name_ + ": it names no proxy to connect to";
    return nullptr;
  }
  host.back() = '\0';
  out->proxy_host_ = text(host);
  return out;
}

Instance::~Instance() { lib_->api().destroy(instance_); }

bool Instance::supports(config::Transport t) const {
  return (lib_->api().capabilities & (t == config::Transport::tcp ? DUET_PLUGIN_STREAM : DUET_PLUGIN_DATAGRAM)) != 0;
}

std::unique_ptr<Handshake> Instance::open(const std::string& host, std::uint16_t port, bool datagram, std::string& why) {
  const duet_plugin_target target{host.c_str(), port, datagram ? 1 : 0};
  std::array<char, 256> err{};
  void* conn = lib_->api().open(instance_, &target, err.data(), err.size());
  err.back() = '\0';
  if (conn == nullptr) {
    why = name_ + ": " + text(err);
    return nullptr;
  }
  return std::make_unique<Handshake>(lib_, conn);
}

// --- a stream through the plugin ------------------------------------------------------------

namespace {

/// Sends whatever the plugin has to say to the proxy.
void send_output(net::StreamSocket& s, Handshake& hs) {
  auto out = hs.output();
  if (!out.empty()) s.write(out, [](std::error_code) {});
}

/// The plugin's side of a handshake on a stream to the proxy: feed it what the proxy says
/// and send what it answers until it is done (`done` gets the bytes after the proxy's
/// reply) or fails (`failed` gets the error and the plugin's words; a read error comes
/// with no words). ProxyStream's stream and ProxyDatagram's control stream both use it.
using HandshakeDone = std::function<void(std::span<const std::uint8_t> rest)>;
using HandshakeFailed = std::function<void(std::error_code, const std::string& why)>;
void run_handshake(net::StreamSocket& s, Handshake& hs, HandshakeDone done, HandshakeFailed failed) {
  s.read_some([&s, &hs, done = std::move(done), failed = std::move(failed)](std::error_code ec,
                                                                            std::span<const std::uint8_t> data) mutable {
    if (ec) return failed(ec, "");
    if (data.empty()) return failed(make_error(DUET_PLUGIN_E_CLOSED), "the proxy closed the connection before its reply was complete");
    const auto fed = hs.feed(data);
    if (fed.status == Handshake::Status::failed) return failed(fed.error, fed.message);
    send_output(s, hs);
    if (fed.status == Handshake::Status::done) return done(data.subspan(std::min(fed.consumed, data.size())));
    run_handshake(s, hs, std::move(done), std::move(failed));
  });
}

/// A stream to the proxy that becomes a stream to the remote: connect() covers the TCP
/// connection and the plugin's handshake, within one timeout.
class ProxyStream final : public net::StreamSocket {
public:
  ProxyStream(net::Clock& clock, std::unique_ptr<net::StreamSocket> inner, std::unique_ptr<Handshake> hs,
              std::string name)
      : clock_(clock), inner_(std::move(inner)), hs_(std::move(hs)), timer_(clock.make_timer()), name_(std::move(name)) {}

  net::Family family() const override { return inner_->family(); }
  std::error_code bind(const net::Endpoint& local) override { return inner_->bind(local); }

  void connect(const net::Endpoint& proxy, net::Duration timeout, net::ConnectHandler handler) override {
    handler_ = std::move(handler);
    timer_->start(timeout, [this] {
      detail_ = name_ + ": no answer within the connect timeout";
      finish(net::errc(std::errc::timed_out));
    });
    inner_->connect(proxy, timeout, [this](std::error_code ec) {
      if (ec) return finish(ec);
      send_output(*inner_, *hs_);
      run_handshake(
          *inner_, *hs_,
          [this](std::span<const std::uint8_t> rest) {
            leftover_.assign(rest.begin(), rest.end());
            finish({});
          },
          [this](std::error_code e, const std::string& why) {
            if (!why.empty()) detail_ = name_ + ": " + why;
            finish(e);
          });
    });
  }

  void read_some(net::ReadHandler handler) override {
    if (!leftover_.empty()) {
      clock_.post([h = std::move(handler), data = std::move(leftover_)] { h({}, data); });
      leftover_.clear();
      return;
    }
    inner_->read_some(std::move(handler));
  }
  void write(std::span<const std::uint8_t> data, net::WriteHandler handler) override {
    inner_->write(data, std::move(handler));
  }
  std::size_t queued() const override { return inner_->queued(); }
  std::error_code shutdown_send() override { return inner_->shutdown_send(); }
  void close() override {
    handler_ = nullptr;
    timer_->cancel();
    inner_->close();
  }
  void reset() override {
    handler_ = nullptr;
    timer_->cancel();
    inner_->reset();
  }
  net::Result<net::Endpoint> local_endpoint() const override { return inner_->local_endpoint(); }
  net::Result<net::Endpoint> remote_endpoint() const override { return inner_->remote_endpoint(); }
  std::string error_detail() const override { return detail_; }

private:
  void finish(std::error_code ec) {
    timer_->cancel();
    if (ec) inner_->close();
    if (auto h = std::move(handler_)) {
      handler_ = nullptr;
      h(ec);
    }
  }

  net::Clock& clock_;
  std::unique_ptr<net::StreamSocket> inner_;
  std::unique_ptr<Handshake> hs_;
  std::unique_ptr<net::Timer> timer_;
  std::string name_;
  net::ConnectHandler handler_;
  std::vector<std::uint8_t> leftover_;
  std::string detail_;
};

/// A datagram socket through a relay (SOCKS5 UDP ASSOCIATE): connect() opens the control
/// stream to the proxy and runs the handshake; datagrams sent before the relay is known
/// wait (the last few), then go wrapped to the relay; what comes back is unwrapped and
/// reported as coming from the proxy's address. The control stream closing, or the
/// handshake failing, is reported as an error on receive(), as ICMP errors are on a
/// connected socket.
class ProxyDatagram final : public net::DatagramSocket {
public:
  ProxyDatagram(net::NetworkStack& stack, std::unique_ptr<net::DatagramSocket> udp, std::unique_ptr<Handshake> hs,
                std::string name)
      : stack_(stack), udp_(std::move(udp)), hs_(std::move(hs)), name_(std::move(name)) {}

  net::Family family() const override { return udp_->family(); }
  std::error_code set_v6only(bool on) override { return udp_->set_v6only(on); }
  std::error_code bind(const net::Endpoint& local) override { return udp_->bind(local); }
  std::error_code connect(const net::Endpoint& proxy) override {
    proxy_ = proxy;
    auto s = stack_.open_stream(proxy.family());
    if (!s) return s.error();
    control_ = std::move(*s);
    control_->connect(proxy, std::chrono::seconds(30), [this](std::error_code ec) {
      if (ec) return fail(ec, "");
      send_output(*control_, *hs_);
      run_handshake(
          *control_, *hs_, [this](std::span<const std::uint8_t>) { associated(); },
          [this](std::error_code e, const std::string& why) {
            fail(e, why.empty() ? "the proxy closed the connection before its reply was complete" : why);
          });
    });
    return {};
  }
  net::Result<net::Endpoint> local_endpoint() const override { return udp_->local_endpoint(); }
  std::error_code send_to(const net::Endpoint&, std::span<const std::uint8_t> data) override { return send(data); }
  std::error_code send(std::span<const std::uint8_t> data) override {
    if (error_) return error_;
    if (!relay_) {
      if (waiting_.size() >= 4) waiting_.erase(waiting_.begin());
      waiting_.emplace_back(data.begin(), data.end());
      return {};
    }
    const auto wrapped = hs_->wrap(data);
    if (wrapped.empty()) return net::errc(std::errc::message_size);
    return udp_->send_to(*relay_, wrapped);
  }
  void receive(net::ReceiveHandler handler) override {
    handler_ = std::move(handler);
    if (error_) return deliver_error();
    arm();
  }
  void close() override {
    handler_ = nullptr;
    if (control_) control_->close();
    udp_->close();
  }

private:
  /// The handshake is done: the relay's address is known, waiting datagrams go out.
  void associated() {
    auto r = hs_->relay();
    if (!r) return fail(make_error(DUET_PLUGIN_E_MALFORMED), "no relay address");
    std::optional<net::Address> addr = proxy_.address;
    if (!r->first.empty()) {
      auto parsed = net::Address::parse(r->first);
      addr = parsed ? std::optional(*parsed) : std::nullopt;
    }
    if (!addr || addr->family() != udp_->family()) {
      return fail(make_error(DUET_PLUGIN_E_UNSUPPORTED), "relay '" + r->first + "' is not an address of this family");
    }
    relay_ = net::Endpoint{*addr, r->second};
    for (const auto& d : std::exchange(waiting_, {})) (void)send(d);
    watch_control();
  }
  /// The association lives as long as the control stream: nothing more is expected on it.
  void watch_control() {
    control_->read_some([this](std::error_code ec, std::span<const std::uint8_t> data) {
      if (ec || data.empty()) return fail(ec ? ec : make_error(DUET_PLUGIN_E_CLOSED), "the proxy closed the UDP association");
      watch_control();
    });
  }
  void arm() {
    if (armed_) return;
    armed_ = true;
    udp_->receive([this](std::error_code ec, const net::Endpoint& from, std::span<const std::uint8_t> d) {
      armed_ = false;
      if (ec) return fail(ec, "");
      if (relay_ && from == *relay_) {
        if (auto payload = hs_->unwrap(d); payload && handler_) {
          auto h = std::move(handler_);
          handler_ = nullptr;
          h({}, proxy_, *payload);
          return;
        }
      }
      arm();
    });
  }
  void fail(std::error_code ec, const std::string& why) {
    if (error_) return;
    error_ = ec;
    if (!why.empty()) spdlog::warn("{}: {}", name_, why);
    if (handler_) deliver_error();
  }
  void deliver_error() {
    auto h = std::move(handler_);
    handler_ = nullptr;
    stack_.clock().post([h = std::move(h), ec = error_, from = proxy_] { h(ec, from, {}); });
  }

  net::NetworkStack& stack_;
  std::unique_ptr<net::DatagramSocket> udp_;
  std::unique_ptr<Handshake> hs_;
  std::string name_;
  std::unique_ptr<net::StreamSocket> control_;
  net::Endpoint proxy_;
  std::optional<net::Endpoint> relay_;
  std::vector<std::vector<std::uint8_t>> waiting_;
  net::ReceiveHandler handler_;
  bool armed_ = false;
  std::error_code error_;
};

}  // namespace

PluginSockets::PluginSockets(net::NetworkStack& stack, std::unique_ptr<Instance> instance)
    : stack_(stack), instance_(std::move(instance)) {}

net::Result<std::unique_ptr<net::DatagramSocket>> PluginSockets::open_datagram(net::Family family,
                                                                              const net::Endpoint&) {
  return stack_.open_datagram(family);
}
net::Result<std::unique_ptr<net::StreamSocket>> PluginSockets::open_stream(net::Family family, const net::Endpoint&) {
  return stack_.open_stream(family);
}

std::optional<transport::Via> PluginSockets::via(config::Transport) const {
  // Every remote goes through the proxy; one the plugin cannot carry fails clearly rather
  // than bypass it.
  return transport::Via{instance_->proxy_host(), instance_->proxy_port(), instance_->name()};
}

net::Result<std::unique_ptr<net::StreamSocket>> PluginSockets::open_stream_via(net::Family family, const std::string& host,
                                                                               std::uint16_t port) {
  if (!instance_->supports(config::Transport::tcp)) return net::errc(std::errc::operation_not_supported);
  std::string why;
  auto hs = instance_->open(host, port, false, why);
  if (!hs) {
    spdlog::warn("{}", why);
    return make_error(DUET_PLUGIN_E_CONFIG);
  }
  auto inner = stack_.open_stream(family);
  if (!inner) return inner.error();
  return std::unique_ptr<net::StreamSocket>(
      std::make_unique<ProxyStream>(stack_.clock(), std::move(*inner), std::move(hs), instance_->name()));
}

net::Result<std::unique_ptr<net::DatagramSocket>> PluginSockets::open_datagram_via(net::Family family,
                                                                                   const std::string& host,
                                                                                   std::uint16_t port) {
  if (!instance_->supports(config::Transport::udp)) {
    spdlog::warn("{} carries streams only: a UDP remote cannot go through it", instance_->name());
    return net::errc(std::errc::operation_not_supported);
  }
  std::string why;
  auto hs = instance_->open(host, port, true, why);
  if (!hs) {
    spdlog::warn("{}", why);
    return make_error(DUET_PLUGIN_E_CONFIG);
  }
  auto udp = stack_.open_datagram(family);
  if (!udp) return udp.error();
  return std::unique_ptr<net::DatagramSocket>(
      std::make_unique<ProxyDatagram>(stack_, std::move(*udp), std::move(hs), instance_->name()));
}

std::string plugin_dir() {
  if (const char* d = std::getenv("DUET_PLUGIN_DIR"); d != nullptr && *d != '\0') return d;
  return DUET_PLUGIN_DIR;
}

std::unique_ptr<transport::SocketFactory> sockets_for(const config::Config& cfg, net::NetworkStack& stack,
                                                      std::string& why) {
  std::string path;
  std::vector<std::string> args;
  if (const auto& p = cfg.http_proxy ? cfg.http_proxy : cfg.socks_proxy) {
    path = plugin_dir() + (p->kind == config::Proxy::Kind::http ? "/duet-http-proxy.so" : "/duet-socks.so");
    args = {p->host, std::to_string(p->port)};
    if (!p->auth_file.empty()) args.push_back(p->auth_file);
  } else if (!cfg.plugins.empty()) {
    path = cfg.plugins.front().path;
    args = cfg.plugins.front().args;
  } else {
    return std::make_unique<transport::StackSockets>(stack);
  }
  auto lib = Library::load(path, why);
  if (!lib) return nullptr;
  auto inst = Instance::create(lib, args, why);
  if (!inst) return nullptr;
  spdlog::info("plugin {} loaded from {}: proxy {}:{}", inst->name(), path, inst->proxy_host(), inst->proxy_port());
  return std::make_unique<PluginSockets>(stack, std::move(inst));
}

}  // namespace duet::plugin
