/* duet socket plugins: the C ABI, version 1.
 *
 * A plugin is a shared object loaded with dlopen() by the `plugin PATH [ARGS...]`
 * directive (and by `http-proxy` / `socks-proxy`, which load the plugins shipped with
 * duet). It supplies sockets to remotes that duet cannot reach directly: through a
 * proxy, typically.
 *
 * The plugin does no I/O of its own. It is a state machine over bytes ("sans-I/O"): the
 * host (duetd, or the simulator) opens the connection to the proxy on its own event loop,
 * hands the plugin every byte the proxy sends and writes every byte the plugin wants
 * sent. So a plugin can never block the event loop, runs unchanged in the deterministic
 * simulator, and its parser can be fuzzed directly. The host also does what a proxy user
 * expects of duet itself: it resolves the proxy's name, races the proxy's addresses
 * (Happy Eyeballs), bounds each attempt by connect-timeout and retries on failure.
 *
 * A stream socket ("CONNECT"):
 *   1. the host connects a TCP stream to the address from proxy();
 *   2. open() with the remote (a name the proxy resolves, or a literal address);
 *   3. loop: output() says what to send; the host sends it; feed() takes what came back:
 *      DUET_PLUGIN_MORE (wait for more), DUET_PLUGIN_DONE (the stream now reaches the
 *      remote; bytes after *consumed belong to the tunnel) or DUET_PLUGIN_FAILED (with an
 *      error code and a message; the host closes the stream and tries the next address);
 *   4. close() when the host is done with the connection (always called once).
 * A datagram socket (e.g. SOCKS5 UDP ASSOCIATE) is a stream handshake like the above
 * whose stream must stay open; after DONE, relay() names where datagrams go, wrap()
 * prefixes each datagram to the remote and unwrap() strips what comes back.
 *
 * Every function is called on the host's event loop thread; none may block. Strings are
 * NUL-terminated UTF-8. Error texts are written into caller buffers (truncated to fit)
 * and must never contain secrets (passwords, tokens).
 */
#ifndef DUET_PLUGIN_H
#define DUET_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DUET_PLUGIN_ABI_VERSION 1u

/* What a plugin can supply (duet_plugin.capabilities). */
#define DUET_PLUGIN_STREAM 1u   /* stream sockets (TCP tunnels) */
#define DUET_PLUGIN_DATAGRAM 2u /* datagram sockets (UDP tunnels) */

/* Results of feed(). */
#define DUET_PLUGIN_MORE 0
#define DUET_PLUGIN_DONE 1
#define DUET_PLUGIN_FAILED (-1)

/* Why a connection through the plugin failed: the host turns these into clear errors. */
enum duet_plugin_error {
  DUET_PLUGIN_E_MALFORMED = 1,     /* the proxy's reply is not the protocol (or lies about lengths) */
  DUET_PLUGIN_E_TOO_LARGE = 2,     /* the reply exceeds the plugin's size limit */
  DUET_PLUGIN_E_AUTH_REQUIRED = 3, /* the proxy wants credentials we do not have */
  DUET_PLUGIN_E_AUTH_FAILED = 4,   /* the proxy refused our credentials */
  DUET_PLUGIN_E_FORBIDDEN = 5,     /* the proxy's rules refuse this remote */
  DUET_PLUGIN_E_UNREACHABLE = 6,   /* the proxy could not reach the remote (network/host) */
  DUET_PLUGIN_E_REFUSED = 7,       /* the remote refused the proxy's connection */
  DUET_PLUGIN_E_TIMEOUT = 8,       /* the proxy timed out reaching the remote */
  DUET_PLUGIN_E_UNSUPPORTED = 9,   /* the proxy does not support what was asked */
  DUET_PLUGIN_E_PROXY_FAILED = 10, /* any other failure the proxy reported */
  DUET_PLUGIN_E_CLOSED = 11,       /* the proxy closed the connection mid-handshake */
  DUET_PLUGIN_E_CONFIG = 12        /* bad plugin arguments (create() only) */
};

/** The remote a connection is for. */
struct duet_plugin_target {
  const char* host; /**< a name, or an IPv4/IPv6 literal (IPv6 without brackets) */
  uint16_t port;    /**< the remote port */
  int datagram;     /**< 0: a stream (TCP tunnel); 1: datagrams (UDP tunnel) */
};

/** What a plugin exports: its name, what it can do, and the functions the host calls. */
struct duet_plugin {
  uint32_t abi_version;  /**< DUET_PLUGIN_ABI_VERSION the plugin was built against */
  const char* name;      /**< e.g. "http-proxy" */
  uint32_t capabilities; /**< DUET_PLUGIN_STREAM, DUET_PLUGIN_DATAGRAM, or both */

  /** An instance from the directive's arguments (argv[0] is the first argument after the
   * path). NULL on failure, with the reason in err. */
  void* (*create)(int argc, const char* const* argv, char* err, size_t err_size);
  /** Frees an instance create() made. */
  void (*destroy)(void* instance);

  /** The proxy the host must connect to: host (name or literal, IPv6 without brackets)
   * into a caller buffer, and port. 0 on success. */
  int (*proxy)(void* instance, char* host, size_t host_size, uint16_t* port);

  /** A connection's handshake state for `target`; NULL (with err) if it cannot be done. */
  void* (*open)(void* instance, const struct duet_plugin_target* target, char* err, size_t err_size);
  /** Copies up to `size` bytes the proxy should be sent now into `out`; returns how many
   * were copied (0: nothing to send). The host calls it until it returns 0, after open()
   * and after every feed(). */
  size_t (*output)(void* conn, uint8_t* out, size_t size);
  /** Bytes from the proxy, in order, each byte once. On MORE the plugin has taken all
   * `len` bytes (it keeps what it needs). On DONE, *consumed says how many of these bytes
   * ended the handshake: the rest is already tunnel data. On FAILED, sets *error (enum
   * duet_plugin_error) and a message. */
  int (*feed)(void* conn, const uint8_t* in, size_t len, size_t* consumed, int* error, char* err, size_t err_size);

  /* Datagrams (may be NULL without DUET_PLUGIN_DATAGRAM), valid after DONE: */
  /** Where to send wrapped datagrams (host literal into a buffer, port); 0 on success. */
  int (*relay)(void* conn, char* host, size_t host_size, uint16_t* port);
  /** Header + payload into out; returns the length, or 0 if out is too small. */
  size_t (*wrap)(void* conn, const uint8_t* payload, size_t len, uint8_t* out, size_t size);
  /** The payload's offset in a datagram from the relay, or -1 to drop it (malformed, or
   * not from the remote). */
  long (*unwrap)(void* conn, const uint8_t* in, size_t len);

  /** Frees a connection's state; called once per open() that succeeded. */
  void (*close)(void* conn);
};

/* The one symbol a plugin exports. `host_abi_version` is the host's
 * DUET_PLUGIN_ABI_VERSION; a plugin that cannot serve it returns NULL. The host refuses
 * a plugin whose abi_version differs from its own. */
const struct duet_plugin* duet_plugin_entry(uint32_t host_abi_version);
typedef const struct duet_plugin* (*duet_plugin_entry_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* DUET_PLUGIN_H */
