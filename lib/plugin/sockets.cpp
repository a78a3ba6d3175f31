// Sockets through a plugin, and which plugin a configuration asks for.
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>

#include "duet/net/error.hpp"
#include "proxy_sockets.hpp"

#ifndef DUET_PLUGIN_DIR
#define DUET_PLUGIN_DIR "."
#endif
#ifndef DUET_PLUGINS_UNDER_PREFIX
#define DUET_PLUGINS_UNDER_PREFIX "lib/duet/plugins"
#endif

namespace duet::plugin {

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

net::Result<std::unique_ptr<net::StreamSocket>> PluginSockets::open_stream_via(net::Family family,
                                                                               const std::string& host,
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
  return detail::make_proxy_stream(stack_.clock(), std::move(*inner), std::move(hs), instance_->name());
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
  return detail::make_proxy_datagram(stack_, std::move(*udp), std::move(hs), instance_->name());
}

std::string plugin_dir() {
  if (const char* d = std::getenv("DUET_PLUGIN_DIR"); d != nullptr && *d != '\0') return d;
  // Installed, PREFIX/sbin/duetd (or bin/) finds PREFIX/LIBDIR/duet/plugins; run from
  // the build tree, the plugins the build made.
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = exe.parent_path().parent_path() / DUET_PLUGINS_UNDER_PREFIX;
    if (std::filesystem::exists(installed / "duet-socks.so", ec)) return installed.string();
  }
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
