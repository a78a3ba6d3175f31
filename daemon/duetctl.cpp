// duetctl: asks a running duetd over its control socket.
//
//   duetctl status [--json] [--all | --peer KEY] [--dev NAME | --socket PATH]
//
// Text shows the interface and, up to 20 peers, each of them; a bigger server gets a
// summary (peers configured and with live keys, handshakes a second, refusals) unless
// --all asks for every peer. --peer shows one. --json is every field of every peer.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>
#include <string>

#include "status.hpp"

#ifndef DUET_VERSION
#define DUET_VERSION "0"
#endif

namespace {

/// One request line to duetd, its whole answer back; empty with `error` set on failure.
std::string ask(const std::string& socket_path, const std::string& request, std::string& error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    error = "socket path too long: '" + socket_path + "'";
    return {};
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return {};
  }
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "cannot reach duetd at " + socket_path + ": " + std::strerror(errno) +
            " (is it running? are you root or in its group?)";
    close(fd);
    return {};
  }
  const std::string line = request + "\n";
  std::string reply;
  if (write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
    char buf[65536];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  if (reply.empty()) error = "duetd at " + socket_path + " gave no answer";
  return reply;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duetctl: the status of a running duetd, over its control socket"};
  app.set_version_flag("--version", std::string("duetctl ") + DUET_VERSION);
  app.require_subcommand(1);
  std::string dev = "duet0", socket_path, peer;
  bool json = false, all = false;
  auto* status = app.add_subcommand("status", "what duetd is doing: interface, sockets, peers");
  status->add_flag("--json", json, "every field of every peer, as JSON");
  status->add_flag("--all", all, "every peer, however many (text)");
  status->add_option("--peer", peer, "one peer, by its public key (base64)");
  auto* dev_opt = status->add_option("--dev", dev, "the interface duetd runs (its socket is /run/duetd-DEV.sock)");
  status->add_option("--socket", socket_path, "the control socket's path")->excludes(dev_opt);
  CLI11_PARSE(app, argc, argv);

  if (socket_path.empty()) socket_path = "/run/duetd-" + dev + ".sock";
  // The daemon answers the whole list only when asked for it: a summary is quick at any size.
  const std::string request = !peer.empty() ? "peer " + peer : (json || all) ? "status" : "summary";
  std::string error;
  const std::string reply = ask(socket_path, request, error);
  if (reply.empty()) {
    std::cerr << "duetctl: " << error << "\n";
    return 1;
  }
  try {
    const auto j = nlohmann::ordered_json::parse(reply);
    if (j.contains("error")) {
      std::cerr << "duetctl: " << j["error"].get<std::string>() << "\n";
      return 1;
    }
    std::cout << (json ? j.dump(2) + "\n" : duet::daemon::status_text(j));
  } catch (const std::exception& e) {
    std::cerr << "duetctl: duetd's answer is not JSON: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
