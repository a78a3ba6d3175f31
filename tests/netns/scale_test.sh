#!/usr/bin/env bash
# Many peers on one duetd, in network namespaces:
#
#   loadgen ns  198.18.160.2-.201 ───── 198.18.160.1  server ns (duetd, TUN 198.19.255.254/16)
#
# duet-loadgen plays N WireGuard peers (each its own key and UDP source port, spread over
# 200 source addresses). Every peer completes a handshake (with cookies once the server
# is under load) and sends an ICMP echo through the tunnel to the server's TUN address;
# the kernel's reply must come back sealed for that very peer. Then duetctl must count N
# peers configured and N with live keys: none was evicted to make room for another.
# Usage: scale_test.sh DUETD DUETCTL LOADGEN [N]   (root; default N 2000)
set -u
duetd=$1 duetctl=$2 loadgen=$3 n=${4:-2000}
p=sc$$ S=${p}_s L=${p}_l
dir=$(mktemp -d)
cleanup() {
  [[ -n ${dpid:-} ]] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
  ip netns del "$S" 2>/dev/null; ip netns del "$L" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces)"; exit 1; }

n_() { echo "[+] $*"; "$@"; }
n_ ip netns add "$S"; n_ ip netns add "$L"
n_ ip link add "${p}s" type veth peer name "${p}l"
n_ ip link set "${p}s" netns "$S"; n_ ip link set "${p}l" netns "$L"
n_ ip -n "$S" link set lo up; n_ ip -n "$L" link set lo up
n_ ip -n "$S" link set "${p}s" name eth0 up; n_ ip -n "$L" link set "${p}l" name eth0 up
n_ ip -n "$S" addr add 198.18.160.1/24 dev eth0
sources=""
for i in $(seq 2 201); do
  ip -n "$L" addr add "198.18.160.$i/24" dev eth0
  sources+="${sources:+,}198.18.160.$i"
done

"$duetd" genkey > "$dir/server.key"
spub=$("$duetd" pubkey < "$dir/server.key")
{
  printf 'mode server\nproto udp\ndev duet0\nverb 3\nprivate-key %s\ncontrol-socket %s\n' "$dir/server.key" "$dir/server.sock"
  printf 'ifconfig 198.19.255.254/16\n'
  "$loadgen" peers "$n" 7
} > "$dir/server.conf"
start=$(date +%s%N)
ip netns exec "$S" "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & dpid=$!
for _ in $(seq 1 100); do [[ -S $dir/server.sock ]] && break; sleep 0.1; done
echo "duetd with $n peers ready after $(( ($(date +%s%N) - start) / 1000000 )) ms"

ip netns exec "$L" "$loadgen" run 198.18.160.1:1194 "$spub" "$n" 7 198.19.255.254 --sources "$sources" --timeout 120 \
  > "$dir/loadgen.out" 2>&1
rc=$?
cat "$dir/loadgen.out"
status=$(ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock")
echo "$status" | head -8
t0=$(date +%s%N)
ip netns exec "$S" "$duetctl" status --json --socket "$dir/server.sock" > "$dir/status.json"
echo "duetctl status --json for $n peers: $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(wc -c < "$dir/status.json") bytes"
rss=$(awk '/VmRSS/{print $2}' "/proc/$dpid/status")
echo "duetd RSS after every handshake: $rss KiB ($(( rss * 1024 / n )) bytes per peer, everything included)"

ok=1
[[ $rc -eq 0 ]] || { echo "FAIL: not every peer got its echo reply"; ok=0; }
grep -q "peers: $n configured, $n with live keys" <<<"$status" || { echo "FAIL: duetctl does not count $n peers with live keys"; ok=0; }
[[ $ok -eq 1 ]] || tail -n 20 "$dir/server.log"
if [[ $ok -eq 1 ]]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
[[ $ok -eq 1 ]]
