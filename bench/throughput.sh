#!/usr/bin/env bash
# Throughput in one run: iperf3 (one TCP stream) between two namespaces joined by a veth
# pair, over the raw veth, through duetd over UDP, through duetd over TCP, and through
# wireguard-go; each RUNS times (default 3) for SECONDS (default 5); min/median/max,
# ratios, and CPU seconds per gigabit of the tunnel processes. Root only; everything
# is deleted on exit. Usage: bench/throughput.sh BUILD_DIR [RUNS] [SECONDS]
set -u
build=${1:-build} runs=${2:-3} secs=${3:-5}
duetd=$build/daemon/duetd
p=tp$$ A=${p}_a B=${p}_b
dir=$(mktemp -d)
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
trap 'stop; ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; rm -rf "$dir"' EXIT
[[ $(id -u) -eq 0 ]] || { echo "needs root"; exit 1; }
command -v iperf3 >/dev/null || { echo "needs iperf3"; exit 1; }

ip netns add $A; ip netns add $B
ip link add ${p}a type veth peer name ${p}b
ip link set ${p}a netns $A; ip link set ${p}b netns $B
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A link set ${p}a up; ip -n $B link set ${p}b up
ip -n $A addr add 198.18.150.1/24 dev ${p}a; ip -n $B addr add 198.18.150.2/24 dev ${p}b
"$duetd" genkey > "$dir/a.key"; "$duetd" genkey > "$dir/b.key"
apub=$("$duetd" pubkey < "$dir/a.key"); bpub=$("$duetd" pubkey < "$dir/b.key")

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # clock ticks
measure() {  # measure SERVER_IP [PIDS...] -> "Mbit/s cpu_seconds"
  local ip=$1; shift
  local before=0 after=0 pid
  for pid in "$@"; do before=$((before + $(cpu_of "$pid"))); done
  local out; out=$(ip netns exec $A iperf3 -c "$ip" -t "$secs" -J 2>/dev/null)
  if grep -q '"error"' <<<"$out"; then echo "iperf3 to $ip: $(grep '"error"' <<<"$out" | head -1)" >&2; fi
  for pid in "$@"; do after=$((after + $(cpu_of "$pid"))); done
  local bps; bps=$(grep -A6 '"sum_received"' <<<"$out" | grep '"bits_per_second"' | head -1 | tr -dc '0-9.')
  echo "$(awk -v b="${bps:-0}" 'BEGIN{printf "%.0f", b/1e6}') $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}')"
}

declare -A results cpu
run_case() {  # run_case NAME SERVER_IP [PIDS...]
  local name=$1 ip=$2; shift 2
  local i r
  # One iperf3 server per path, up before the first run and gone after the last.
  rm -f "$dir/iperf.pid"
  ip netns exec $B iperf3 -s -D -I "$dir/iperf.pid" >/dev/null 2>&1
  for i in $(seq 1 50); do ip netns exec $B ss -ltn | grep -q ':5201 ' && break; sleep 0.1; done
  for i in $(seq 1 "$runs"); do
    # A pause between runs: through a TCP tunnel the iperf3 server is still finishing the
    # last test for a few tens of ms after its client exits, and refuses (RST) a client that
    # comes straight back. This, not duetd, was the "stall" of earlier TCP runs.
    sleep 1
    r=$(measure "$ip" "$@")
    results[$name]+="${r%% *} "; cpu[$name]+="${r##* } "
  done
  kill "$(cat "$dir/iperf.pid" 2>/dev/null)" 2>/dev/null
  for i in $(seq 1 50); do ip netns exec $B ss -ltn | grep -q ':5201 ' || break; sleep 0.1; done
}

run_case "raw veth" 198.18.150.2

for proto in udp tcp; do
  printf 'mode server\nproto %s\ndev duetb\nverb 1\nprivate-key %s\npeer %s 198.18.151.1/32\nifconfig 198.18.151.2/24\ncontrol-socket %s/b.sock\n' \
    "$proto" "$dir/b.key" "$apub" "$dir" > "$dir/b.conf"
  printf 'mode client\nremote 198.18.150.2 1194 %s\ndev dueta\nverb 1\nprivate-key %s\npeer %s 198.18.151.0/24\nifconfig 198.18.151.1/24\ncontrol-socket %s/a.sock\n' \
    "$proto" "$dir/a.key" "$bpub" "$dir" > "$dir/a.conf"
  ip netns exec $B "$duetd" --config "$dir/b.conf" > "$dir/b.log" 2>&1 & bp=$!; pids+=($bp)
  ip netns exec $A "$duetd" --config "$dir/a.conf" > "$dir/a.log" 2>&1 & ap=$!; pids+=($ap)
  for _ in $(seq 1 30); do ip netns exec $A ping -c 1 -W 1 198.18.151.2 >/dev/null 2>&1 && break; sleep 0.2; done
  run_case "duetd $proto" 198.18.151.2 "$ap" "$bp"
  stop
done

if command -v wireguard-go >/dev/null; then
  ip netns exec $A wireguard-go -f wga$p > /dev/null 2>&1 & ap=$!; pids+=($ap)
  ip netns exec $B wireguard-go -f wgb$p > /dev/null 2>&1 & bp=$!; pids+=($bp)
  for _ in $(seq 1 50); do [[ -S /var/run/wireguard/wga$p.sock && -S /var/run/wireguard/wgb$p.sock ]] && break; sleep 0.1; done
  ip netns exec $B wg set wgb$p private-key "$dir/b.key" listen-port 51820 peer "$apub" allowed-ips 198.18.152.1/32
  ip netns exec $A wg set wga$p private-key "$dir/a.key" peer "$bpub" allowed-ips 198.18.152.0/24 endpoint 198.18.150.2:51820
  ip -n $A addr add 198.18.152.1/24 dev wga$p; ip -n $A link set wga$p up
  ip -n $B addr add 198.18.152.2/24 dev wgb$p; ip -n $B link set wgb$p up
  for _ in $(seq 1 30); do ip netns exec $A ping -c 1 -W 1 198.18.152.2 >/dev/null 2>&1 && break; sleep 0.2; done
  run_case "wireguard-go" 198.18.152.2 "$ap" "$bp"
  stop
fi

stats() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{printf "%s %s %s", a[1], a[int((NR+1)/2)], a[NR]}'; }
echo "| path | min | median | max (Mbit/s) | CPU s per Gbit (median) |"
echo "|---|---:|---:|---:|---:|"
declare -A med
for name in "raw veth" "duetd udp" "duetd tcp" "wireguard-go"; do
  [[ -n ${results[$name]:-} ]] || continue
  read -r lo md hi <<<"$(stats "${results[$name]}")"
  med[$name]=$md
  c=$(stats "${cpu[$name]}" | awk '{print $2}')
  cpg=$(awk -v c="$c" -v m="$md" -v s="$secs" 'BEGIN{ if (m > 0 && c > 0) printf "%.2f", c / (m * s / 1000); else print "-" }')
  echo "| $name | $lo | $md | $hi | $cpg |"
done
if [[ -n ${med["wireguard-go"]:-} && ${med["wireguard-go"]} -gt 0 ]]; then
  for name in "duetd udp" "duetd tcp"; do
    awk -v a="${med[$name]:-0}" -v b="${med["wireguard-go"]}" -v n="$name" 'BEGIN{printf "%s / wireguard-go: %.2f\n", n, a/b}'
  done
fi
