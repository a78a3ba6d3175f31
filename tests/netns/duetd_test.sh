#!/usr/bin/env bash
# duetd between network namespaces, run as a user would run it.
#
#   client ns                    router ns                     server ns
#   eth0 198.18.130.2 ────── eth0 198.18.130.1               
#        fd00:130::2               fd00:130::1
#                                  eth1 198.18.131.1 ────── eth0 198.18.131.2
#                                       fd00:131::1               fd00:131::2
#   duet0 198.18.140.2/24  ═══════ tunnel ═══════════════  duet0 198.18.140.1/24
#
# Each case starts both daemons, pings through the tunnel, and stops them. The last
# case blackholes the server's IPv6 address on the router: a client given both
# addresses must get through over IPv4 without waiting for a timeout.
# Usage: duetd_test.sh PATH/TO/duetd PATH/TO/duetctl   (root; every namespace is deleted on exit)
set -u
duetd=$1 duetctl=$2
p=dd$$
C=${p}_c R=${p}_r S=${p}_s
dir=$(mktemp -d)
pids=()
stop_daemons() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
cleanup() { stop_daemons; for ns in $C $R $S; do ip netns del "$ns" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
n() { echo "[+] $*"; "$@"; }
c() { n ip netns exec $C "$@"; }
r() { n ip netns exec $R "$@"; }
s() { n ip netns exec $S "$@"; }

[[ $(id -u) -eq 0 ]] || { echo "0 passed, 1 failed"; echo "needs root (network namespaces)"; exit 1; }

for ns in $C $R $S; do n ip netns add "$ns"; n ip -n "$ns" link set lo up; done
n ip link add ${p}c type veth peer name ${p}r0
n ip link add ${p}s type veth peer name ${p}r1
n ip link set ${p}c netns $C; n ip link set ${p}r0 netns $R
n ip link set ${p}s netns $S; n ip link set ${p}r1 netns $R
c ip link set ${p}c name eth0 up; s ip link set ${p}s name eth0 up
r ip link set ${p}r0 name eth0 up; r ip link set ${p}r1 name eth1 up
c ip addr add 198.18.130.2/24 dev eth0; c ip addr add fd00:130::2/64 dev eth0 nodad
r ip addr add 198.18.130.1/24 dev eth0; r ip addr add fd00:130::1/64 dev eth0 nodad
r ip addr add 198.18.131.1/24 dev eth1; r ip addr add fd00:131::1/64 dev eth1 nodad
s ip addr add 198.18.131.2/24 dev eth0; s ip addr add fd00:131::2/64 dev eth0 nodad
c ip route add default via 198.18.130.1; c ip -6 route add default via fd00:130::1
s ip route add default via 198.18.131.1; s ip -6 route add default via fd00:131::1
r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

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

passed=0 failed=0
case_() {  # case_ NAME EXPECTED_LOG_PATTERN REMOTE_LINE...
  local name=$1 pattern=$2; shift 2
  { printf 'mode client\ndev duet0\nverb 4\nkeepalive 2 10\nconnect-timeout 10\n'
    printf 'private-key %s\npeer %s 198.18.140.0/24\nifconfig 198.18.140.2/24\n' "$dir/client.key" "$spub"
    printf 'control-socket %s\n' "$dir/client.sock"
    printf '%s\n' "$@"; } > "$dir/client.conf"
  ip netns exec $S "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & pids+=($!)
  ip netns exec $C "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & pids+=($!)
  local ok=0 start=$SECONDS
  for _ in $(seq 1 20); do
    if ip netns exec $C ping -c 1 -W 1 198.18.140.1 >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  local status="" server_status="" json=""
  if [[ $ok -eq 1 ]]; then
    status=$(ip netns exec $C "$duetctl" status --socket "$dir/client.sock")
    json=$(ip netns exec $C "$duetctl" status --json --socket "$dir/client.sock")
    server_status=$(ip netns exec $S "$duetctl" status --socket "$dir/server.sock")
  fi
  if [[ $ok -eq 1 ]] && grep -qE "$pattern" "$dir/client.log" \
     && grep -q "latest handshake: [0-9]* seconds ago" <<<"$status" && grep -q '"rx_bytes": [1-9]' <<<"$json" \
     && grep -q "listening: 0.0.0.0:1194/udp, \[::\]:1194/udp, 0.0.0.0:1194/tcp, \[::\]:1194/tcp" <<<"$server_status"; then
    echo "ok   $name (ping through the tunnel after $((SECONDS - start)) s; duetctl status agrees)"; passed=$((passed + 1))
  else
    echo "FAIL $name"; failed=$((failed + 1))
    echo "--- client log"; tail -n 20 "$dir/client.log"; echo "--- server log"; tail -n 20 "$dir/server.log"
    echo "--- duetctl status (client)"; echo "$status"; echo "--- duetctl status (server)"; echo "$server_status"
  fi
  stop_daemons
}

case_ "udp over IPv4" "connected to 198.18.131.2:1194/udp" "remote 198.18.131.2 1194 udp"
case_ "udp over IPv6" "connected to \[fd00:131::2\]:1194/udp" "remote fd00:131::2 1194 udp"
case_ "tcp over IPv4" "connected to 198.18.131.2:1194/tcp" "remote 198.18.131.2 1194 tcp"
case_ "tcp over IPv6" "connected to \[fd00:131::2\]:1194/tcp" "remote fd00:131::2 1194 tcp"
r ip -6 route add blackhole fd00:131::2/128
case_ "dual stack, IPv6 blackholed: over IPv4 at once" "connected to 198.18.131.2:1194/udp over IPv4 after [0-9]{1,3} ms" \
  "remote fd00:131::2 1194 udp" "remote 198.18.131.2 1194 udp"
r ip -6 route del blackhole fd00:131::2/128

# duetd with a stock wireguard-go on the other side, each in each role (plain UDP:
# the same WireGuard messages on the wire).
wg_case() {  # wg_case NAME NS_OF_WIREGUARD_GO
  local name=$1 wgns=$2
  rm -f "$dir/wg.log"
  # wireguard-go's control socket is global (/var/run/wireguard/NAME.sock): a unique name.
  local wgif=wg$p
  ip netns exec "$wgns" wireguard-go -f "$wgif" > "$dir/wg.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 50); do ip -n "$wgns" link show "$wgif" >/dev/null 2>&1 && break; sleep 0.1; done
  if [[ $wgns == "$S" ]]; then
    s wg set "$wgif" private-key "$dir/server.key" listen-port 1194 peer "$cpub" allowed-ips 198.18.140.2/32
    s ip addr add 198.18.140.1/24 dev "$wgif"; s ip link set "$wgif" up
    { printf 'mode client
dev duet0
verb 4
keepalive 2 30
'
      printf 'private-key %s
peer %s 198.18.140.0/24
ifconfig 198.18.140.2/24
remote 198.18.131.2 1194 udp
' "$dir/client.key" "$spub"; } > "$dir/client.conf"
    ip netns exec $C "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & pids+=($!)
  else
    ip netns exec $S "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & pids+=($!)
    c wg set "$wgif" private-key "$dir/client.key" peer "$spub" allowed-ips 198.18.140.0/24 endpoint 198.18.131.2:1194
    c ip addr add 198.18.140.2/24 dev "$wgif"; c ip link set "$wgif" up
  fi
  local ok=0 start=$SECONDS
  for _ in $(seq 1 20); do
    if ip netns exec $C ping -c 1 -W 1 198.18.140.1 >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  if [[ $ok -eq 1 ]]; then
    echo "ok   $name (ping through the tunnel after $((SECONDS - start)) s)"; passed=$((passed + 1))
  else
    echo "FAIL $name"; failed=$((failed + 1))
    for f in client server wg; do [[ -f $dir/$f.log ]] && { echo "--- $f log"; tail -n 15 "$dir/$f.log"; }; done
  fi
  stop_daemons
}

if command -v wireguard-go >/dev/null && command -v wg >/dev/null; then
  wg_case "duetd client, wireguard-go server" "$S"
  wg_case "wireguard-go client, duetd server" "$C"
else
  echo "FAIL wireguard-go and wireguard-tools are not installed"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
