#!/usr/bin/env bash
# duetd between network namespaces, run as a user would run it (topology: testbed/lib.sh).
#
#   client ns ──── router ns ──── server ns        tunnel 198.18.140.2 ═══ 198.18.140.1
#
# Each case starts both daemons, pings through the tunnel, checks `duetctl status` on
# both sides, and stops them. One case blackholes the server's IPv6 address on the
# router: a client given both addresses must get through over IPv4 without waiting for
# a timeout. The last two put a stock wireguard-go on one side, in each role.
# Some cases also push 64 MiB of TCP and 3000 UDP datagrams (sent with UDP GSO) through
# the tunnel and check every byte (duet-bulk): the offloaded packet path must deliver
# exactly what was sent, to duetd and to wireguard-go alike.
# Usage: duetd_test.sh PATH/TO/duetd PATH/TO/duetctl PATH/TO/duet-bulk   (root; every namespace is deleted on exit)
set -u
duetd=$1 duetctl=$2 bulk=$3
p=dd$$
. "$(cd "$(dirname "$0")/../../testbed" && pwd)/lib.sh"
dir=$(mktemp -d)
trap 'tb_cleanup; rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM

[[ $(id -u) -eq 0 ]] || { echo "0 passed, 1 failed"; echo "needs root (network namespaces)"; exit 1; }
tb_topology || { echo "0 passed, 1 failed"; exit 1; }
tb_server_conf "$dir" "$duetd"
passed=0 failed=0

report() {  # report NAME OK DETAILS
  if [[ $2 -eq 1 ]]; then
    echo "ok   $1 ($3)"; passed=$((passed + 1))
  else
    echo "FAIL $1"; failed=$((failed + 1))
    local f; for f in client server wg; do [[ -f $dir/$f.log ]] && { echo "--- $f log"; tail -n 20 "$dir/$f.log"; }; done
  fi
}

# bulk_intact: 64 MiB over TCP and 3000 datagrams of 1200 bytes over UDP, client to
# server through the tunnel, checked byte for byte; sets bulk_detail.
bulk_detail=""
bulk_intact() {
  local tcp=fail udp="" _
  ip netns exec "$S" "$bulk" tcp-receive 5301 67108864 > "$dir/bulk-tcp.out" 2>&1 & local r=$!
  for _ in $(seq 1 30); do grep -q listening "$dir/bulk-tcp.out" && break; sleep 0.1; done
  timeout 60 ip netns exec "$C" "$bulk" tcp-send 198.18.140.1 5301 67108864 >/dev/null 2>&1
  wait $r && tcp=ok
  ip netns exec "$S" "$bulk" udp-receive 5302 3000 8 > "$dir/bulk-udp.out" 2>&1 & r=$!
  for _ in $(seq 1 30); do grep -q listening "$dir/bulk-udp.out" && break; sleep 0.1; done
  ip netns exec "$C" "$bulk" udp-send 198.18.140.1 5302 3000 1200 >/dev/null 2>&1
  wait $r; udp=$(tail -n 1 "$dir/bulk-udp.out")
  bulk_detail="64 MiB TCP: $(tail -n 1 "$dir/bulk-tcp.out"); UDP: $udp"
  [[ $tcp == ok && $udp == ok* ]]
}
BULK=0 EXTRA=""

case_() {  # case_ NAME EXPECTED_CLIENT_LOG_PATTERN REMOTE_LINE...
  local name=$1 pattern=$2; shift 2
  rm -f "$dir"/*.log
  tb_client_conf "$dir" "$@"
  # EXTRA: lines for both ends' configuration (default: none).
  { cat "$dir/server.conf"; [[ -z $EXTRA ]] || printf '%s\n' "$EXTRA"; } > "$dir/server-case.conf"
  [[ -z $EXTRA ]] || printf '%s\n' "$EXTRA" >> "$dir/client.conf"
  ip netns exec "$S" "$duetd" --config "$dir/server-case.conf" > "$dir/server.log" 2>&1 & tb_pids+=($!)
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & tb_pids+=($!)
  local ok=0 start=$SECONDS status="" json="" server_status=""
  if tb_ping_tunnel; then
    status=$(ip netns exec "$C" "$duetctl" status --socket "$dir/client.sock")
    json=$(ip netns exec "$C" "$duetctl" status --json --socket "$dir/client.sock")
    server_status=$(ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock")
    grep -qE "$pattern" "$dir/client.log" \
      && grep -q "latest handshake: [0-9]* seconds ago" <<<"$status" && grep -q '"rx_bytes": [1-9]' <<<"$json" \
      && grep -qE "path: .*/(udp|tcp) \(IPv[46]\), rtt [0-9.]+ ms; 0 silent paths left" <<<"$status" \
      && grep -q "listening: 0.0.0.0:1194/udp, \[::\]:1194/udp, 0.0.0.0:1194/tcp, \[::\]:1194/tcp" <<<"$server_status" \
      && ok=1
  fi
  local detail="ping through the tunnel after $((SECONDS - start)) s; duetctl status agrees"
  if [[ $ok -eq 1 && $BULK -eq 1 ]]; then
    bulk_intact || ok=0
    status=$(ip netns exec "$C" "$duetctl" status --socket "$dir/client.sock")
    if [[ $EXTRA == "offload none" ]]; then  # the plain path: one packet per read, and it says so
      grep -q "offloads: tun off (turned off by 'offload'); udp gso off" <<<"$status" \
        && grep -q "batching: 1.0 packets per TUN read" <<<"$status" || ok=0
    else  # the offloads were granted and used: many packets per TUN read on the sending side
      grep -q "offloads: tun tso" <<<"$status" && grep -qE "batching: ([2-9]|[1-9][0-9]+)\.[0-9] packets per TUN read" <<<"$status" || ok=0
    fi
    detail+="; $bulk_detail; $(grep batching <<<"$status" | sed 's/^ *//')"
  fi
  [[ $ok -eq 1 ]] || { echo "--- duetctl status (client)"; echo "$status"; echo "--- (server)"; echo "$server_status"; }
  report "$name" $ok "$detail"
  tb_stop
}

# duetd with a stock wireguard-go on the other side (plain UDP: the same WireGuard
# messages on the wire). wireguard-go's control socket is global
# (/var/run/wireguard/NAME.sock), so the interface gets a unique name.
wg_case() {  # wg_case NAME NAMESPACE_OF_WIREGUARD_GO
  local name=$1 wgns=$2 wgif=wg$p
  rm -f "$dir"/*.log
  ip netns exec "$wgns" wireguard-go -f "$wgif" > "$dir/wg.log" 2>&1 & tb_pids+=($!)
  local _; for _ in $(seq 1 50); do ip -n "$wgns" link show "$wgif" >/dev/null 2>&1 && break; sleep 0.1; done
  if [[ $wgns == "$S" ]]; then
    s wg set "$wgif" private-key "$dir/server.key" listen-port 1194 peer "$cpub" allowed-ips 198.18.140.2/32
    s ip addr add 198.18.140.1/24 dev "$wgif"; s ip link set "$wgif" up
    tb_client_conf "$dir" "remote 198.18.131.2 1194 udp"
    ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & tb_pids+=($!)
  else
    ip netns exec "$S" "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & tb_pids+=($!)
    c wg set "$wgif" private-key "$dir/client.key" peer "$spub" allowed-ips 198.18.140.0/24 endpoint 198.18.131.2:1194
    c ip addr add 198.18.140.2/24 dev "$wgif"; c ip link set "$wgif" up
  fi
  local ok=0 start=$SECONDS mbit=0
  if tb_ping_tunnel; then
    # A short iperf3 through the tunnel, as the daemon issue asks for.
    ip netns exec "$S" iperf3 -s -1 -D >/dev/null 2>&1; sleep 0.3
    mbit=$(ip netns exec "$C" iperf3 -c 198.18.140.1 -t 1 -J 2>/dev/null | grep -A6 '"sum_received"' \
             | grep '"bits_per_second"' | head -1 | tr -dc '0-9.' | awk '{printf "%d", $1 / 1e6}')
    [[ ${mbit:-0} -gt 0 ]] && ok=1
    bulk_intact || ok=0
  fi
  report "$name" $ok "ping after $((SECONDS - start)) s; iperf3 ${mbit:-0} Mbit/s; $bulk_detail"
  if [[ $wgns == "$C" ]]; then
    # Roaming: wireguard-go moves to another source port (as behind a NAT that remaps);
    # duetd must follow it after its first authenticated packet, without a new handshake.
    ok=0
    c wg set "$wgif" listen-port 40001
    local st=""
    if tb_ping_tunnel; then
      st=$(ip netns exec "$S" "$duetctl" status --json --socket "$dir/server.sock")
      grep -q '"endpoint": *"198.18.130.2:40001"' <<<"$st" && ok=1
    fi
    [[ $ok -eq 1 ]] || echo "$st"
    report "wireguard-go roams to a new port, duetd follows" $ok "ping through; duetctl shows 198.18.130.2:40001"
  fi
  tb_stop
}

BULK=1
case_ "udp over IPv4" "connected to 198.18.131.2:1194/udp" "remote 198.18.131.2 1194 udp"
case_ "udp over IPv6" "connected to \[fd00:131::2\]:1194/udp" "remote fd00:131::2 1194 udp"
BULK=0
case_ "tcp over IPv4" "connected to 198.18.131.2:1194/tcp" "remote 198.18.131.2 1194 tcp"
BULK=1
case_ "tcp over IPv6" "connected to \[fd00:131::2\]:1194/tcp" "remote fd00:131::2 1194 tcp"
EXTRA="offload none"
case_ "udp over IPv4, offload none" "connected to 198.18.131.2:1194/udp" "remote 198.18.131.2 1194 udp"
# Tunnel messages larger than the path (tun-mtu 1500 over 1500-byte links): the kernel
# refuses them as GSO sends (EINVAL), so they go one by one, fragmented, and still arrive.
EXTRA="tun-mtu 1500"
case_ "udp over IPv4, messages larger than the path MTU" "connected to 198.18.131.2:1194/udp" "remote 198.18.131.2 1194 udp"
BULK=0 EXTRA=""

# A slow uplink (tbf, 100 Mbit/s, with a queue deep enough that the client's socket fills
# before it drops) and a 256 KiB send buffer, filled by eight inner TCP streams: the kernel
# refuses the client's sends (EAGAIN), and duetd must stop reading its TUN until the socket
# drains instead of dropping tunnel packets. (Without that: ~350 datagrams dropped and as
# many inner retransmissions in 5 s here, bench/RESULTS.md.)
slow_uplink() {
  rm -f "$dir"/*.log
  tb_client_conf "$dir" "remote 198.18.131.2 1194 udp" "sndbuf 262144"
  ip netns exec "$S" "$duetd" --config "$dir/server.conf" > "$dir/server.log" 2>&1 & tb_pids+=($!)
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & tb_pids+=($!)
  local ok=0 st="" json="" mbit=0 bytes=0 retrans=-1
  if tb_ping_tunnel; then
    c tc qdisc add dev eth0 root tbf rate 100mbit burst 64kb limit 64mb
    ip netns exec "$S" iperf3 -s -1 -D >/dev/null 2>&1; sleep 0.3
    ip netns exec "$C" iperf3 -c 198.18.140.1 -t 5 -P 8 -J > "$dir/iperf.json" 2>/dev/null
    c tc qdisc del dev eth0 root
    local sent; sent=$(grep -A8 '"sum_sent"' "$dir/iperf.json" | tail -n 9)
    bytes=$(grep -m1 '"bytes"' <<<"$sent" | tr -dc 0-9)
    retrans=$(grep -m1 '"retransmits"' <<<"$sent" | tr -dc 0-9)
    mbit=$(grep -A6 '"sum_received"' "$dir/iperf.json" | grep -m1 '"bits_per_second"' | tr -dc '0-9.' | awk '{printf "%d", $1 / 1e6}')
    json=$(ip netns exec "$C" "$duetctl" status --json --socket "$dir/client.sock")
    st=$(ip netns exec "$C" "$duetctl" status --socket "$dir/client.sock")
    # The inner TCP lost (almost) nothing: retransmissions under 0.5 % of the segments sent.
    [[ ${mbit:-0} -gt 50 && -n $retrans && $((retrans * 200 * 1448)) -lt ${bytes:-0} ]] \
      && grep -q "backpressure: TUN reads paused [1-9]" <<<"$st" \
      && grep -qE '"udp_send_dropped": 0([^0-9]|$)' <<<"$json" && ok=1
  fi
  [[ $ok -eq 1 ]] || { echo "--- duetctl status (client)"; echo "$st"; grep -E '"(udp_send_dropped|tun_read_pauses)"' <<<"$json"; }
  report "udp over a slow uplink: TUN reads pause while the socket is full, no datagram dropped" $ok \
    "iperf3 -P 8 ${mbit:-0} Mbit/s through 100 Mbit/s, ${retrans} inner retransmissions in $((${bytes:-0} / 1448)) segments; $(grep -o 'TUN reads paused [0-9]* times' <<<"$st")"
  tb_stop
}
slow_uplink

r ip -6 route add blackhole fd00:131::2/128
case_ "dual stack, IPv6 blackholed: over IPv4 at once" "connected to 198.18.131.2:1194/udp over IPv4 after [0-9]{1,3} ms" \
  "remote fd00:131::2 1194 udp" "remote 198.18.131.2 1194 udp"
r ip -6 route del blackhole fd00:131::2/128
# The server drops to nobody once its TUN and sockets are open, and still serves.
dropped() {
  rm -f "$dir"/*.log
  { cat "$dir/server.conf"; printf 'user nobody\ngroup nogroup\n'; } > "$dir/server-nobody.conf"
  tb_client_conf "$dir" "remote 198.18.131.2 1194 udp"
  ip netns exec "$S" "$duetd" --config "$dir/server-nobody.conf" > "$dir/server.log" 2>&1 & local spid=$!; tb_pids+=($spid)
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & tb_pids+=($!)
  local ok=0 start=$SECONDS uid=""
  if tb_ping_tunnel; then
    uid=$(ps -o uid= -p "$spid" | tr -d ' ')
    [[ $uid == "$(id -u nobody)" ]] && grep -q "running as uid" "$dir/server.log" \
      && ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock" | grep -q "latest handshake" && ok=1
  fi
  report "server drops to user nobody and keeps serving" $ok "uid $uid, ping after $((SECONDS - start)) s"
  tb_stop
}
dropped

# SIGHUP reloads: a new peer on the server, nothing new on the client, then a broken
# file; the established tunnel is kept through all three.
reload() {
  rm -f "$dir"/*.log
  cp "$dir/server.conf" "$dir/server-reload.conf"
  tb_client_conf "$dir" "remote 198.18.131.2 1194 udp"
  ip netns exec "$S" "$duetd" --config "$dir/server-reload.conf" > "$dir/server.log" 2>&1 & local spid=$!; tb_pids+=($spid)
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & local cpid=$!; tb_pids+=($cpid)
  local ok=0 start=$SECONDS
  if tb_ping_tunnel; then
    echo "peer $("$duetd" pubkey < <("$duetd" genkey)) 198.18.140.9/32" >> "$dir/server-reload.conf"
    kill -HUP "$spid" "$cpid"; sleep 1
    echo "this is not a directive" >> "$dir/server-reload.conf"
    kill -HUP "$spid"; sleep 1
    if ip netns exec "$C" ping -c 2 -i 0.3 -W 1 198.18.140.1 >/dev/null 2>&1 \
       && [[ $(grep -c "connected to" "$dir/client.log") -eq 1 ]] \
       && grep -q "peers: 1 kept, 1 added, 0 removed" "$dir/server.log" \
       && grep -q "listeners and connections unchanged: kept as they are" "$dir/client.log" \
       && grep -q "keeping the running one" "$dir/server.log" \
       && [[ $(ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock" | grep -c "^peer:") -eq 2 ]]; then
      ok=1
    fi
  fi
  report "SIGHUP reload keeps the established tunnel" $ok "one connection throughout, $((SECONDS - start)) s"
  tb_stop
}
reload

# start_two_clients PROTO PROTO2: the server with a second peer (.3), client 1 (duet0, .2)
# over PROTO and client 2 (duet1, .3) over PROTO2, both in the client namespace. Sets
# server_pid and client1_pid; true once both ping through.
start_two_clients() {
  rm -f "$dir"/*.log
  "$duetd" genkey > "$dir/client2.key"; local c2pub; c2pub=$("$duetd" pubkey < "$dir/client2.key")
  { cat "$dir/server.conf"; echo "peer $c2pub 198.18.140.3/32"; } > "$dir/server2.conf"
  tb_client_conf "$dir" "remote 198.18.131.2 1194 $1"
  sed -e "s|$dir/client.key|$dir/client2.key|" -e 's/^dev duet0/dev duet1/' -e 's|198.18.140.2/24|198.18.140.3/24|' \
      -e "s|$dir/client.sock|$dir/client2.sock|" -e "s/1194 $1\$/1194 $2/" "$dir/client.conf" > "$dir/client2.conf"
  ip netns exec "$S" "$duetd" --config "$dir/server2.conf" > "$dir/server.log" 2>&1 & server_pid=$!; tb_pids+=($server_pid)
  ip netns exec "$C" "$duetd" --config "$dir/client.conf" > "$dir/client.log" 2>&1 & client1_pid=$!; tb_pids+=($client1_pid)
  ip netns exec "$C" "$duetd" --config "$dir/client2.conf" > "$dir/client2.log" 2>&1 & tb_pids+=($!)
  local _ a=0 b=0
  for _ in $(seq 1 25); do
    [[ $a -eq 1 ]] || { ip netns exec "$C" ping -c 1 -W 1 -I duet0 198.18.140.1 >/dev/null 2>&1 && a=1; }
    [[ $b -eq 1 ]] || { ip netns exec "$C" ping -c 1 -W 1 -I duet1 198.18.140.1 >/dev/null 2>&1 && b=1; }
    [[ $a -eq 1 && $b -eq 1 ]] && return 0
    sleep 0.2
  done
  return 1
}

# One server, two clients at once: one over UDP (duet0, .2), one over TCP (duet1, .3).
two_clients() {
  local ok=0 start=$SECONDS st=""
  if start_two_clients udp tcp; then
    st=$(ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock")
    [[ $(grep -c "latest handshake" <<<"$st") -eq 2 ]] && grep -q "(udp, IPv4)" <<<"$st" && grep -q "(tcp, IPv4)" <<<"$st" && ok=1
  fi
  [[ $ok -eq 1 ]] || { echo "--- server status"; echo "$st"; tail -n 10 "$dir/client2.log"; }
  report "one server, two clients at once (UDP and TCP)" $ok "both ping through after $((SECONDS - start)) s; duetctl shows both peers"
  tb_stop
}
two_clients

# One server, two clients over TCP, one of them throttled: the router passes its stream at
# 20 Mbit/s (an htb class for its port), so the server's queue to it fills and stays full.
# iperf3 from the server to each: the other client must get about what it gets alone
# (before, the server paused its TUN for the throttled one, and the other waited too), and
# the server must not grow with the throttled one's backlog.
throttled_client() {
  local ok=0 up=0 alone=0 beside=0 slow_mbit=0 rss0=0 rss1=0 st="" port=""
  start_two_clients tcp tcp && up=1
  local spid=$server_pid slow=$client1_pid
  # Both TUNs hold 198.18.140.0/24 in one namespace: each address answers through its own.
  c ip rule add from 198.18.140.2 table 102; c ip route add 198.18.140.0/24 dev duet0 table 102
  c ip rule add from 198.18.140.3 table 103; c ip route add 198.18.140.0/24 dev duet1 table 103
  # The throttled client's outer stream, by its port: 20 Mbit/s from the router to it.
  port=$(ip netns exec "$C" ss -tnpH state established "( dport = :1194 )" | grep "pid=$slow," | awk '{print $3}' | sed 's/.*://')
  # Kernel send buffers of at most 256 KiB, as a server for thousands of peers keeps them
  # (with the default 4 MiB the kernel holds a slow stream's backlog itself, and duetd's
  # queue seldom fills).
  s sysctl -qw net.ipv4.tcp_wmem="4096 65536 262144"
  r tc qdisc add dev eth0 root handle 1: htb default 10
  r tc class add dev eth0 parent 1: classid 1:10 htb rate 10gbit
  r tc class add dev eth0 parent 1: classid 1:20 htb rate 20mbit ceil 20mbit
  r tc filter add dev eth0 parent 1: protocol ip u32 match ip dport "${port:-1}" 0xffff flowid 1:20
  mbit_of() { grep -A6 '"sum_received"' "$1" | grep -m1 '"bits_per_second"' | tr -dc '0-9.' | awk '{printf "%d", $1 / 1e6}'; }
  if [[ $up -eq 1 && -n $port ]]; then
    # (each iperf3 server takes one test and exits)
    ip netns exec "$C" iperf3 -s -1 -B 198.18.140.3 -p 5212 -D >/dev/null 2>&1; sleep 0.3
    # The other client alone, 3 s.
    timeout 15 ip netns exec "$S" iperf3 -c 198.18.140.3 -p 5212 -t 3 -J > "$dir/alone.json" 2>/dev/null
    alone=$(mbit_of "$dir/alone.json")
    rss0=$(awk '/VmRSS/ {print $2}' "/proc/$spid/status")
    ip netns exec "$C" iperf3 -s -1 -B 198.18.140.2 -p 5211 -D >/dev/null 2>&1
    ip netns exec "$C" iperf3 -s -1 -B 198.18.140.3 -p 5212 -D >/dev/null 2>&1; sleep 0.3
    # The throttled client busy for 6 s; the other one again, 3 s, in the middle of it.
    timeout 20 ip netns exec "$S" iperf3 -c 198.18.140.2 -p 5211 -t 6 -J > "$dir/slow.json" 2>/dev/null & local slowjob=$!
    sleep 1.5
    timeout 15 ip netns exec "$S" iperf3 -c 198.18.140.3 -p 5212 -t 3 -J > "$dir/beside.json" 2>/dev/null
    rss1=$(awk '/VmRSS/ {print $2}' "/proc/$spid/status")
    wait $slowjob
    beside=$(mbit_of "$dir/beside.json"); slow_mbit=$(mbit_of "$dir/slow.json")
    st=$(ip netns exec "$S" "$duetctl" status --socket "$dir/server.sock")
    # At least half its speed alone (the two share the server's CPU, and CI runs other
    # tests beside this one; here 0.88-0.96), the throttled one carried something, and
    # the server grew by under 32 MiB.
    [[ ${alone:-0} -gt 0 && $((${beside:-0} * 2)) -ge $alone && ${slow_mbit:-0} -gt 0 ]] \
      && [[ $((${rss1:-0} - ${rss0:-0})) -lt 32768 ]] && grep -q "per peer: [1-9]" <<<"$st" && ok=1
  fi
  [[ $ok -eq 1 ]] || { echo "--- server status"; echo "$st"; echo "(other client ${alone:-0} / ${beside:-0} Mbit/s, slow ${slow_mbit:-0}, RSS $rss0 -> $rss1 KiB, port ${port:-none})"; }
  report "two TCP clients, one throttled: the other keeps its speed" $ok \
    "other client ${alone:-0} Mbit/s alone, ${beside:-0} beside the throttled one (${slow_mbit:-0} Mbit/s); server RSS +$(((${rss1:-0} - ${rss0:-0}) / 1024)) MiB; $(grep -o 'per peer: [0-9]* times' <<<"$st")"
  tb_stop
  r tc qdisc del dev eth0 root 2>/dev/null
  s sysctl -qw net.ipv4.tcp_wmem="4096 16384 4194304"
  c ip rule del from 198.18.140.2 table 102; c ip rule del from 198.18.140.3 table 103
}
throttled_client

# route-allowed-ips: the client's peer may use 198.18.141.0/24 as well, a subnet no
# address of the client's TUN covers; only a route into the TUN makes it reachable.
routed() {
  rm -f "$dir"/*.log
  { cat "$dir/server.conf"; printf 'ifconfig 198.18.141.1/32\n'; } > "$dir/server-routed.conf"
  tb_client_conf "$dir" "remote 198.18.131.2 1194 udp"
  sed -e "s|^peer \(.*\) 198.18.140.0/24|peer \1 198.18.140.0/24,198.18.141.0/24|" "$dir/client.conf" > "$dir/client-routed.conf"
  printf 'route-allowed-ips\nstatus %s 1\n' "$dir/client.status" >> "$dir/client-routed.conf"
  ip netns exec "$S" "$duetd" --config "$dir/server-routed.conf" > "$dir/server.log" 2>&1 & tb_pids+=($!)
  ip netns exec "$C" "$duetd" --config "$dir/client-routed.conf" > "$dir/client.log" 2>&1 & tb_pids+=($!)
  local ok=0 start=$SECONDS route=""
  if tb_ping_tunnel; then
    route=$(ip -n "$C" route show 198.18.141.0/24)
    local _; for _ in 1 2 3 4 5; do ip netns exec "$C" ping -c 1 -W 1 198.18.141.1 >/dev/null 2>&1 && { ok=1; break; }; done
    [[ $route == *"dev duet0"* ]] || ok=0
    # `status FILE 1`: the status file is rewritten every second with the handshake in it.
    for _ in 1 2 3 4 5 6 7 8 9 10; do grep -q "latest handshake: [0-9]* seconds ago" "$dir/client.status" 2>/dev/null && break; sleep 0.3; done
    grep -q "latest handshake: [0-9]* seconds ago" "$dir/client.status" 2>/dev/null || ok=0
  fi
  [[ $ok -eq 1 ]] || { grep '^peer' "$dir/client-routed.conf"; ip -n "$C" route show; cat "$dir/client.status"; }
  report "route-allowed-ips routes a peer's other subnet into the TUN; status FILE is kept" $ok "ping 198.18.141.1 after $((SECONDS - start)) s; ${route:-no route}; status file has the handshake"
  tb_stop
}
routed

if command -v wireguard-go >/dev/null && command -v wg >/dev/null; then
  wg_case "duetd client, wireguard-go server" "$S"
  wg_case "wireguard-go client, duetd server" "$C"
else
  report "wireguard-go interop" 0 "wireguard-go and wireguard-tools are not installed"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
