// Loading a plugin (dlopen, the ABI check), the errors it reports, its instances and the
// handshakes they run.
#include <dlfcn.h>

#include <array>
#include <utility>

#include "duet/net/error.hpp"
#include "duet/plugin/host.hpp"

namespace duet::plugin {

namespace {

class PluginCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "duet-plugin"; }
  std::string message(int c) const override {
    switch (c) {
      case DUET_PLUGIN_E_MALFORMED:
        return "proxy reply malformed";
      case DUET_PLUGIN_E_TOO_LARGE:
        return "proxy reply too large";
      case DUET_PLUGIN_E_AUTH_REQUIRED:
        return "proxy requires authentication";
      case DUET_PLUGIN_E_AUTH_FAILED:
        return "proxy authentication failed";
      case DUET_PLUGIN_E_FORBIDDEN:
        return "proxy forbids this destination";
      case DUET_PLUGIN_E_UNREACHABLE:
        return "proxy cannot reach the remote";
      case DUET_PLUGIN_E_REFUSED:
        return "remote refused the proxy's connection";
      case DUET_PLUGIN_E_TIMEOUT:
        return "proxy timed out reaching the remote";
      case DUET_PLUGIN_E_UNSUPPORTED:
        return "proxy does not support the request";
      case DUET_PLUGIN_E_PROXY_FAILED:
        return "proxy failed";
      case DUET_PLUGIN_E_CLOSED:
        return "proxy closed the connection during the handshake";
      case DUET_PLUGIN_E_CONFIG:
        return "bad plugin arguments";
      default:
        return "plugin error " + std::to_string(c);
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
  if (lib_->api().relay == nullptr || lib_->api().relay(conn_, host.data(), host.size(), &port) != 0)
    return std::nullopt;
  host.back() = '\0';
  return std::pair{text(host), port};
}

std::vector<std::uint8_t> Handshake::wrap(std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out(payload.size() + kMaxWrapOverhead);
  out.resize(wrap_into(payload, out));
  return out;
}

std::size_t Handshake::wrap_into(std::span<const std::uint8_t> payload, std::span<std::uint8_t> out) {
  const std::size_t n = lib_->api().wrap(conn_, payload.data(), payload.size(), out.data(), out.size());
  return n <= out.size() ? n : 0;  // more than the room: the plugin says it did not fit
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

std::unique_ptr<Handshake> Instance::open(const std::string& host, std::uint16_t port, bool datagram,
                                          std::string& why) {
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

}  // namespace duet::plugin
