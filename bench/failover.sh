#!/usr/bin/env bash
# Failover on real namespaces: a client pings the server's tunnel address every 20 ms while
# the router blackholes the server's IPv6 address (the path the client is on) at 3 s and
# lets it through again at 13 s. Reported per tunnel:
#   outage   how long no ping was answered after the blackhole (ms),
#   back     how long after the heal the client's path was IPv6 again (duetd only: its log),
#   idle     bytes per second the client's interface sends for an idle session (30 s,
#            from 2 s after connecting).
# Tunnels: duetd over UDP and over TCP (default settings), duetd as a client of
# wireguard-go (UDP; wireguard-go follows the roaming client), and OpenVPN 2.6 with a
# typical `keepalive 10 60` when installed (it takes minutes: BENCH_OPENVPN=0 skips it).
# The links are veths without delay (the testbed's link emulator is not in this script).
# Root only; everything is deleted on exit (BENCH_KEEP=1 keeps the logs).
# Usage: bench/failover.sh BUILD_DIR; BENCH_CASES='openvpn' (a regular expression over
# duetd, wireguard-go, openvpn) runs only those.
set -u
build=${1:-build}
only=${BENCH_CASES:-.}
wanted() { [[ $1 =~ $only ]]; }
duetd=$(realpath "$build/daemon/duetd")
here=$(cd "$(dirname "$0")" && pwd)
p=fo$$
. "$here/../testbed/lib.sh"
dir=$(mktemp -d)
trap 'tb_cleanup; [[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$dir"' EXIT
[[ $(id -u) -eq 0 ]] || { echo "needs root"; exit 1; }
exec 3>&1 1>"$dir/setup.log" 2>&1   # the namespaces' commands go to a log; results to stdout
say() { echo "$@" >&3; }
tb_topology || { say "cannot make the namespaces"; exit 1; }
v6=fd00:131::2 v4=198.18.131.2 tunnel=198.18.140.1
# Link-local addresses stay tentative for a second or two after a veth comes up, and IPv6
# does not work until then: a client started at once would begin on IPv4.
for _ in $(seq 1 50); do ip netns exec "$C" ping -6 -c 1 -W 1 "$v6" >/dev/null 2>&1 && break; sleep 0.1; done

# ping_gap SECONDS_BEFORE_CUT: pings every 20 ms for 18 s; blackholes IPv6 at 3 s, heals at
# 13 s. Prints the longest run of unanswered pings after the cut, in ms.
run_pings() {
  ip netns exec "$C" ping -D -n -i 0.02 -W 1 -w 18 "$tunnel" > "$dir/ping.txt" 2>&1 &
  local pid=$!
  sleep 3; cut_at=$(date +%s.%N)
  r ip -6 route add blackhole "$v6/128"
  sleep 10; heal_at=$(date +%s.%N)
  r ip -6 route del blackhole "$v6/128"
  wait "$pid"
}
outage_ms() {  # the longest gap between answered pings after the cut
  python3 - "$dir/ping.txt" "$cut_at" <<'PY'
import re, sys
cut = float(sys.argv[2])
times = [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", open(sys.argv[1]).read(), re.M)]
after = [t for t in times if t > cut]
before = [t for t in times if t <= cut]
if not after or not before: print("-"); sys.exit()
gaps = [b - a for a, b in zip([before[-1]] + after, after)]
print("%.0f" % (1000 * max(gaps)))
PY
}
idle_bytes_per_s() {  # bytes/s leaving the client's eth0 over 30 s of an idle session
  local a b
  # From 2 s after the tunnel works: a duetd client checks its standby once, a second after
  # connecting (74 bytes over UDP; over TCP a short connection of its own), and
  # never again while idle: the steady cost is what is measured.
  sleep 2
  a=$(ip netns exec "$C" cat /sys/class/net/eth0/statistics/tx_bytes)
  sleep 30
  b=$(ip netns exec "$C" cat /sys/class/net/eth0/statistics/tx_bytes)
  echo $(( (b - a) / 30 ))
}
moved_back_ms() {  # from the client's log: the first "moved back" after the heal
  python3 - "$1" "$heal_at" <<'PY'
import datetime, sys
heal = float(sys.argv[2])
for line in open(sys.argv[1]):
    if "moved back" in line:
        t = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if t > heal: print("%.0f" % (1000 * (t - heal))); sys.exit()
print("-")
PY
}
listening() {  # listening udp|tcp: until the server has its IPv6 socket for 1194
  local _
  for _ in $(seq 1 50); do
    ip netns exec "$S" ss -Hln --"$1" | grep -q '\[::\]:1194' && return 0
    sleep 0.1
  done
}
row() { say "$(printf '| %-34s | %9s | %9s | %8s |' "$@")"; }

say "# failover on namespaces, $(date -u +%F), $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
row "tunnel" "outage ms" "back ms" "idle B/s"
row "---" "---" "---" "---"

# --- duetd to duetd, UDP and TCP, default settings --------------------------------------
tb_server_conf "$dir" "$duetd"
s ip link set lo up
for proto in udp tcp; do
  wanted duetd || continue
  { printf 'mode client\ndev duet0\nverb 4\nprivate-key %s\npeer %s 198.18.140.0/24\n' "$dir/client.key" "$spub"
    printf 'ifconfig 198.18.140.2/24\nremote %s 1194 %s\nremote %s 1194 %s\n' "$v6" "$proto" "$v4" "$proto"; } > "$dir/client.conf"
  ip netns exec "$S" "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & tb_pids+=($!)
  listening "$proto"  # else the client's first IPv6 hello may find no socket and it starts on IPv4
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client-$proto.log" 2>&1 & tb_pids+=($!)
  tb_ping_tunnel || { row "duetd $proto" "no tunnel" "" ""; tb_stop; continue; }
  idle=$(idle_bytes_per_s)
  run_pings
  row "duetd $proto (defaults)" "$(outage_ms)" "$(moved_back_ms "$dir/client-$proto.log")" "$idle"
  tb_stop
done

# --- duetd as a client of wireguard-go ------------------------------------------------------
if wanted wireguard-go && command -v wireguard-go >/dev/null && command -v wg >/dev/null; then
  wg genkey > "$dir/wg.key"; wgpub=$(wg pubkey < "$dir/wg.key")
  ip netns exec "$S" env WG_PROCESS_FOREGROUND=1 wireguard-go wgfo > "$dir/wg.log" 2>&1 & tb_pids+=($!)
  for _ in $(seq 1 50); do ip -n "$S" link show wgfo >/dev/null 2>&1 && break; sleep 0.1; done
  s wg set wgfo private-key "$dir/wg.key" listen-port 51820 peer "$cpub" allowed-ips 198.18.140.2/32
  s ip addr add 198.18.140.1/24 dev wgfo; s ip link set wgfo up
  { printf 'mode client\ndev duet0\nverb 4\nprivate-key %s\npeer %s 198.18.140.0/24\n' "$dir/client.key" "$wgpub"
    printf 'ifconfig 198.18.140.2/24\nremote %s 51820 udp\nremote %s 51820 udp\n' "$v6" "$v4"; } > "$dir/client.conf"
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client-wg.log" 2>&1 & tb_pids+=($!)
  if tb_ping_tunnel; then
    idle=$(idle_bytes_per_s)
    run_pings
    row "duetd client, wireguard-go server" "$(outage_ms)" "$(moved_back_ms "$dir/client-wg.log")" "$idle"
  else
    row "duetd client, wireguard-go server" "no tunnel" "" ""
  fi
  tb_stop
  ip -n "$S" link del wgfo 2>/dev/null
fi

# --- OpenVPN 2.6, keepalive 10 60 -----------------------------------------------------------
if wanted openvpn && command -v openvpn >/dev/null && [[ ${BENCH_OPENVPN:-1} != 0 ]]; then
  openvpn --genkey secret "$dir/ovpn.key" 2>/dev/null || openvpn --genkey --secret "$dir/ovpn.key"
  common=(--dev tun --secret "$dir/ovpn.key" --cipher AES-256-CBC --auth SHA256 --keepalive 10 60 --verb 3)
  ip netns exec "$S" openvpn "${common[@]}" --proto udp6 --lport 1194 --float \
    --ifconfig 198.18.140.1 198.18.140.2 > "$dir/ovpn-server.log" 2>&1 & tb_pids+=($!)
  ip netns exec "$C" openvpn "${common[@]}" --proto udp --remote "$v6" 1194 --remote "$v4" 1194 --nobind \
    --ifconfig 198.18.140.2 198.18.140.1 > "$dir/ovpn-client.log" 2>&1 & tb_pids+=($!)
  if tb_ping_tunnel; then
    idle=$(idle_bytes_per_s)
    # OpenVPN needs ping-restart (60 s) and a reconnect: ping for longer.
    ip netns exec "$C" ping -D -n -i 0.1 -W 1 -w 100 "$tunnel" > "$dir/ping.txt" 2>&1 &
    pid=$!
    sleep 3; cut_at=$(date +%s.%N)
    r ip -6 route add blackhole "$v6/128"
    wait "$pid"
    r ip -6 route del blackhole "$v6/128"
    row "OpenVPN 2.6, keepalive 10 60" "$(outage_ms)" "-" "$idle"
  else
    row "OpenVPN 2.6, keepalive 10 60" "no tunnel" "" ""
  fi
  tb_stop
fi
say "(logs in $dir: deleted on exit unless BENCH_KEEP=1)"
