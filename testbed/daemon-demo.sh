#!/usr/bin/env bash
# The daemon demo: a dual-stack duetd server and client in network namespaces, the
# server's IPv6 address silently blackholed on the router, and the client still through
# over IPv4 at once (racing), shown with ping and duetctl status. Root only; every
# namespace is deleted on exit. Usage: testbed/daemon-demo.sh BUILD_DIR (an installed
# copy takes no argument and runs the installed duetd).
set -u
here=$(cd "$(dirname "$0")" && pwd)
[[ -f $here/installed.sh ]] && . "$here/installed.sh"
build=${1:-build}
duetd=${DUETD:-$build/daemon/duetd} duetctl=${DUETCTL:-$build/daemon/duetctl}
p=demo$$
. "$here/lib.sh"
dir=$(mktemp -d)
trap 'tb_cleanup; rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM
[[ $(id -u) -eq 0 ]] || { echo "daemon demo: needs root (network namespaces); skipped"; exit 0; }

echo "== building the namespaces =="
tb_topology >/dev/null || exit 1
tb_server_conf "$dir" "$duetd"
tb_client_conf "$dir" "remote fd00:131::2 1194 udp" "remote 198.18.131.2 1194 udp"
echo "== the router silently drops everything for the server's IPv6 address =="
r ip -6 route add blackhole fd00:131::2/128
echo "== starting duetd on both sides =="
ip netns exec "$S" "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & tb_pids+=($!)
ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & tb_pids+=($!)
if tb_ping_tunnel; then
  echo "== ping through the tunnel =="
  ip netns exec "$C" ping -c 3 -i 0.2 198.18.140.1
  echo "== what the client decided (its log) =="
  grep -E "resolved|trying|failed|connected" "$dir/client.log" | sed 's/^/  /'
  echo "== duetctl status on the client =="
  ip netns exec "$C" "$duetctl" status --socket "$dir/client.sock"
  echo "== duetctl status on the server =="
  ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock"
else
  echo "daemon demo: no ping through the tunnel"; tail -20 "$dir/client.log"; exit 1
fi
