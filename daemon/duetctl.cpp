// duetctl status [--json] [--dev NAME | --socket PATH]: asks a running duetd.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>

#include "status.hpp"

int main(int argc, char** argv) {
  std::string command, dev = "duet0", socket_path;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json")
      json = true;
    else if (a == "--dev" && i + 1 < argc)
      dev = argv[++i];
    else if (a == "--socket" && i + 1 < argc)
      socket_path = argv[++i];
    else if (command.empty() && a == "status")
      command = a;
    else {
      std::cerr << "usage: duetctl status [--json] [--dev NAME | --socket PATH]\n";
      return 2;
    }
  }
  if (command.empty()) {
    std::cerr << "usage: duetctl status [--json] [--dev NAME | --socket PATH]\n";
    return 2;
  }
  if (socket_path.empty()) socket_path = "/run/duetd-" + dev + ".sock";
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || socket_path.size() >= sizeof addr.sun_path) {
    std::cerr << "duetctl: bad socket path '" << socket_path << "'\n";
    return 1;
  }
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::cerr << "duetctl: cannot reach duetd at " << socket_path << ": " << std::strerror(errno)
              << " (is it running? are you root or in its group?)\n";
    return 1;
  }
  const std::string request = "status\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) return 1;
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
  close(fd);
  try {
    const auto j = nlohmann::ordered_json::parse(reply);
    std::cout << (json ? j.dump(2) + "\n" : duet::daemon::status_text(j));
  } catch (const std::exception& e) {
    std::cerr << "duetctl: duetd's answer is not JSON: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
