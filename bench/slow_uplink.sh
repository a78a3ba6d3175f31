#!/usr/bin/env bash
# UDP backpressure behind a slow uplink, in one run: a duetd client (client namespace) and
# a duetd server across the router namespace of testbed/lib.sh, the client's uplink limited
# to RATE (default 100mbit) by tbf with a queue deep enough that the client's UDP socket
# fills before the queue drops, the client's send buffer set by `sndbuf` (default 262144).
# iperf3 with STREAMS parallel TCP streams (default 8) crosses the tunnel for SECONDS
# (default 5) while ping measures the round trip through it (every 0.1 s). Reported per
# run: throughput, the inner TCP's retransmissions, duetd's dropped datagrams and TUN
# pauses, and ping's average and maximum. Root only; everything is deleted on exit.
# Usage: bench/slow_uplink.sh BUILD_DIR [RUNS] [SECONDS]   (env: RATE, SNDBUF, STREAMS)
set -u
build=$1 runs=${2:-3} secs=${3:-5}
duetd=$build/daemon/duetd duetctl=$build/daemon/duetctl
rate=${RATE:-100mbit} sndbuf=${SNDBUF:-262144} streams=${STREAMS:-8}
p=su$$
. "$(cd "$(dirname "$0")/../testbed" && pwd)/lib.sh"
dir=$(mktemp -d)
trap 'tb_cleanup; rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces)"; exit 1; }
command -v iperf3 > /dev/null || { echo "needs iperf3"; exit 1; }
tb_topology > /dev/null || exit 1
tb_server_conf "$dir" "$duetd"
tb_client_conf "$dir" "remote 198.18.131.2 1194 udp" "sndbuf $sndbuf"
ip netns exec "$S" "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & tb_pids+=($!)
ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & tb_pids+=($!)
tb_ping_tunnel || { echo "the tunnel did not come up"; tail "$dir/client.log"; exit 1; }
ip netns exec "$C" tc qdisc add dev eth0 root tbf rate "$rate" burst 64kb limit 64mb
counter() { ip netns exec "$C" "$duetctl" status --json --socket "$dir/client.sock" | grep -o "\"$1\": [0-9]*" | tr -dc 0-9; }
echo "client uplink $rate (tbf), sndbuf $sndbuf, iperf3 -P $streams for $secs s, $runs runs"
for run in $(seq 1 "$runs"); do
  d0=$(counter udp_send_dropped) p0=$(counter tun_read_pauses)
  ip netns exec "$S" iperf3 -s -1 -D > /dev/null 2>&1; sleep 0.3
  ip netns exec "$C" ping -i 0.1 -c $((secs * 10)) 198.18.140.1 > "$dir/ping.out" 2>&1 & pp=$!
  ip netns exec "$C" iperf3 -c 198.18.140.1 -t "$secs" -P "$streams" -J > "$dir/iperf.json" 2>/dev/null
  wait $pp
  sent=$(grep -A8 '"sum_sent"' "$dir/iperf.json" | tail -n 9)
  bytes=$(grep -m1 '"bytes"' <<<"$sent" | tr -dc 0-9)
  retrans=$(grep -m1 '"retransmits"' <<<"$sent" | tr -dc 0-9)
  mbit=$(grep -A6 '"sum_received"' "$dir/iperf.json" | grep -m1 '"bits_per_second"' | tr -dc '0-9.' | awk '{printf "%d", $1 / 1e6}')
  rtt=$(tail -n 1 "$dir/ping.out" | awk -F'[/ ]' '{print $8 " ms average, " $9 " ms max"}')
  echo "run $run: $mbit Mbit/s; inner retransmissions $retrans of $((bytes / 1448)) segments;" \
    "duetd dropped $(($(counter udp_send_dropped) - d0)) datagrams, paused its TUN $(($(counter tun_read_pauses) - p0)) times; ping $rtt"
  sleep 1
done
