#!/usr/bin/env bash
# A big server in one run (root; everything is deleted on exit):
#
#   load ns  fd00:161:N::2 (N = 1..1000), 198.18.161.2 ──── server ns  fd00:161::1, 198.18.161.1
#                                                            duetd, TUN 198.19.255.254/16
#
#   - loading and checking a PEERS-peer configuration (duetd --test-config), and RSS of
#     duetd with 1 and with PEERS configured, idle peers;
#   - handshakes a second: duet-loadgen plays PEERS peers from 1000 IPv6 /64s (so the
#     per-source limit under load is not what is measured), duetd pinned to one core and
#     the load generator to the other; once with keepalives confirming the keys, once with
#     an ICMP echo through the tunnel from every peer; RSS once every peer holds keys;
#   - a SIGHUP reload of the file with one peer changed, and `duetctl status` times;
#   - iperf3 through duetd with PEERS configured peers against one configured peer.
# Usage: bench/scale.sh BUILD_DIR [PEERS]   (default 10000)
set -u
build=${1:-build} n=${2:-10000}
duetd=$build/daemon/duetd duetctl=$build/daemon/duetctl loadgen=$build/tests/duet-loadgen
p=sb$$ S=${p}_s L=${p}_l
dir=$(mktemp -d)
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
trap 'stop; ip netns del $S 2>/dev/null; ip netns del $L 2>/dev/null; rm -rf "$dir"' EXIT
[[ $(id -u) -eq 0 ]] || { echo "needs root"; exit 1; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

ip netns add "$S"; ip netns add "$L"
ip link add "${p}s" type veth peer name "${p}l"
ip link set "${p}s" netns "$S"; ip link set "${p}l" netns "$L"
for ns in "$S" "$L"; do ip -n "$ns" link set lo up; ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0; done
ip -n "$S" link set "${p}s" name eth0 up; ip -n "$L" link set "${p}l" name eth0 up
ip -n "$S" addr add 198.18.161.1/24 dev eth0; ip -n "$L" addr add 198.18.161.2/24 dev eth0
ip -n "$S" addr add fd00:161::1/48 dev eth0 nodad
sources=""
for i in $(seq 1 1000); do
  printf 'address add fd00:161:0:%x::2/48 dev eth0 nodad\n' "$i"
  sources+="${sources:+,}$(printf 'fd00:161:0:%x::2' "$i")"
done > "$dir/addrs"
ip -n "$L" -batch "$dir/addrs"
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

"$duetd" genkey > "$dir/server.key"; spub=$("$duetd" pubkey < "$dir/server.key")
head_conf() {
  printf 'mode server\nproto udp\ndev duet0\nverb 3\nprivate-key %s\ncontrol-socket %s\nifconfig 198.19.255.254/16\n' \
    "$dir/server.key" "$dir/server.sock"
}
{ head_conf; "$loadgen" peers 1 7; } > "$dir/one.conf"
{ head_conf; "$loadgen" peers "$n" 7; } > "$dir/many.conf"

t=$(date +%s%N); "$duetd" --test-config --no-resolve "$dir/many.conf" > /dev/null
echo "test-config of $n peers: $(ms "$t") ms ($(wc -c < "$dir/many.conf") bytes)"

start_server() {  # start_server CONF: duetd pinned to CPU 0, waits for its control socket
  rm -f "$dir/server.sock"
  local t; t=$(date +%s%N)
  ip netns exec "$S" taskset -c 0 "$duetd" --config "$1" > "$dir/server.log" 2>&1 & spid=$!; pids+=($spid)
  local _; for _ in $(seq 1 200); do [[ -S $dir/server.sock ]] && break; sleep 0.05; done
  startup_ms=$(ms "$t")
}
start_server "$dir/one.conf"; sleep 1; rss_one=$(rss "$spid"); stop
start_server "$dir/many.conf"; sleep 1; rss_many=$(rss "$spid")
echo "start-up with $n peers: $startup_ms ms (to the control socket)"
echo "RSS idle: 1 peer $rss_one KiB, $n peers $rss_many KiB: $(( (rss_many - rss_one) * 1024 / (n - 1) )) bytes per idle configured peer"

# Handshakes completed so far, from the summary (the JSON is 3 MB at 10 000 peers).
hs() { ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock" | grep -o '[0-9]* in all' | head -1 | tr -dc 0-9; }
# handshake_phase LABEL [loadgen options]: PEERS new peers offered at RATE initiations a
# second (each once; WireGuard's 5 s resend after), duetd's CPU time per handshake.
handshake_phase() {
  local label=$1; shift
  local c h0 u0 s0 h1 u1 s1 perf_pid=
  h0=$(hs)  # the status call outside the measured time
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$spid/stat")  # user, system clock ticks
  [[ -n ${PERF_OUT:-} ]] && { perf record -g -o "$PERF_OUT.$label" -p "$spid" > /dev/null 2>&1 & perf_pid=$!; }
  ip netns exec "$L" taskset -c 1 "$loadgen" run "[fd00:161::1]:1194" "$spub" "$n" 7 198.19.255.254 --sources "$sources" \
    --rate "${RATE:-5000}" --timeout 120 "$@" > "$dir/loadgen.out" 2> "$dir/loadgen.err"
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$spid/stat")
  h1=$(hs)
  [[ -n $perf_pid ]] && kill "$perf_pid" 2>/dev/null
  c=$((u1 - u0 + s1 - s0))
  echo "$label: load generator (offered ${RATE:-5000}/s): $(cat "$dir/loadgen.out")"
  echo "  duetd CPU: user $((u1 - u0)) ticks, system $((s1 - s0)) ticks;" \
    "$((h1 - h0)) handshakes in $(awk -v t=$c -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}') CPU s:" \
    "$(awk -v h=$((h1 - h0)) -v t=$c -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", h/(t/hz)}') handshakes per CPU second"
}
# First the handshakes alone (each confirmed by a keepalive), then again from new sockets
# with every peer's ICMP echo through the TUN and back (the keys replaced by new ones).
handshake_phase handshakes --keepalive
handshake_phase "handshakes + echo"
sleep 1
rss_live=$(rss "$spid")
echo "RSS with every peer's keys: $rss_live KiB: $(( (rss_live - rss_one) * 1024 / n )) bytes per peer with live keys"
t=$(date +%s%N); ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock" > "$dir/status.txt"
echo "duetctl status (summary): $(ms "$t") ms"; grep "peers:\|under load" "$dir/status.txt" | sed 's/^ */  /'
t=$(date +%s%N); ip netns exec "$S" "$duetctl" status --json --socket "$dir/server.sock" > "$dir/status.json"
echo "duetctl status --json: $(ms "$t") ms, $(wc -c < "$dir/status.json") bytes"
# A reload that changes one peer (its allowed IP): the other sessions stay.
sed -i '0,/^peer \(\S*\) 198.19.0.1\/32/s//peer \1 198.19.0.1\/32,fd00:19::1\/128/' "$dir/many.conf"
before=$(grep -c "" "$dir/server.log")
t=$(date +%s%N); kill -HUP "$spid"
for _ in $(seq 1 400); do grep -q "peers: .* kept" "$dir/server.log" && break; sleep 0.01; done
echo "reload with one peer changed: $(ms "$t") ms ($(grep -o 'peers: [0-9]* kept, [0-9]* added, [0-9]* removed' "$dir/server.log" | tail -1))"
ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock" | grep "peers:" | sed 's/^ */  after the reload: /'
stop

# iperf3 through the tunnel: one client (peer 0's key) against 1 and against n configured peers.
ckey=$("$loadgen" key 0 7)
printf 'mode client\ndev duet9\nverb 2\nprivate-key %s\npeer %s 198.19.0.0/16\nifconfig 198.19.0.1/16\nremote 198.18.161.1 1194 udp\ncontrol-socket %s\n' \
  "$ckey" "$spub" "$dir/client.sock" > "$dir/client.conf"
for conf in one many; do
  start_server "$dir/$conf.conf"
  ip netns exec "$L" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 50); do ip netns exec "$L" ping -c1 -W1 198.19.255.254 >/dev/null 2>&1 && break; sleep 0.2; done
  ip netns exec "$S" iperf3 -s -D >/dev/null 2>&1; sleep 0.3
  rates=""
  for _ in 1 2 3; do
    r=$(ip netns exec "$L" iperf3 -c 198.19.255.254 -t 5 -J 2>/dev/null | grep -A6 '"sum_received"' | grep '"bits_per_second"' \
        | head -1 | tr -dc '0-9.' | awk '{printf "%d", $1 / 1e6}')
    rates+="${rates:+ }$r"; sleep 1
  done
  echo "iperf3 through duetd, $conf configured peer(s): $rates Mbit/s"
  pkill -f "iperf3 -s" 2>/dev/null
  stop
done
