# Shared by the testbed scripts: three namespaces and a router between them.
#
#   client ns                    router ns                     server ns
#   eth0 198.18.130.2 ────── eth0 198.18.130.1
#        fd00:130::2               fd00:130::1
#                                  eth1 198.18.131.1 ────── eth0 198.18.131.2
#                                       fd00:131::1               fd00:131::2
#   (tunnel 198.18.140.2/24)                                 (tunnel 198.18.140.1/24)
#
# Source it, then call tb_topology. Namespace names carry the caller's PID ($p) and are
# deleted by tb_cleanup, which the caller traps on EXIT.
p=${p:-tb$$}
C=${p}_c R=${p}_r S=${p}_s
tb_pids=()
n() { echo "[+] $*"; "$@"; }
c() { n ip netns exec "$C" "$@"; }
r() { n ip netns exec "$R" "$@"; }
s() { n ip netns exec "$S" "$@"; }

tb_stop() { for pid in "${tb_pids[@]}"; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; tb_pids=(); }
tb_cleanup() { tb_stop; for ns in "$C" "$R" "$S"; do ip netns del "$ns" 2>/dev/null; done; }

tb_topology() {
  local ns
  for ns in "$C" "$R" "$S"; do
    if ip netns list | grep -qw "$ns"; then echo "namespace $ns exists: remove it with 'ip netns del $ns'"; return 1; fi
  done
  for ns in "$C" "$R" "$S"; do n ip netns add "$ns"; n ip -n "$ns" link set lo up; done
  n ip link add "${p}c" type veth peer name "${p}r0"
  n ip link add "${p}s" type veth peer name "${p}r1"
  n ip link set "${p}c" netns "$C"; n ip link set "${p}r0" netns "$R"
  n ip link set "${p}s" netns "$S"; n ip link set "${p}r1" netns "$R"
  c ip link set "${p}c" name eth0 up; s ip link set "${p}s" name eth0 up
  r ip link set "${p}r0" name eth0 up; r ip link set "${p}r1" name eth1 up
  c ip addr add 198.18.130.2/24 dev eth0; c ip addr add fd00:130::2/64 dev eth0 nodad
  r ip addr add 198.18.130.1/24 dev eth0; r ip addr add fd00:130::1/64 dev eth0 nodad
  r ip addr add 198.18.131.1/24 dev eth1; r ip addr add fd00:131::1/64 dev eth1 nodad
  s ip addr add 198.18.131.2/24 dev eth0; s ip addr add fd00:131::2/64 dev eth0 nodad
  c ip route add default via 198.18.130.1; c ip -6 route add default via fd00:130::1
  s ip route add default via 198.18.131.1; s ip -6 route add default via fd00:131::1
  r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# tb_server_conf DIR DUETD: keys in DIR, and DIR/server.conf (UDP and TCP on both families).
tb_server_conf() {
  local dir=$1 duetd=$2
  "$duetd" genkey > "$dir/server.key"; "$duetd" genkey > "$dir/client.key"
  spub=$("$duetd" pubkey < "$dir/server.key"); cpub=$("$duetd" pubkey < "$dir/client.key")
  cat > "$dir/server.conf" <<CONF
mode server
dev duet0
verb 4
private-key $dir/server.key
control-socket $dir/server.sock
peer $cpub 198.18.140.2/32
ifconfig 198.18.140.1/24
<listen>
proto udp
</listen>
<listen>
proto tcp
</listen>
CONF
}

# tb_client_conf DIR LINE...: DIR/client.conf with the given remote lines.
tb_client_conf() {
  local dir=$1; shift
  { printf 'mode client\ndev duet0\nverb 4\nkeepalive 2 10\nconnect-timeout 10\n'
    printf 'private-key %s\npeer %s 198.18.140.0/24\nifconfig 198.18.140.2/24\n' "$dir/client.key" "$spub"
    printf 'control-socket %s\n' "$dir/client.sock"
    printf '%s\n' "$@"; } > "$dir/client.conf"
}

# tb_ping_tunnel: true once the client reaches the server's tunnel address (up to ~25 s).
tb_ping_tunnel() {
  local _
  for _ in $(seq 1 20); do
    ip netns exec "$C" ping -c 1 -W 1 198.18.140.1 >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# tb_tinyproxy_conf DIR [BASICAUTH_LINE]: DIR/tinyproxy.conf, an HTTP CONNECT proxy on the
# router's client side (198.18.130.1:3128) that lets the client reach port 1194.
tb_tinyproxy_conf() {
  cat > "$1/tinyproxy.conf" <<CONF
User nobody
Group nogroup
Port 3128
Listen 198.18.130.1
Timeout 60
Allow 198.18.130.0/24
ConnectPort 1194
MaxClients 20
${2:-}
CONF
}

# tb_dante_conf DIR METHOD: DIR/danted.conf, a SOCKS5 proxy (CONNECT and UDP ASSOCIATE) on
# the router (198.18.130.1:1080, leaving from 198.18.131.1); METHOD none or username.
tb_dante_conf() {
  cat > "$1/danted.conf" <<CONF
logoutput: stderr
internal: 198.18.130.1 port = 1080
external: 198.18.131.1
socksmethod: $2
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 198.18.130.0/24 to: 0.0.0.0/0 }
socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 command: connect udpassociate udpreply }
CONF
}
