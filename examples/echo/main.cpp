// duet-echo: the echo service on the kernel's network.
//   duet-echo server PORT               serves on every address of PORT until killed
//   duet-echo client HOST PORT [TEXT]   asks once; exit 0 when the reply came back
#include <cstdio>
#include <cstdlib>
#include <string>

#include "duet/net/error.hpp"
#include "duet/posix/loop.hpp"
#include "duet/posix/posix_stack.hpp"
#include "echo.hpp"

int main(int argc, char** argv) {
  const std::string role = argc > 1 ? argv[1] : "";
  if (!((role == "server" && argc == 3) || (role == "client" && (argc == 4 || argc == 5)))) {
    std::fprintf(stderr, "usage: duet-echo server PORT | duet-echo client HOST PORT [TEXT]\n");
    return 2;
  }
  duet::posix::Loop loop;
  duet::posix::PosixStack stack(loop);
  if (role == "server") {
    echo::Server server(stack);
    bool failed = false;
    server.start(static_cast<std::uint16_t>(std::atoi(argv[2])), [&](auto bound) {
      if (!bound) {
        std::fprintf(stderr, "duet-echo: cannot serve: %s\n", bound.error().message().c_str());
        failed = true;
        loop.stop();
        return;
      }
      for (const auto& e : *bound) {
        std::printf("serving on %s\n", e.to_string().c_str());
      }
      std::fflush(stdout);
    });
    loop.run();
    return failed ? 1 : 0;
  }
  echo::Client client(stack);
  echo::Outcome outcome;
  client.ask(argv[2], static_cast<std::uint16_t>(std::atoi(argv[3])), argc == 5 ? argv[4] : "hello",
             [&](echo::Outcome o) {
               outcome = std::move(o);
               loop.stop();
             });
  loop.run();
  for (const auto& step : outcome.steps) {
    std::printf("  %s\n", step.c_str());
  }
  if (outcome.error) {
    std::printf("no reply: %s after %.0f ms\n", duet::net::error_name(outcome.error).c_str(),
                duet::net::to_ms(outcome.elapsed));
    return 1;
  }
  std::printf("%s from %s after %.1f ms\n", outcome.reply.c_str(), outcome.answered_by->to_string().c_str(),
              duet::net::to_ms(outcome.elapsed));
  return 0;
}
