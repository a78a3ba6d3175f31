#include "duet/sim/probe_session.hpp"

#include <charconv>
#include <string_view>

namespace duet::sim {

namespace {

std::vector<std::uint8_t> text(const std::string& s) { return {s.begin(), s.end()}; }

bool parse(std::string_view m, std::string_view word, std::uint64_t& n) {
  if (m.size() <= word.size() + 1 || m.substr(0, word.size()) != word || m[word.size()] != ' ') return false;
  const auto digits = m.substr(word.size() + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  return ec == std::errc{} && p == digits.data() + digits.size();
}

}  // namespace

std::vector<std::uint8_t> ProbeSession::hello() { return text("HELLO " + std::to_string(id_)); }

std::vector<std::uint8_t> ProbeSession::keepalive() { return text("PING " + std::to_string(++pings_)); }

std::vector<std::uint8_t> ProbeSession::path_check() { return text("CHECK " + std::to_string(id_)); }

std::vector<std::uint8_t> ProbeSession::data(std::uint64_t n) { return text("DATA " + std::to_string(n)); }

transport::Session::Reply ProbeSession::receive(std::span<const std::uint8_t> message) {
  const std::string_view m(reinterpret_cast<const char*>(message.data()), message.size());
  Reply r;
  std::uint64_t n = 0;
  if (parse(m, "HELLO", n)) {
    ++stats_.hellos_answered;
    r.authenticated = true;
    r.send.push_back(text("WELCOME " + std::to_string(n)));
  } else if (parse(m, "WELCOME", n)) {
    r.answers_hello = n == id_;
  } else if (parse(m, "PING", n)) {
    r.authenticated = true;
    r.send.push_back(text("PONG " + std::to_string(n)));
  } else if (parse(m, "PONG", n)) {
    r.authenticated = true;  // the peer is there (a move to a standby waits for this)
  } else if (parse(m, "CHECK", n)) {
    r.send.push_back(text("CHECKED " + std::to_string(n)));  // no state kept: not authenticated
  } else if (parse(m, "CHECKED", n)) {
    r.answers_check = n == id_;
  } else if (parse(m, "DATA", n)) {
    ++stats_.data_received;
    r.authenticated = true;
  } else {
    ++stats_.garbage;
  }
  return r;
}

}  // namespace duet::sim
