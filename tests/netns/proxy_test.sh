#!/usr/bin/env bash
# duetd through real proxies in network namespaces: tinyproxy (HTTP CONNECT, with and
# without Basic authentication) and dante (SOCKS5, with and without user/password, TCP
# CONNECT and UDP ASSOCIATE) run in the router namespace; a duetd client reaches the
# duetd server only through them (its packets to the server are refused otherwise), and a
# ping crosses the tunnel; through each proxy's TCP path (and over the TCP transport
# without a proxy) 64 MiB go each way, checked byte for byte, with the inner TCP's
# retransmissions said. Usage: proxy_test.sh DUETD DUET_BULK (root; everything is removed
# on exit).
set -u
duetd=$1 bulk=$2
p=px$$
. "$(cd "$(dirname "$0")/../../testbed" && pwd)/lib.sh"
dir=$(mktemp -d)
chmod 0755 "$dir"
user=duetpx$$
cleanup() { tb_cleanup; userdel "$user" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
[[ $(id -u) -eq 0 ]] || { echo "0 passed, 1 failed"; echo "needs root"; exit 1; }
for tool in tinyproxy danted; do
  command -v $tool >/dev/null || { echo "0 passed, 1 failed"; echo "needs $tool (apt-get install tinyproxy dante-server)"; exit 1; }
done
tb_topology >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
tb_server_conf "$dir" "$duetd"
passed=0 failed=0
report() {  # report NAME OK DETAILS
  if [[ $2 -eq 1 ]]; then echo "ok   $1 ($3)"; passed=$((passed + 1)); else
    echo "FAIL $1 ($3)"; failed=$((failed + 1))
    local f; for f in client server proxy; do [[ -f $dir/$f.log ]] && { echo "--- $f log"; tail -n 15 "$dir/$f.log"; }; done
  fi
}

tinyproxy_conf() { tb_tinyproxy_conf "$dir" "$@"; }  # [BASICAUTH_LINE]
dante_conf() { tb_dante_conf "$dir" "$1"; }          # METHOD

# both_ways: 64 MiB client to server, then server to client, through the tunnel, checked
# byte for byte by duet-bulk, the inner TCP retransmitting under 1 % of its segments; sets
# bulk_detail (each sender's retransmitted segments).
both_ways() {
  local ok=0 from to host port=5301 r detail=""
  for dir_ in "$C $S 198.18.140.1" "$S $C 198.18.140.2"; do
    read -r from to host <<<"$dir_"
    ip netns exec "$to" "$bulk" tcp-receive $port 67108864 > "$dir/bulk-r.out" 2>&1 & r=$!
    local _; for _ in $(seq 1 30); do grep -q listening "$dir/bulk-r.out" && break; sleep 0.1; done
    timeout 120 ip netns exec "$from" "$bulk" tcp-send "$host" $port 67108864 > "$dir/bulk-s.out" 2>&1
    # Intact, and the inner TCP lost (retransmitted) under 1 % of its segments: the tunnel
    # pushes back on a full outer stream instead of dropping (issue 15's target).
    wait $r && grep -q "^ok" "$dir/bulk-r.out" &&
      awk '/segments retransmitted/ { exit !($3 * 100 < $5) }' "$dir/bulk-s.out" && ok=$((ok + 1))
    detail+="${detail:+; }$([[ $from == "$C" ]] && echo "up" || echo "down"): $(tail -n 1 "$dir/bulk-r.out"), $(tail -n 1 "$dir/bulk-s.out" | sed 's/^ok sent, //')"
    port=$((port + 1))
  done
  bulk_detail=$detail
  [[ $ok -eq 2 ]]
}

# proxied NAME PROXY_CMD EXPECT(ping|bulk|PATTERN) CLIENT_LINE...
proxied() {
  local name=$1 cmd=$2 expect=$3; shift 3
  rm -f "$dir"/*.log
  [[ -z $cmd ]] || { ip netns exec "$R" bash -c "$cmd" > "$dir/proxy.log" 2>&1 & tb_pids+=($!); }
  ip netns exec "$S" "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & tb_pids+=($!)
  sleep 0.5
  tb_client_conf "$dir" "$@"
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & tb_pids+=($!)
  local ok=0 start=$SECONDS
  if [[ $expect == ping || $expect == bulk ]]; then
    tb_ping_tunnel && { [[ -z $cmd ]] || grep -q "via proxy" "$dir/client.log"; } && ok=1
    if [[ $expect == bulk && $ok -eq 1 ]]; then
      both_ways || ok=0
      report "$name, 64 MiB each way" $ok "$bulk_detail"
    else
      report "$name" $ok "ping through the tunnel after $((SECONDS - start)) s"
    fi
  else
    local _; for _ in $(seq 1 40); do grep -q "$expect" "$dir/client.log" && { ok=1; break; }; sleep 0.25; done
    ip netns exec "$C" ping -c 1 -W 1 198.18.140.1 >/dev/null 2>&1 && ok=0
    grep -q "wrongpass" "$dir/client.log" && ok=0
    report "$name" $ok "no tunnel; the log says \"$expect\""
  fi
  tb_stop
}

proxied "the TCP transport without a proxy" "" bulk "remote 198.18.131.2 1194 tcp"
tinyproxy_conf
proxied "tinyproxy, HTTP CONNECT" "tinyproxy -d -c $dir/tinyproxy.conf" bulk \
  "remote 198.18.131.2 1194 tcp" "http-proxy 198.18.130.1 3128"
tinyproxy_conf "BasicAuth duet s3cret"
printf 'duet\ns3cret\n' > "$dir/good.auth"; printf 'duet\nwrongpass\n' > "$dir/bad.auth"
proxied "tinyproxy with Basic auth" "tinyproxy -d -c $dir/tinyproxy.conf" ping \
  "remote 198.18.131.2 1194 tcp" "http-proxy 198.18.130.1 3128 $dir/good.auth"
proxied "tinyproxy with a wrong password" "tinyproxy -d -c $dir/tinyproxy.conf" "proxy authentication failed" \
  "remote 198.18.131.2 1194 tcp" "http-proxy 198.18.130.1 3128 $dir/bad.auth"

dante_conf none
proxied "dante, SOCKS5 CONNECT" "danted -f $dir/danted.conf" bulk \
  "remote 198.18.131.2 1194 tcp" "socks-proxy 198.18.130.1 1080"
proxied "dante, SOCKS5 UDP ASSOCIATE" "danted -f $dir/danted.conf" ping \
  "remote 198.18.131.2 1194 udp" "socks-proxy 198.18.130.1 1080"
useradd -M -s /usr/sbin/nologin "$user" && echo "$user:pw$$" | chpasswd
printf '%s\npw%s\n' "$user" "$$" > "$dir/socks.auth"; printf '%s\nwrongpass\n' "$user" > "$dir/socks-bad.auth"
dante_conf username
proxied "dante with user/password, TCP" "danted -f $dir/danted.conf" ping \
  "remote 198.18.131.2 1194 tcp" "socks-proxy 198.18.130.1 1080 $dir/socks.auth"
proxied "dante with user/password, UDP" "danted -f $dir/danted.conf" ping \
  "remote 198.18.131.2 1194 udp" "socks-proxy 198.18.130.1 1080 $dir/socks.auth"
proxied "dante with a wrong password" "danted -f $dir/danted.conf" "proxy authentication failed" \
  "remote 198.18.131.2 1194 tcp" "socks-proxy 198.18.130.1 1080 $dir/socks-bad.auth"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
