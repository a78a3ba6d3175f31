// duet-loadgen: one process that plays many WireGuard peers against a real duetd (or any
// WireGuard responder), for the scale tests and benchmarks.
//
//   duet-loadgen peers N SEED                      the server's 'peer' lines for N peers
//   duet-loadgen key I SEED                        peer I's private key (to run it as a duetd)
//   duet-loadgen run SERVER_ADDR:PORT SERVER_PUB N SEED TARGET [options]
//       --sources A,B,...   local addresses to spread the peers over (round robin)
//       --rate R            at most R handshake initiations a second (0: as fast as it can)
//       --timeout S         give up after S seconds (default 60)
//       --keepalive         confirm the keys with a keepalive instead of the echo request
//                           (handshakes only: what a responder's handshake costs, without
//                           a packet through its TUN; a peer counts once confirmed)
//
// Peer i has a private key derived from SEED and i, its own UDP socket (its own source
// port), and the inner address 198.19.x.y (i+1 in 198.19.0.0/16, so N < 65 535). It
// completes a handshake (answering cookie replies as WireGuard does), then sends one ICMP
// echo request from its inner address to TARGET through the tunnel and waits for the echo
// reply to come back sealed for it. The run prints one line of counts and exits 0 when
// every peer got its reply.
//
// Every peer's first initiation is made before the clock starts, and a cookie reply is
// answered by sending the same initiation again with its second MAC (the responder has not
// consumed it): an initiator does three X25519 per initiation and a responder four per
// handshake, so a load generator that made them as it went would be the slower of the two
// and a benchmark would measure it, not the server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "duet/net/checksum.hpp"
#include "duet/net/ip_header.hpp"
#include "duet/net/ping.hpp"
#include "duet/tunnel/noise.hpp"

using namespace duet;
using namespace duet::tunnel;
using Clock = std::chrono::steady_clock;

namespace {

Key peer_private(std::uint64_t seed, std::uint32_t i) {
  std::uint8_t in[12];
  std::memcpy(in, &seed, 8);
  std::memcpy(in + 8, &i, 4);
  return clamp_private_key(hash({std::span<const std::uint8_t>(in, sizeof in)}));
}

net::Address inner_of(std::uint32_t i) { return net::Address::v4(0xC6130000u + i + 1); }  // 198.19.0.0/16

struct Peer {
  Identity me;
  int fd = -1;
  std::vector<InitiatorState> states;  ///< the last few initiations' (a late answer still counts)
  Bytes last;                          ///< the last initiation sent (or made beforehand)
  Mac sent_mac1{};
  std::optional<Mac> cookie;
  std::optional<Keypair> keys;
  Clock::time_point initiated{};
  int initiations = 0;
  bool replied = false;
};

sockaddr_storage parse_endpoint(const std::string& text, socklen_t& len) {
  auto ep = net::Endpoint::parse(text);
  if (!ep) {
    std::cerr << "duet-loadgen: '" << text << "' is not ADDRESS:PORT\n";
    std::exit(2);
  }
  sockaddr_storage ss{};
  if (ep->address.is_v4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(ep->port);
    in->sin_addr.s_addr = htonl(ep->address.v4_value());
    len = sizeof *in;
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(ep->port);
    std::memcpy(&in6->sin6_addr, ep->address.bytes().data(), 16);
    len = sizeof *in6;
  }
  return ss;
}

int print_peers(std::uint32_t n, std::uint64_t seed) {
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto pub = public_key(peer_private(seed, i));
    std::printf("peer %s %s/32\n", key_to_base64(pub).c_str(), inner_of(i).to_string().c_str());
  }
  return 0;
}

int run(const std::vector<std::string>& a) {
  if (a.size() < 6) return 2;
  socklen_t server_len = 0;
  const sockaddr_storage server = parse_endpoint(a[1], server_len);
  const auto server_pub = key_from_base64(a[2]);
  const auto n = static_cast<std::uint32_t>(std::stoul(a[3]));
  const std::uint64_t seed = std::stoull(a[4]);
  const auto target = net::Address::parse(a[5]);
  if (!server_pub || !target || n == 0 || n > 65534) {
    std::cerr << "duet-loadgen: bad server key, target address or peer count\n";
    return 2;
  }
  std::vector<std::string> sources;
  double rate = 0;
  int timeout_s = 60;
  bool keepalive_only = false;
  for (std::size_t i = 6; i < a.size(); i += 2) {
    if (a[i] == "--keepalive") {
      keepalive_only = true;
      --i;  // takes no value
      continue;
    }
    if (i + 1 >= a.size()) break;
    if (a[i] == "--sources") {
      std::string list = a[i + 1];
      for (std::size_t at = 0; at <= list.size();) {
        const auto comma = std::min(list.find(',', at), list.size());
        sources.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    } else if (a[i] == "--rate") {
      rate = std::stod(a[i + 1]);
    } else if (a[i] == "--timeout") {
      timeout_s = std::stoi(a[i + 1]);
    }
  }
  // One socket per peer: raise the descriptor limit to fit them.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::max<rlim_t>(rl.rlim_cur, n + 64);
  if (rl.rlim_max < rl.rlim_cur) rl.rlim_max = rl.rlim_cur;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) std::perror("duet-loadgen: setrlimit (continuing)");

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Peer> peers(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    Peer& p = peers[i];
    p.me = Identity::from_private(peer_private(seed, i));
    p.fd = socket(server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p.fd < 0) {
      std::perror("duet-loadgen: socket");
      return 1;
    }
    if (!sources.empty()) {
      socklen_t len = 0;
      const std::string& src = sources[i % sources.size()];
      const sockaddr_storage local =
          parse_endpoint(src.find(':') != std::string::npos ? "[" + src + "]:0" : src + ":0", len);
      if (bind(p.fd, reinterpret_cast<const sockaddr*>(&local), len) != 0) {
        std::perror(("duet-loadgen: bind " + src).c_str());
        return 1;
      }
    }
    connect(p.fd, reinterpret_cast<const sockaddr*>(&server), server_len);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, p.fd, &ev);
  }

  std::uint64_t sent_init = 0, cookies = 0, handshakes = 0, replies = 0, bad = 0;
  std::optional<Clock::time_point> first_handshake, last_handshake;
  // make(i): a new initiation for peer i, kept as its last.
  auto make = [&](std::uint32_t i) {
    Peer& p = peers[i];
    const auto wall = std::chrono::system_clock::now().time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(wall);
    Key ephemeral{};
    random_bytes(ephemeral);
    InitiatorState state;
    // Each initiation carries a later timestamp than the last (the responder refuses replays).
    p.last = create_initiation(p.me, *server_pub, Key{}, i + 1 + static_cast<std::uint32_t>(p.initiations) * 65536,
                               tai64n(static_cast<std::uint64_t>(secs.count()),
                                      static_cast<std::uint32_t>((wall - secs).count() + p.initiations)),
                               clamp_private_key(ephemeral), state, p.cookie);
    p.states.push_back(state);
    if (p.states.size() > 3) p.states.erase(p.states.begin());
    p.sent_mac1 = *mac1_of(p.last);
  };
  auto send_last = [&](Peer& p) {
    ++p.initiations;
    p.initiated = Clock::now();
    if (send(p.fd, p.last.data(), p.last.size(), 0) == static_cast<ssize_t>(p.last.size())) ++sent_init;
  };
  std::fprintf(stderr, "duet-loadgen: making %u peers' first initiations\n", n);
  for (std::uint32_t i = 0; i < n; ++i) make(i);
  // initiate(i): the prepared first initiation, else a new one (a resend after 5 s).
  auto initiate = [&](std::uint32_t i) {
    Peer& p = peers[i];
    if (p.initiations > 0) make(i);
    send_last(p);
  };
  // The same initiation again with the cookie's MAC: the last 16 bytes are mac2, over all
  // that comes before it.
  auto resend_with_cookie = [&](Peer& p) {
    const auto m2 = mac(*p.cookie, std::span<const std::uint8_t>(p.last).first(p.last.size() - 16));
    std::copy(m2.begin(), m2.end(), p.last.end() - 16);
    send_last(p);
  };
  auto ping = [&](Peer& p, std::uint32_t i) {
    const auto echo = net::ipv4_icmp_echo(8, inner_of(i), *target, static_cast<std::uint16_t>(i), 1);
    const auto msg = encrypt_data(*p.keys, 0, echo);
    (void)send(p.fd, msg.data(), msg.size(), 0);
  };

  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(timeout_s);
  std::uint32_t next = 0;
  std::vector<epoll_event> events(256);
  std::uint8_t buf[2048];
  while (replies < n && Clock::now() < deadline) {
    // Start initiations at the asked rate; resend those unanswered after 5 s, as WireGuard
    // does (sooner would only pile up handshakes on a busy server), and those that got a
    // cookie at once.
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    while (next < n && (rate <= 0 || static_cast<double>(next) < rate * elapsed + 1)) initiate(next++);
    for (std::uint32_t i = 0; i < next; ++i) {
      Peer& p = peers[i];
      if (!p.keys && now - p.initiated > std::chrono::seconds(5))
        initiate(i);
      else if (p.keys && !p.replied && now - p.initiated > std::chrono::seconds(5))
        initiate(i);
    }
    const int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 10);
    for (int e = 0; e < k; ++e) {
      const std::uint32_t i = events[static_cast<std::size_t>(e)].data.u32;
      Peer& p = peers[i];
      for (;;) {
        const ssize_t got = recv(p.fd, buf, sizeof buf, 0);
        if (got <= 0) break;
        const std::span<const std::uint8_t> m(buf, static_cast<std::size_t>(got));
        if (m[0] == kMessageHandshakeCookie) {
          if (auto c = consume_cookie_reply(*server_pub, m, p.sent_mac1)) {
            p.cookie = *c;
            ++cookies;
            resend_with_cookie(p);
          }
        } else if (m[0] == kMessageHandshakeResponse) {
          const auto idx = receiver_index(m);
          const auto st = std::find_if(p.states.begin(), p.states.end(),
                                       [&](const InitiatorState& x) { return idx && x.local_index == *idx; });
          if (p.replied) continue;  // done already: a late answer to an earlier initiation
          if (auto keys = st == p.states.end() ? std::nullopt : consume_response(p.me, *st, m)) {
            if (!p.keys) {
              ++handshakes;
              last_handshake = Clock::now();
              if (!first_handshake) first_handshake = last_handshake;
            }
            p.keys = *keys;
            if (keepalive_only) {
              const auto msg = encrypt_data(*p.keys, 0, {});
              if (send(p.fd, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()) && !p.replied) {
                p.replied = true;
                ++replies;
              }
            } else {
              ping(p, i);  // also confirms the keys to the responder
            }
          } else {
            ++bad;
          }
        } else if (m[0] == kMessageData && p.keys) {
          auto d = decrypt_data(*p.keys, m);
          if (!d) {
            ++bad;
            continue;
          }
          const auto h = net::parse_ip_header(d->packet);
          // An echo reply (ICMP type 0) from the target to this peer's inner address.
          if (h && h->protocol == 1 && h->source == *target && h->destination == inner_of(i) &&
              d->packet.size() > h->header_length && d->packet[h->header_length] == 0 && !p.replied) {
            p.replied = true;
            ++replies;
          }
        }
      }
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "peers %u initiations %llu cookie-replies %llu handshakes %llu replies %llu bad %llu seconds %.2f "
      "handshakes-per-second %.0f\n",
      n, static_cast<unsigned long long>(sent_init), static_cast<unsigned long long>(cookies),
      static_cast<unsigned long long>(handshakes), static_cast<unsigned long long>(replies),
      static_cast<unsigned long long>(bad), secs, static_cast<double>(handshakes) / secs);
  return replies == n ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 1 && a[0] == "--version") {
    std::printf("duet-loadgen %s\n", DUET_VERSION);
    return 0;
  }
  const bool help = a.size() == 1 && (a[0] == "--help" || a[0] == "-h");
  if (!crypto_init()) return 1;
  try {
    if (a.size() >= 3 && a[0] == "peers")
      return print_peers(static_cast<std::uint32_t>(std::stoul(a[1])), std::stoull(a[2]));
    if (a.size() >= 3 && a[0] == "key") {
      const auto k = peer_private(std::stoull(a[2]), static_cast<std::uint32_t>(std::stoul(a[1])));
      std::printf("%s\n", key_to_base64(k).c_str());
      return 0;
    }
    if (!a.empty() && a[0] == "run") {
      const int rc = run(a);
      if (rc != 2) return rc;
    }
  } catch (const std::exception& e) {
    std::cerr << "duet-loadgen: " << e.what() << "\n";
  }
  (help ? std::cout : std::cerr)
      << "usage: duet-loadgen peers N SEED | duet-loadgen key I SEED\n"
         "       duet-loadgen run SERVER_ADDR:PORT SERVER_PUB N SEED TARGET [--sources A,B] [--rate R] [--timeout S]\n";
  return help ? 0 : 2;
}
