#!/usr/bin/env bash
# The data plane in one run, between two namespaces joined by a veth pair (iperf3):
#   - ceilings: raw veth (TCP), raw UDP with 1420-byte datagrams, one per system call;
#   - duetd over UDP with every offload, with none, and with each kind alone; duetd over
#     TCP with and without offloads; wireguard-go and OpenVPN (UDP, TCP) when installed;
#   - packets per second with 64-byte inner UDP packets (duetd, wireguard-go);
#   - latency under load: ping through the tunnel while iperf3 fills it.
# Each throughput case runs RUNS times (default 3) for SECONDS (default 5): min/median/max,
# CPU seconds per gigabit of the tunnel's processes, ratios. Root only; everything is
# deleted on exit. Usage: bench/throughput.sh BUILD_DIR [RUNS] [SECONDS]
# BENCH_CASES='duetd udp all' (a regular expression) runs only the matching cases;
# DUETD_EXTRA='crypto-threads 1' adds a line to both duetd configurations.
set -u
build=${1:-build} runs=${2:-3} secs=${3:-5}
duetd=$build/daemon/duetd duetctl=$build/daemon/duetctl
only=${BENCH_CASES:-.}
p=tp$$ A=${p}_a B=${p}_b
dir=$(mktemp -d)
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
trap 'stop; ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; rm -rf "$dir"' EXIT
[[ $(id -u) -eq 0 ]] || { echo "needs root"; exit 1; }
command -v iperf3 >/dev/null || { echo "needs iperf3"; exit 1; }
command -v python3 >/dev/null || { echo "needs python3 (reads iperf3's JSON)"; exit 1; }
wanted() { [[ $1 =~ $only ]]; }

ip netns add $A; ip netns add $B
ip link add ${p}a type veth peer name ${p}b
ip link set ${p}a netns $A; ip link set ${p}b netns $B
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A link set ${p}a up; ip -n $B link set ${p}b up
ip -n $A addr add 198.18.150.1/24 dev ${p}a; ip -n $B addr add 198.18.150.2/24 dev ${p}b
"$duetd" genkey > "$dir/a.key"; "$duetd" genkey > "$dir/b.key"
apub=$("$duetd" pubkey < "$dir/a.key"); bpub=$("$duetd" pubkey < "$dir/b.key")

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"  # iperf_rate, stats, median
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # clock ticks
measure() {  # measure SERVER_IP IPERF_ARGS -- [PIDS...] -> "Mbit/s packets/s retransmit% cpu_seconds"
  local ip=$1 args=$2; shift 3
  local before=0 after=0 pid
  for pid in "$@"; do before=$((before + $(cpu_of "$pid"))); done
  # shellcheck disable=SC2086
  local rate; rate=$(ip netns exec $A iperf3 -c "$ip" -t "$secs" $args -J 2>/dev/null | iperf_rate)
  for pid in "$@"; do after=$((after + $(cpu_of "$pid"))); done
  echo "$rate $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}')"
}

declare -A results pps cpu retr
order=()
iperf_server() {  # one iperf3 server per path, up before the first run and gone after the last
  rm -f "$dir/iperf.pid"
  ip netns exec $B iperf3 -s -D -I "$dir/iperf.pid" >/dev/null 2>&1
  for _ in $(seq 1 50); do ip netns exec $B ss -ltn | grep -q ':5201 ' && break; sleep 0.1; done
}
iperf_server_stop() {
  kill "$(cat "$dir/iperf.pid" 2>/dev/null)" 2>/dev/null
  for _ in $(seq 1 50); do ip netns exec $B ss -ltn | grep -q ':5201 ' || break; sleep 0.1; done
}
run_case() {  # run_case NAME SERVER_IP IPERF_ARGS [PIDS...]
  local name=$1 ip=$2 args=$3; shift 3
  local i r
  order+=("$name")
  echo "  $name ..." >&2
  iperf_server
  for i in $(seq 1 "$runs"); do
    # A pause between runs: through a TCP tunnel the iperf3 server is still finishing the
    # last test for a few tens of ms after its client exits, and refuses (RST) a client that
    # comes straight back.
    sleep 1
    r=$(measure "$ip" "$args" -- "$@")
    read -r mbit pkts rt c <<<"$r"
    results[$name]+="$mbit "; pps[$name]+="$pkts "; cpu[$name]+="$c "; retr[$name]+="$rt "
  done
  iperf_server_stop
}
# Latency under load: 200 pings 20 ms apart while iperf3 (one TCP stream) fills the path.
declare -A latency
latency_case() {  # latency_case NAME SERVER_IP
  local name=$1 ip=$2 idle loaded
  echo "  latency $name ..." >&2
  idle=$(ip netns exec $A ping -c 50 -i 0.02 -q "$ip" 2>/dev/null | awk -F/ '/rtt/{print $5}')
  iperf_server
  ip netns exec $A iperf3 -c "$ip" -t 6 >/dev/null 2>&1 &
  sleep 1
  loaded=$(ip netns exec $A ping -c 200 -i 0.02 -q "$ip" 2>/dev/null | awk -F/ '/rtt/{print $5 " " $6}')
  wait $! 2>/dev/null
  iperf_server_stop
  latency[$name]="${idle:--} ${loaded:-- -}"
}

start_duetd() {  # start_duetd PROTO OFFLOAD: both ends up and pinging, pids in ap/bp
  printf 'mode server\nproto %s\ndev duetb\nverb 1\noffload %s\nprivate-key %s\npeer %s 198.18.151.1/32\nifconfig 198.18.151.2/24\ncontrol-socket %s/b.sock\n' \
    "$1" "$2" "$dir/b.key" "$apub" "$dir" > "$dir/b.conf"
  echo "${DUETD_EXTRA:-}" >> "$dir/b.conf"
  printf 'mode client\nremote 198.18.150.2 1194 %s\ndev dueta\nverb 1\noffload %s\nprivate-key %s\npeer %s 198.18.151.0/24\nifconfig 198.18.151.1/24\ncontrol-socket %s/a.sock\n' \
    "$1" "$2" "$dir/a.key" "$bpub" "$dir" > "$dir/a.conf"
  echo "${DUETD_EXTRA:-}" >> "$dir/a.conf"
  ip netns exec $B "$duetd" --config "$dir/b.conf" > "$dir/b.log" 2>&1 & bp=$!; pids+=($bp)
  ip netns exec $A "$duetd" --config "$dir/a.conf" > "$dir/a.log" 2>&1 & ap=$!; pids+=($ap)
  for _ in $(seq 1 30); do ip netns exec $A ping -c 1 -W 1 198.18.151.2 >/dev/null 2>&1 && break; sleep 0.2; done
}
status_lines() {  # what duetctl says about the data path of both ends
  for side in a b; do
    "$duetctl" status --socket "$dir/$side.sock" 2>/dev/null | grep -E 'offloads|batching|written in place|crypto|backpressure' | sed "s/^ */    $side: /"
  done
}

echo "measuring ($runs runs of $secs s each):" >&2
wanted "raw veth" && run_case "raw veth" 198.18.150.2 ""
wanted "raw UDP" && run_case "raw UDP, 1420-byte datagrams" 198.18.150.2 "-u -b 0 -l 1420"

declare -A statuses
for spec in "udp all" "udp none" "udp tun" "udp gso,gro" "tcp all" "tcp none"; do
  read -r proto off <<<"$spec"
  name="duetd $proto, offload $off"
  extra=no; [[ $spec == "udp all" ]] && { wanted "duetd pps" || wanted "latency"; } && extra=yes
  [[ $spec == "tcp all" ]] && wanted "latency" && extra=yes
  wanted "$name" || [[ $extra == yes ]] || continue
  start_duetd "$proto" "$off"
  wanted "$name" && run_case "$name" 198.18.151.2 "" "$ap" "$bp"
  statuses[$name]=$(status_lines)  # before the small-packet cases dilute the averages
  if [[ $extra == yes ]]; then
    [[ $proto == udp ]] && wanted "duetd pps" && run_case "duetd udp, 64-byte packets" 198.18.151.2 "-u -b 0 -l 64" "$ap" "$bp"
    wanted "latency" && latency_case "duetd $proto" 198.18.151.2
  fi
  stop
done

if command -v wireguard-go >/dev/null && wanted "wireguard-go"; then
  ip netns exec $A wireguard-go -f wga$p > /dev/null 2>&1 & ap=$!; pids+=($ap)
  ip netns exec $B wireguard-go -f wgb$p > /dev/null 2>&1 & bp=$!; pids+=($bp)
  for _ in $(seq 1 50); do [[ -S /var/run/wireguard/wga$p.sock && -S /var/run/wireguard/wgb$p.sock ]] && break; sleep 0.1; done
  ip netns exec $B wg set wgb$p private-key "$dir/b.key" listen-port 51820 peer "$apub" allowed-ips 198.18.152.1/32
  ip netns exec $A wg set wga$p private-key "$dir/a.key" peer "$bpub" allowed-ips 198.18.152.0/24 endpoint 198.18.150.2:51820
  ip -n $A addr add 198.18.152.1/24 dev wga$p; ip -n $A link set wga$p up
  ip -n $B addr add 198.18.152.2/24 dev wgb$p; ip -n $B link set wgb$p up
  for _ in $(seq 1 30); do ip netns exec $A ping -c 1 -W 1 198.18.152.2 >/dev/null 2>&1 && break; sleep 0.2; done
  run_case "wireguard-go" 198.18.152.2 "" "$ap" "$bp"
  run_case "wireguard-go, 64-byte packets" 198.18.152.2 "-u -b 0 -l 64" "$ap" "$bp"
  latency_case "wireguard-go" 198.18.152.2
  stop
fi

if command -v openvpn >/dev/null && command -v openssl >/dev/null && wanted "openvpn"; then
  # TLS in peer-to-peer mode with ChaCha20-Poly1305 on the data channel (OpenVPN's default
  # AEADs; no DCO module on this kernel, so all of it in user space).
  (cd "$dir" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
     -subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null &&
   for who in a b; do
     openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$who" -keyout $who.ovpn.key -out $who.csr 2>/dev/null &&
     openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out $who.crt 2>/dev/null
   done)
  for proto in udp tcp; do
    common="--dev tun --verb 1 --data-ciphers CHACHA20-POLY1305 --ca $dir/ca.crt --dh none --ping 1"
    if [[ $proto == udp ]]; then sp=udp cp=udp; else sp=tcp-server cp=tcp-client; fi
    # shellcheck disable=SC2086
    ip netns exec $B openvpn $common --proto $sp --lport 1195 --tls-server --cert "$dir/b.crt" --key "$dir/b.ovpn.key" \
      --ifconfig 198.18.153.2 198.18.153.1 > "$dir/ovpn-b.log" 2>&1 & bp=$!; pids+=($bp)
    # shellcheck disable=SC2086
    ip netns exec $A openvpn $common --proto $cp --remote 198.18.150.2 1195 --tls-client --cert "$dir/a.crt" --key "$dir/a.ovpn.key" \
      --ifconfig 198.18.153.1 198.18.153.2 > "$dir/ovpn-a.log" 2>&1 & ap=$!; pids+=($ap)
    for _ in $(seq 1 50); do ip netns exec $A ping -c 1 -W 1 198.18.153.2 >/dev/null 2>&1 && break; sleep 0.2; done
    run_case "openvpn $proto" 198.18.153.2 "" "$ap" "$bp"
    stop
  done
fi

echo
echo "| path | min | median | max (Mbit/s) | CPU s per Gbit (median) | inner TCP retransmitted, % of segments (median) |"
echo "|---|---:|---:|---:|---:|---:|"
declare -A med
for name in "${order[@]}"; do
  [[ $name == *64-byte* ]] && continue
  read -r lo md hi <<<"$(stats "${results[$name]}")"
  med[$name]=$md
  c=$(stats "${cpu[$name]}" | awk '{print $2}')
  cpg=$(awk -v c="$c" -v m="$md" -v s="$secs" 'BEGIN{ if (m > 0 && c > 0) printf "%.2f", c / (m * s / 1000); else print "-" }')
  rt=$(median "${retr[$name]}")
  echo "| $name | $lo | $md | $hi | $cpg | $rt |"
done
if [[ -n ${pps["duetd udp, 64-byte packets"]:-}${pps["wireguard-go, 64-byte packets"]:-} ]]; then
  echo
  echo "| 64-byte inner UDP packets | min | median | max (packets/s received) |"
  echo "|---|---:|---:|---:|"
  for name in "duetd udp, 64-byte packets" "wireguard-go, 64-byte packets"; do
    [[ -n ${pps[$name]:-} ]] || continue
    read -r lo md hi <<<"$(stats "${pps[$name]}")"
    med[$name]=$md
    echo "| ${name%, 64-byte packets} | $lo | $md | $hi |"
  done
fi
if [[ -n ${latency[*]+set} ]]; then
  echo
  echo "| ping through the tunnel (ms) | idle, average | under load, average | under load, max |"
  echo "|---|---:|---:|---:|"
  for name in "duetd udp" "duetd tcp" "wireguard-go"; do
    [[ -n ${latency[$name]:-} ]] || continue
    read -r idle avg max <<<"${latency[$name]}"
    echo "| $name | $idle | $avg | $max |"
  done
fi
echo
ratio() { awk -v a="${med[$1]:-0}" -v b="${med[$2]:-0}" -v n="$1 / $2" 'BEGIN{ if (a > 0 && b > 0) printf "%s: %.2f\n", n, a/b }'; }
ratio "duetd udp, offload all" "wireguard-go"
ratio "duetd udp, offload all" "raw UDP, 1420-byte datagrams"
ratio "duetd udp, offload all" "duetd udp, offload none"
ratio "duetd tcp, offload all" "openvpn tcp"
ratio "duetd tcp, offload all" "duetd udp, offload all"
ratio "duetd tcp, offload all" "wireguard-go"
ratio "duetd udp, offload all" "openvpn udp"
ratio "duetd udp, 64-byte packets" "wireguard-go, 64-byte packets"
if [[ -n ${statuses[*]+set} ]]; then
  echo
  echo "duetctl status after each duetd case (a: client, b: server):"
  for name in "${order[@]}"; do
    [[ -n ${statuses[$name]:-} ]] || continue
    echo "  $name"
    echo "${statuses[$name]}"
  done
fi
