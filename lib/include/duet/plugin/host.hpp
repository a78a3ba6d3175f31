// The host side of socket plugins (duet/plugin.h): loading a plugin, the errors it
// reports, and the sockets it supplies to the engine. The core knows nothing of any proxy
// protocol: it moves bytes between a stream to the proxy and the plugin's state machine.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "duet/config/config.hpp"
#include "duet/net/network_stack.hpp"
#include "duet/plugin.h"
#include "duet/transport/socket_factory.hpp"

namespace duet::plugin {

/// Errors a plugin reports (enum duet_plugin_error), with words a user understands.
const std::error_category& plugin_category();
std::error_code make_error(int duet_plugin_error);

/// A loaded shared object. Kept alive (not dlclose'd) while anything of it is in use.
class Library {
public:
  /// dlopen + duet_plugin_entry + ABI version check; nullptr with the reason in `why`.
  static std::shared_ptr<Library> load(const std::string& path, std::string& why);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  [[nodiscard]] const duet_plugin& api() const { return *api_; }
  [[nodiscard]] const std::string& path() const { return path_; }

private:
  Library(void* handle, const duet_plugin* api, std::string path)
      : handle_(handle), api_(api), path_(std::move(path)) {}
  void* handle_;
  const duet_plugin* api_;
  std::string path_;
};

/// One connection's handshake, closed when destroyed.
class Handshake {
public:
  Handshake(std::shared_ptr<Library> lib, void* conn) : lib_(std::move(lib)), conn_(conn) {}
  ~Handshake();
  Handshake(const Handshake&) = delete;
  Handshake& operator=(const Handshake&) = delete;

  /// Everything the plugin wants sent now.
  std::vector<std::uint8_t> output();
  enum class Status { more, done, failed };
  struct Fed {
    Status status = Status::more;
    std::size_t consumed = 0;
    std::error_code error;
    std::string message;  ///< the plugin's own words (never secrets, by contract)
  };
  Fed feed(std::span<const std::uint8_t> bytes);
  /// Datagram plugins after done: the relay (empty host: the proxy's own address).
  std::optional<std::pair<std::string, std::uint16_t>> relay();
  std::vector<std::uint8_t> wrap(std::span<const std::uint8_t> payload);
  /// The most wrap() adds to a payload (a SOCKS5 header with a 255-byte name is 262).
  static constexpr std::size_t kMaxWrapOverhead = 300;
  /// wrap() into `out` (payload.size() + kMaxWrapOverhead bytes are always enough), without
  /// allocating; the bytes written, 0 when the plugin refused or `out` was too small.
  std::size_t wrap_into(std::span<const std::uint8_t> payload, std::span<std::uint8_t> out);
  /// The payload inside a datagram from the relay, or nullopt to drop it.
  std::optional<std::span<const std::uint8_t>> unwrap(std::span<const std::uint8_t> datagram);

private:
  std::shared_ptr<Library> lib_;
  void* conn_;
};

/// A configured plugin: the library and the instance its directive arguments made.
class Instance {
public:
  static std::unique_ptr<Instance> create(std::shared_ptr<Library> lib, const std::vector<std::string>& args,
                                          std::string& why);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  /// Where the host connects: the proxy's host (name or literal) and port.
  [[nodiscard]] const std::string& proxy_host() const { return proxy_host_; }
  [[nodiscard]] std::uint16_t proxy_port() const { return proxy_port_; }
  [[nodiscard]] bool supports(config::Transport t) const;
  [[nodiscard]] const std::string& name() const { return name_; }
  /// A handshake to `host`:`port`; nullptr with the reason in `why`.
  std::unique_ptr<Handshake> open(const std::string& host, std::uint16_t port, bool datagram, std::string& why);

private:
  Instance(std::shared_ptr<Library> lib, void* instance) : lib_(std::move(lib)), instance_(instance) {}
  std::shared_ptr<Library> lib_;
  void* instance_;
  std::string proxy_host_, name_;
  std::uint16_t proxy_port_ = 0;
};

/// Sockets through a plugin: the engine races the proxy's addresses and gets streams
/// (and datagram sockets) that reach the remote once the plugin's handshake is done.
class PluginSockets final : public transport::SocketFactory {
public:
  PluginSockets(net::NetworkStack& stack, std::unique_ptr<Instance> instance);
  net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram(net::Family family,
                                                                  const net::Endpoint& remote) override;
  net::Result<std::unique_ptr<net::StreamSocket>> open_stream(net::Family family, const net::Endpoint& remote) override;
  std::optional<transport::Via> via(config::Transport transport) const override;
  net::Result<std::unique_ptr<net::StreamSocket>> open_stream_via(net::Family family, const std::string& host,
                                                                  std::uint16_t port) override;
  net::Result<std::unique_ptr<net::DatagramSocket>> open_datagram_via(net::Family family, const std::string& host,
                                                                      std::uint16_t port) override;

private:
  net::NetworkStack& stack_;
  std::unique_ptr<Instance> instance_;
};

/// Where `http-proxy` and `socks-proxy` find duet's own plugins: $DUET_PLUGIN_DIR, else
/// the directory they were built into.
std::string plugin_dir();

/// The socket factory a configuration asks for: a proxy plugin (`http-proxy`,
/// `socks-proxy`, or the first `plugin`), or the stack itself. nullptr with the reason in
/// `why` when a plugin cannot be loaded.
std::unique_ptr<transport::SocketFactory> sockets_for(const config::Config& cfg, net::NetworkStack& stack,
                                                      std::string& why);

}  // namespace duet::plugin
