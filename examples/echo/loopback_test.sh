#!/usr/bin/env bash
# duet-echo on loopback: a server on both families, a client by name and by each literal.
set -u
echo_bin=$1
port=47007
"$echo_bin" server $port > server.out 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do grep -q "serving on" server.out && break; sleep 0.1; done
cat server.out
grep -q "0.0.0.0:$port" server.out || { echo "FAIL: no IPv4 socket"; exit 1; }
grep -q "\[::\]:$port" server.out || { echo "FAIL: no IPv6 socket"; exit 1; }
for host in localhost 127.0.0.1 ::1; do
  out=$("$echo_bin" client $host $port "hi $host") || { echo "FAIL: $host: $out"; exit 1; }
  echo "$host: $out"
  grep -q "^hi $host from" <<<"$out" || { echo "FAIL: wrong reply"; exit 1; }
done
# Nothing listens on the next port: the ICMP port-unreachable ends each try at once.
out=$("$echo_bin" client localhost $((port + 1))) && { echo "FAIL: a reply from nobody"; exit 1; }
echo "$out"
grep -q ECONNREFUSED <<<"$out" || { echo "FAIL: expected ECONNREFUSED"; exit 1; }
