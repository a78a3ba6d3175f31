#!/usr/bin/env bash
# The transports through proxies, in one run: a duetd client (client namespace) reaches a
# duetd server (server namespace) across the router namespace of testbed/lib.sh, directly
# or through a proxy running on the router, and iperf3 (one TCP stream) crosses the tunnel:
#   direct UDP, direct TCP, TCP through tinyproxy (HTTP CONNECT), TCP through dante
#   (SOCKS5 CONNECT), UDP through dante (SOCKS5 UDP ASSOCIATE); and, for the proxy's own
#   ceiling, iperf3 without a tunnel through socat and tinyproxy; with squid installed,
#   TCP through squid too (a second HTTP CONNECT proxy).
# Each case runs RUNS times (default 3) for SECONDS (default 5): min/median/max Mbit/s,
# inner TCP retransmissions, and the ratios issue 15 asks for. Root only; everything is
# deleted on exit. Usage: bench/proxy_throughput.sh BUILD_DIR [RUNS] [SECONDS]
set -u
build=$1 runs=${2:-3} secs=${3:-5}
duetd=$build/daemon/duetd
p=pb$$
. "$(cd "$(dirname "$0")/../testbed" && pwd)/lib.sh"
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
dir=$(mktemp -d)
chmod 0755 "$dir"
cleanup() {
  [[ -f $dir/server.pid ]] && kill "$(cat "$dir/server.pid")" 2>/dev/null
  tb_cleanup
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces)"; exit 1; }
for tool in iperf3 tinyproxy danted socat; do
  command -v $tool > /dev/null || { echo "needs $tool"; exit 1; }
done
tb_topology > /dev/null || exit 1
tb_server_conf "$dir" "$duetd"
tb_tinyproxy_conf "$dir" "ConnectPort 5201"  # 5201: iperf3 itself, for the ceiling
tb_dante_conf "$dir" none
# Not a child of this shell: tb_stop waits for its children, and the server outlives every case.
(ip netns exec "$S" "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & echo $! > "$dir/server.pid")
ip netns exec "$S" iperf3 -s -D > /dev/null 2>&1
sleep 0.5

declare -A mbits retrs proxy_load
# CPU clock ticks used so far by the processes of a namespace (the proxy, on the router).
ns_ticks() { local t=0 pid; for pid in $(ip netns pids "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2> /dev/null || echo 0))); done; echo $t; }
order=()
# run_case NAME PROXY_COMMAND CLIENT_LINE...: PROXY_COMMAND runs on the router ("" for none)
run_case() {
  local name=$1 cmd=$2
  shift 2
  echo "  $name ..." >&2
  order+=("$name")
  [[ -n $cmd ]] && { ip netns exec "$R" bash -c "$cmd" > "$dir/proxy.log" 2>&1 & tb_pids+=($!); }
  sleep 0.3
  tb_client_conf "$dir" "$@"
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 &
  tb_pids+=($!)
  if ! tb_ping_tunnel; then
    echo "    no tunnel: $(tail -n 3 "$dir/client.log")" >&2
    tb_stop
    return
  fi
  measure_runs "$name" 198.18.140.1 5201
  tb_stop
}
# measure_runs NAME HOST PORT: RUNS iperf3 runs from the client namespace
measure_runs() {
  local name=$1 host=$2 port=$3
  local i r mbit rt t0 t1
  for i in $(seq 1 "$runs"); do
    sleep 1
    t0=$(ns_ticks "$R")
    r=$(ip netns exec "$C" iperf3 -c "$host" -p "$port" -t "$secs" -J 2> /dev/null | iperf_rate)
    t1=$(ns_ticks "$R")
    read -r mbit _ rt <<< "$r"
    mbits[$name]+="$mbit " retrs[$name]+="$rt "
    proxy_load[$name]+="$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s="$secs" 'BEGIN{printf "%.2f", t / hz / s}') "
  done
}

echo "measuring ($runs runs of $secs s each):" >&2
run_case "direct UDP" "" "remote 198.18.131.2 1194 udp"
run_case "direct TCP" "" "remote 198.18.131.2 1194 tcp"
run_case "TCP via tinyproxy (HTTP CONNECT)" "tinyproxy -d -c $dir/tinyproxy.conf" \
  "remote 198.18.131.2 1194 tcp" "http-proxy 198.18.130.1 3128"
# Optional: squid as a second HTTP CONNECT proxy (Debian's squid; not needed by CI), to
# tell duet's HTTP CONNECT path apart from tinyproxy's own ceiling.
if command -v squid > /dev/null; then
  mkdir -p "$dir/squid" && chown proxy:proxy "$dir/squid" 2> /dev/null
  cat > "$dir/squid.conf" << CONF
http_port 198.18.130.1:3129
acl tunnel_port port 1194 5201
acl CONNECT method CONNECT
http_access allow CONNECT tunnel_port
http_access deny all
cache deny all
access_log none
cache_log $dir/squid/cache.log
pid_filename $dir/squid/squid.pid
coredump_dir $dir/squid
shutdown_lifetime 0 seconds
CONF
  run_case "TCP via squid (HTTP CONNECT)" "squid -N -f $dir/squid.conf" \
    "remote 198.18.131.2 1194 tcp" "http-proxy 198.18.130.1 3129"
fi
run_case "TCP via dante (SOCKS5 CONNECT)" "danted -f $dir/danted.conf" \
  "remote 198.18.131.2 1194 tcp" "socks-proxy 198.18.130.1 1080"
run_case "UDP via dante (SOCKS5 UDP ASSOCIATE)" "danted -f $dir/danted.conf" \
  "remote 198.18.131.2 1194 udp" "socks-proxy 198.18.130.1 1080"

name="no tunnel: iperf3 via socat and tinyproxy"
echo "  $name ..." >&2
order+=("$name")
ip netns exec "$R" tinyproxy -d -c "$dir/tinyproxy.conf" > "$dir/proxy.log" 2>&1 &
tb_pids+=($!)
ip netns exec "$C" socat TCP-LISTEN:5301,fork,reuseaddr PROXY:198.18.130.1:198.18.131.2:5201,proxyport=3128 &
tb_pids+=($!)
sleep 0.5
measure_runs "$name" 127.0.0.1 5301
tb_stop

echo
echo "| path | min | median | max (Mbit/s) | inner TCP retransmitted, % of segments (median) | proxy's CPU, cores busy (median) |"
echo "|---|---:|---:|---:|---:|---:|"
declare -A med
for name in "${order[@]}"; do
  read -r lo md hi <<< "$(stats "${mbits[$name]:-}")"
  med[$name]=${md:-0}
  echo "| $name | ${lo:--} | ${md:--} | ${hi:--} | $(median "${retrs[$name]:-}") | $(median "${proxy_load[$name]:-}") |"
done
echo
ratio() { awk -v a="${med[$1]:-0}" -v b="${med[$2]:-0}" -v n="$1 / $2" 'BEGIN{ if (a > 0 && b > 0) printf "%s: %.2f\n", n, a/b }'; }
ratio "direct TCP" "direct UDP"
ratio "TCP via tinyproxy (HTTP CONNECT)" "direct TCP"
ratio "TCP via squid (HTTP CONNECT)" "direct TCP"
ratio "TCP via dante (SOCKS5 CONNECT)" "direct TCP"
ratio "UDP via dante (SOCKS5 UDP ASSOCIATE)" "direct UDP"
ratio "TCP via tinyproxy (HTTP CONNECT)" "no tunnel: iperf3 via socat and tinyproxy"
