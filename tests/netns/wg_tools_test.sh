#!/usr/bin/env bash
# duetd driven only by WireGuard's own tools (wg, wg-quick) and ip, in network namespaces:
#
#   A (wga ns) eth0 198.18.171.1 fd00:171::1 ─── eth0 198.18.171.2 fd00:171::2 B (wgb ns)
#   tunnel      wgA0 198.19.171.1 fd00:1711::1 ═══ wgB0 198.19.171.2 fd00:1711::2
#
# Each side is `duetd IFNAME` (as wireguard-go is started) configured with `wg set`; then
# the same with wireguard-go on side B, and once with wg-quick bringing side A up. Every
# check prints "ok NAME (details)" or "FAIL NAME"; the last line counts them.
# Usage: wg_tools_test.sh DUETD [BYTES [RATE]]   (root; BYTES per iperf3 run, default 1G;
# RATE of the UDP runs, default 600M; every
# namespace, interface and socket is removed on exit)
set -u
duetd=$1 bytes=${2:-1G} udp_rate=${3:-600M}
p=wt$$ A=wt$$_a B=wt$$_b X=wt$$_x C=wt$$_c R=wt$$_r
dir=$(mktemp -d)
passed=0 failed=0 t0=$(date +%s)
cleanup() {
  local ns
  for ns in "$A" "$B" "$X" "$C" "$R"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  sleep 0.2
  for ns in "$A" "$B" "$X" "$C" "$R"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  pkill -f "duetd ${p}" 2>/dev/null
  rm -f /var/run/wireguard/${p}*.sock
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces)"; echo "0 passed, 1 failed"; exit 1; }
for tool in wg wg-quick iperf3 socat wireguard-go; do
  command -v $tool > /dev/null || { echo "needs $tool"; echo "0 passed, 1 failed"; exit 1; }
done

report() {  # report NAME OK DETAILS
  local t=$(($(date +%s) - t0))
  if [[ $2 -eq 1 ]]; then
    echo "ok   $1${3:+ ($3)} [${t}s]"
    passed=$((passed + 1))
  else
    echo "FAIL $1${3:+ ($3)}"
    failed=$((failed + 1))
    local f
    for f in "$dir"/*.log; do [[ -f $f ]] && { echo "--- $f"; tail -n 15 "$f"; }; done
  fi
}
in_a() { ip netns exec "$A" "$@"; }
in_b() { ip netns exec "$B" "$@"; }

ip netns add "$A" && ip netns add "$B" || exit 1
ip link add "${p}a" type veth peer name "${p}b"
ip link set "${p}a" netns "$A"
ip link set "${p}b" netns "$B"
for side in a b; do
  ns=$A n=1
  [[ $side == b ]] && ns=$B n=2
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "${p}$side" name eth0
  ip -n "$ns" addr add 198.18.171.$n/24 dev eth0
  ip -n "$ns" addr add fd00:171::$n/64 dev eth0 nodad
  ip -n "$ns" link set eth0 up
done

wg genkey > "$dir/a.key"
wg genkey > "$dir/b.key"
wg genpsk > "$dir/psk"
apub=$(wg pubkey < "$dir/a.key")
bpub=$(wg pubkey < "$dir/b.key")
DA=${p}A0 DB=${p}B0 # interface names (the sockets in /var/run/wireguard are global)

# up NS DEV N: inner addresses and link up, as wg-quick would.
up() {
  ip -n "$1" addr add 198.19.171.$3/24 dev "$2"
  ip -n "$1" addr add fd00:1711::$3/64 dev "$2" nodad
  ip -n "$1" link set "$2" up
}
# configure DEV_A DEV_B: keys, preshared key, ports, allowed IPs of both inner families;
# A knows B's endpoint over IPv4, B learns A's.
configure() {
  in_a wg set "$1" private-key "$dir/a.key" listen-port 51801 \
    peer "$bpub" preshared-key "$dir/psk" allowed-ips 198.19.171.2/32,fd00:1711::2/128 endpoint 198.18.171.2:51802
  in_b wg set "$2" private-key "$dir/b.key" listen-port 51802 \
    peer "$apub" preshared-key "$dir/psk" allowed-ips 198.19.171.1/32,fd00:1711::1/128
}
pings() {  # pings: both inner families, A to B
  in_a ping -c 2 -i 0.2 -W 2 198.19.171.2 > /dev/null 2>&1 && in_a ping -6 -c 2 -i 0.2 -W 2 fd00:1711::2 > /dev/null 2>&1
}
wait_ping() {  # the first packets wait for the handshake
  local _
  for _ in 1 2 3 4 5; do in_a ping -c 1 -W 2 198.19.171.2 > /dev/null 2>&1 && return 0; done
  return 1
}
iperf() {  # iperf NAME DEST [iperf3 options]: BYTES from A to B; sets iperf_detail, and
  # for UDP tunnel_lost: the percentage of datagrams sent that B's TUN never delivered (lost
  # by the tunnel: either duetd, the TUN queues or the path), as opposed to those iperf3's
  # own receiving socket dropped when the receiver fell behind on a busy machine
  local name=$1 dest=$2 rx0
  shift 2
  in_b iperf3 -s -1 -p 5211 > "$dir/iperf-s.log" 2>&1 &
  local srv=$!
  sleep 0.3
  rx0=$(in_b cat "/sys/class/net/$DB/statistics/rx_packets")
  if timeout 120 ip netns exec "$A" iperf3 -c "$dest" -p 5211 -n "$bytes" -J "$@" > "$dir/iperf.json" 2> "$dir/iperf.log"; then
    wait $srv
    local rx=$(($(in_b cat "/sys/class/net/$DB/statistics/rx_packets") - rx0))
    tunnel_lost=$(jq --argjson rx $rx '.end.sum_sent.packets // 0 | if . > 0 then ([. - $rx, 0] | max) * 100 / . else 0 end' "$dir/iperf.json" 2> /dev/null || echo 100)
    iperf_detail=$(jq -r --argjson t "${tunnel_lost:-100}" '.end | (.sum_received // .sum) as $s | "\($s.bits_per_second / 1e6 | floor) Mbit/s" + (if $s.lost_percent then ", tunnel lost \($t * 100 | floor / 100)%, iperf3 lost \($s.lost_percent * 100 | floor / 100)%" else "" end)' "$dir/iperf.json" 2> /dev/null)
    return 0
  fi
  iperf_detail=$(tail -n 3 "$dir/iperf.log")
  kill $srv 2> /dev/null
  return 1
}
bulk() {  # bulk LABEL: TCP and UDP, both inner families
  local label=$1 d
  for fam in 4 6; do
    d=198.19.171.2
    [[ $fam == 6 ]] && d=fd00:1711::2
    iperf "$label" "$d"
    report "$label: iperf3 TCP $bytes over inner IPv$fam" $(($? == 0)) "$iperf_detail"
    # iperf3's own loss counts datagrams its receiving socket dropped while the receiver
    # waited for a CPU (2 cores, 4 busy processes); the tunnel is judged by what it lost
    iperf "$label" "$d" -u -b "$udp_rate" -l 1300 && jq -en "$tunnel_lost < 5" > /dev/null
    report "$label: iperf3 UDP $bytes at $udp_rate over inner IPv$fam, under 5% lost in the tunnel" $(($? == 0)) "$iperf_detail"
  done
}

# --- 1. two duetd started as wireguard-go is, configured with wg set ---------------------
in_a "$duetd" "$DA" > "$dir/duetd-a.log" 2>&1
ok=$?
in_b "$duetd" "$DB" > "$dir/duetd-b.log" 2>&1
[[ $ok -eq 0 && $? -eq 0 ]] && ip -n "$A" link show "$DA" > /dev/null 2>&1
report "duetd IFNAME returns once the interface exists" $(($? == 0))
perm=$(stat -c '%A %U' "/var/run/wireguard/$DA.sock" 2> /dev/null)
report "the configuration socket is root's alone" $([[ $perm == "srwx------ root" ]] && echo 1 || echo 0) "$perm"
configure "$DA" "$DB"
up "$A" "$DA" 1
up "$B" "$DB" 2
wait_ping && pings
report "wg set: keys, preshared key, ports, allowed IPs; ping both inner families" $(($? == 0))
flood=$(in_a ping -f -c 2000 -w 20 198.19.171.2 2>&1 | grep -o '[0-9]* received')
report "ping flood" $([[ ${flood% received} -ge 1990 ]] && echo 1 || echo 0) "2000 sent, $flood"
ep=$(in_b wg show "$DB" endpoints | awk '{print $2}')
report "wg show on B: A's endpoint learned" $([[ $ep == 198.18.171.1:51801 ]] && echo 1 || echo 0) "$ep"
hs=$(in_b wg show "$DB" latest-handshakes | awk '{print $2}')
report "wg show: latest handshake" $([[ ${hs:-0} -gt 1700000000 ]] && echo 1 || echo 0) "$hs"
conf=$(in_a wg showconf "$DA")
grep -q "PresharedKey = $(cat "$dir/psk")" <<< "$conf" && grep -q "Endpoint = 198.18.171.2:51802" <<< "$conf"
report "wg showconf" $(($? == 0))

# Counters: what the TUN sent and what wg counts agree (a data message is the packet,
# padded to 16, plus 32 bytes; handshakes and keepalives add a little).
tun_tx0=$(in_a cat /sys/class/net/$DA/statistics/tx_bytes)
wg_tx0=$(in_a wg show "$DA" transfer | awk '{print $3}')
in_a ping -c 50 -i 0.01 -s 1000 198.19.171.2 > /dev/null 2>&1
tun_rx=$(($(in_a cat /sys/class/net/$DA/statistics/rx_bytes)))
tun_tx=$(($(in_a cat /sys/class/net/$DA/statistics/tx_bytes) - tun_tx0))
wg_tx=$(($(in_a wg show "$DA" transfer | awk '{print $3}') - wg_tx0))
report "ip -s link and wg transfer agree" $([[ $wg_tx -ge $tun_tx && $wg_tx -le $((tun_tx + 50 * 48 + 512)) ]] && echo 1 || echo 0) \
  "TUN sent $tun_tx bytes, wg counts $wg_tx sent"

bulk "duetd-duetd"

# The endpoint over IPv6; B follows (roaming), and wg show says so.
in_a wg set "$DA" peer "$bpub" endpoint "[fd00:171::2]:51802"
pings
ep=$(in_b wg show "$DB" endpoints | awk '{print $2}')
report "endpoint moved to IPv6; B roams with A" $([[ $ep == "[fd00:171::1]:51801" ]] && echo 1 || echo 0) "B sees $ep"
# A's listen port changed at run time: B follows A's new port.
in_a wg set "$DA" listen-port 51811
pings
ep=$(in_b wg show "$DB" endpoints | awk '{print $2}')
report "listen-port changed at run time; B follows" $([[ $ep == "[fd00:171::1]:51811" ]] && echo 1 || echo 0) "B sees $ep"

# Replies leave from the address the peer reached: B gets a second address, which is not
# the one its routes prefer (a secondary IPv4 address; a deprecated IPv6 one), so answering
# from the route's choice would make A roam to that. Then the address is removed: B's next
# packets leave from its other address at once, and A follows.
for fam in 4 6; do
  if [[ $fam == 4 ]]; then
    second=198.18.171.12/24 first=198.18.171.2 fmt=%s
    in_b ip addr add "$second" dev eth0
  else
    second=fd00:171::12/64 first=fd00:171::2 fmt=[%s]
    in_b ip addr add "$second" dev eth0 nodad preferred_lft 0
  fi
  in_a wg set "$DA" peer "$bpub" endpoint "$(printf $fmt ${second%/*}):51802"
  pings && pings
  ep=$(in_a wg show "$DA" endpoints | awk '{print $2}')
  report "IPv$fam: B answers from the address A reached, not its preferred one" \
    $([[ $ep == "$(printf $fmt ${second%/*}):51802" ]] && echo 1 || echo 0) "A sees B at $ep"
  in_b ip addr del "$second" dev eth0
  back=$(in_b ping -c 3 -i 0.2 -W 2 198.19.171.1 2>&1 | grep -o '[0-9]* received')
  ep=$(in_a wg show "$DA" endpoints | awk '{print $2}')
  report "IPv$fam: that address removed, B's packets leave from its other one at once" \
    $([[ ${back% received} -eq 3 && $ep == "$(printf $fmt $first):51802" ]] && echo 1 || echo 0) \
    "3 pings from B, $back; A sees B at $ep"
done

# Cryptokey routing: a source outside B's allowed IPs at A is dropped...
in_b ip addr add 198.19.172.2/32 dev "$DB"
in_b wg set "$DB" peer "$apub" allowed-ips 198.19.171.1/32,fd00:1711::1/128,198.19.172.1/32
in_a ip route add 198.19.172.0/24 dev "$DA"
in_b ping -c 2 -W 1 -I 198.19.172.2 198.19.171.1 > /dev/null 2>&1
report "a packet from outside the sender's allowed IPs is dropped" $(($? != 0))
# ...and a more specific prefix on another peer takes traffic away from the first: B holds
# the /24, a third peer (C, never reachable) is given B's /32, then removed again.
in_a wg set "$DA" peer "$bpub" allowed-ips 198.19.171.0/24,fd00:1711::/64
cpub=$(wg genkey | wg pubkey)
in_a wg set "$DA" peer "$cpub" allowed-ips 198.19.171.2/32
in_a ping -c 1 -W 1 198.19.171.2 > /dev/null 2>&1
gone=$?
in_a wg set "$DA" peer "$cpub" remove
in_a ping -c 1 -W 2 198.19.171.2 > /dev/null 2>&1
report "a more specific prefix on another peer takes the traffic; removed, it comes back" $(($? == 0 && gone != 0))

# The MTU raised at run time on both sides: big packets cross (the outer datagrams fragment).
in_a ip link set "$DA" mtu 9000
in_b ip link set "$DB" mtu 9000
in_a ping -c 2 -W 2 -M do -s 8000 198.19.171.2 > /dev/null 2>&1 && in_a ping -6 -c 2 -W 2 -M do -s 8000 fd00:1711::2 > /dev/null 2>&1
report "MTU 9000: 8000-byte pings both families" $(($? == 0))
bulk "duetd-duetd mtu 9000, outer IPv6"
in_a wg set "$DA" peer "$bpub" endpoint 198.18.171.2:51802
pings
bulk "duetd-duetd mtu 9000, outer IPv4"
# Far beyond: 30 000 (an outer datagram of 20 fragments), then below the default.
in_a ip link set "$DA" mtu 30000
in_b ip link set "$DB" mtu 30000
in_a ping -c 2 -W 2 -M do -s 29000 198.19.171.2 > /dev/null 2>&1 && in_a ping -6 -c 2 -W 2 -M do -s 29000 fd00:1711::2 > /dev/null 2>&1
report "MTU 30000: 29000-byte pings both families" $(($? == 0))
in_a ip link set "$DA" mtu 1280
in_b ip link set "$DB" mtu 1280
in_a ping -c 2 -W 2 -M do -s 1252 198.19.171.2 > /dev/null 2>&1 && ! in_a ping -c 1 -W 1 -M do -s 1300 198.19.171.2 > /dev/null 2>&1
report "MTU lowered to 1280: full-size pings cross, bigger ones are refused" $(($? == 0))
in_a ip link set "$DA" mtu 1420
in_b ip link set "$DB" mtu 1420

# The configuration socket under bad input: an errno or a closed connection, nothing
# half-applied, the tunnel unharmed.
sock=/var/run/wireguard/$DA.sock
r1=$(printf 'set=1\nlisten_port\n\n' | timeout 5 socat - UNIX-CONNECT:$sock | head -1)
r2=$(printf 'set=1\nfrobnicate=1\n\n' | timeout 5 socat - UNIX-CONNECT:$sock | head -1)
dpub=$(wg genkey | wg pubkey | base64 -d | od -An -tx1 | tr -d ' \n')
r3=$(printf 'set=1\npublic_key=%s\nallowed_ip=198.19.99.0/24\nendpoint=not-an-endpoint\n\n' "$dpub" | timeout 5 socat - UNIX-CONNECT:$sock | head -1)
peers=$(in_a wg show "$DA" peers | wc -l)
head -c 40000000 /dev/zero | tr '\0' 'a' | sed '1s/^/set=1\n/' | timeout 10 socat -u - UNIX-CONNECT:$sock 2> /dev/null
timeout 5 socat - UNIX-CONNECT:$sock <<< "" > /dev/null 2>&1 &
pings
report "bad requests: errno answers, nothing half-applied, tunnel unharmed" \
  $([[ $r1 == errno=-71 && $r2 == errno=-22 && $r3 == errno=-22 && $peers -eq 1 ]] && pings && echo 1 || echo 0) \
  "$r1 $r2 $r3, peers $peers"

# Moving the interface to another namespace: duetd and its UDP socket stay in A.
ip netns add "$X"
in_a ip link set "$DA" netns "$X"
ip -n "$X" addr add 198.19.171.1/24 dev "$DA"
ip -n "$X" addr add fd00:1711::1/64 dev "$DA" nodad
ip -n "$X" link set "$DA" up
ip netns exec "$X" ping -c 2 -W 2 198.19.171.2 > /dev/null 2>&1
report "the interface moved to another namespace still carries traffic" $(($? == 0))

# Deleting the interface ends duetd and removes its socket.
ip -n "$X" link del "$DA"
sleep 0.5
ended=1
pgrep -f "duetd $DA" > /dev/null && ended=0
[[ -e /var/run/wireguard/$DA.sock ]] && ended=0
report "ip link del ends duetd and removes its socket" $ended

# --- 2. duetd (A) and wireguard-go (B) -----------------------------------------------------
in_b ip link del "$DB"
sleep 0.3
in_a "$duetd" "$DA" > "$dir/duetd-a.log" 2>&1
in_b env LOG_LEVEL=error wireguard-go "$DB" > "$dir/wireguard-go.log" 2>&1
configure "$DA" "$DB"
up "$A" "$DA" 1
up "$B" "$DB" 2
wait_ping && pings
report "duetd with wireguard-go, both configured with wg" $(($? == 0))
bulk "duetd-wireguard-go"
in_a ip link set "$DA" mtu 9000
in_b ip link set "$DB" mtu 9000
in_a ping -c 2 -W 2 -M do -s 8000 198.19.171.2 > /dev/null 2>&1
report "duetd-wireguard-go MTU 9000: 8000-byte pings" $(($? == 0))
bulk "duetd-wireguard-go mtu 9000"
in_a ip link del "$DA"
in_b ip link del "$DB"
sleep 0.3

# --- 3. wg-quick brings duetd up (and down) -------------------------------------------------
in_b "$duetd" "$DB" > "$dir/duetd-b.log" 2>&1
in_b wg set "$DB" private-key "$dir/b.key" listen-port 51802 peer "$apub" allowed-ips 198.19.171.1/32,fd00:1711::1/128
up "$B" "$DB" 2
mkdir -p "$dir/wgq"
cat > "$dir/wgq/$DA.conf" << EOF
[Interface]
PrivateKey = $(cat "$dir/a.key")
ListenPort = 51801
Address = 198.19.171.1/24, fd00:1711::1/64

[Peer]
PublicKey = $bpub
AllowedIPs = 198.19.171.2/32, fd00:1711::2/128
Endpoint = 198.18.171.2:51802
PersistentKeepalive = 1
EOF
chmod 600 "$dir/wgq/$DA.conf"
in_a env WG_QUICK_USERSPACE_IMPLEMENTATION="$duetd" wg-quick up "$dir/wgq/$DA.conf" > "$dir/wg-quick.log" 2>&1
wait_ping && pings
report "wg-quick up with duetd as the userspace implementation" $(($? == 0))
sleep 2.2
hs=$(in_b wg show "$DB" latest-handshakes | awk '{print $2}')
report "PersistentKeepalive from wg-quick's file: B hears A unprompted" $([[ ${hs:-0} -gt 0 ]] && echo 1 || echo 0)
in_a wg-quick down "$dir/wgq/$DA.conf" >> "$dir/wg-quick.log" 2>&1
sleep 0.5
ended=1
pgrep -f "duetd $DA" > /dev/null && ended=0
[[ -e /var/run/wireguard/$DA.sock ]] && ended=0
report "wg-quick down ends duetd" $ended

# --- 4. big configurations through wg setconf, addconf and syncconf ------------------------
in_a "$duetd" "$DA" > "$dir/duetd-a.log" 2>&1
{
  printf '[Interface]\nPrivateKey = %s\nListenPort = 51801\n\n[Peer]\nPublicKey = %s\nAllowedIPs = ' "$(cat "$dir/a.key")" "$bpub"
  awk 'BEGIN { for (i = 0; i < 130000; i++) printf "%s198.%d.%d.%d/32", (i ? ", " : ""), 18 + int(i / 65536), int(i / 256) % 256, i % 256; print "" }'
} > "$dir/big.conf"
in_a wg setconf "$DA" "$dir/big.conf"
n=$(in_a wg show "$DA" allowed-ips | wc -w)
report "wg setconf with 130 000 allowed IPs, read back whole" $([[ $n -eq 130001 ]] && echo 1 || echo 0) "$((n - 1)) read back"
{
  printf '[Interface]\nPrivateKey = %s\n' "$(cat "$dir/a.key")"
  for i in $(seq 0 39); do
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = ' "$(wg genkey | wg pubkey)"
    awk -v p="$i" 'BEGIN { for (j = 0; j < 52; j++) printf "%sfd00:%x:%x::/48", (j ? ", " : ""), 4000 + p, j; print "" }'
  done
} > "$dir/forty.conf"
in_a wg syncconf "$DA" "$dir/forty.conf"
peers=$(in_a wg show "$DA" peers | wc -l)
n=$(in_a wg show "$DA" allowed-ips | awk '{ n += NF - 1 } END { print n }')
report "wg syncconf: 40 peers of 52 prefixes" $([[ $peers -eq 40 && $n -eq 2080 ]] && echo 1 || echo 0) "$peers peers, $n prefixes"
printf '[Peer]\nPublicKey = %s\nAllowedIPs = 198.19.171.2/32\n' "$bpub" > "$dir/add.conf"
in_a wg addconf "$DA" "$dir/add.conf"
peers=$(in_a wg show "$DA" peers | wc -l)
report "wg addconf adds a peer to them" $([[ $peers -eq 41 ]] && echo 1 || echo 0) "$peers peers"
in_a ip link del "$DA"

# --- 5. persistent keepalive keeps a NAT mapping open -----------------------------------------
#   C 198.18.172.2 ── R (masquerade, UDP conntrack 2 s) 198.18.173.1 ── B 198.18.173.2
# B knows C only by what reaches it through the NAT; it can reach C later only while C's
# keepalives keep the mapping alive.
if command -v nft > /dev/null; then
  ip netns add "$C"
  ip netns add "$R"
  ip link add "${p}c" type veth peer name "${p}r0"
  ip link add "${p}r1" type veth peer name "${p}b1"
  ip link set "${p}c" netns "$C"
  ip link set "${p}r0" netns "$R"
  ip link set "${p}r1" netns "$R"
  ip link set "${p}b1" netns "$B"
  ip -n "$C" link set lo up
  ip -n "$C" link set "${p}c" name eth0 up
  ip -n "$C" addr add 198.18.172.2/24 dev eth0
  ip -n "$C" route add default via 198.18.172.1
  ip -n "$R" link set "${p}r0" name eth0 up
  ip -n "$R" link set "${p}r1" name eth1 up
  ip -n "$R" addr add 198.18.172.1/24 dev eth0
  ip -n "$R" addr add 198.18.173.1/24 dev eth1
  ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$B" link set "${p}b1" name eth1 up
  ip -n "$B" addr add 198.18.173.2/24 dev eth1
  ip netns exec "$R" nft -f - << 'NFT'
table ip nat {
  chain post { type nat hook postrouting priority 100; oifname "eth1" masquerade; }
}
NFT
  ip netns exec "$R" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 net.netfilter.nf_conntrack_udp_timeout_stream=2
  DC=${p}C0
  in_b "$duetd" "$DB" > "$dir/duetd-b.log" 2>&1
  in_b wg set "$DB" private-key "$dir/b.key" listen-port 51802 peer "$apub" allowed-ips 198.19.171.1/32
  up "$B" "$DB" 2
  ip netns exec "$C" "$duetd" "$DC" > "$dir/duetd-c.log" 2>&1
  ip netns exec "$C" wg set "$DC" private-key "$dir/a.key" peer "$bpub" allowed-ips 198.19.171.0/24 \
    endpoint 198.18.173.2:51802 persistent-keepalive 1
  up "$C" "$DC" 1
  ip netns exec "$C" ping -c 1 -W 2 198.19.171.2 > /dev/null 2>&1
  sleep 6  # idle three times the conntrack timeout
  in_b ping -c 2 -W 2 198.19.171.1 > /dev/null 2>&1
  kept=$?
  ip netns exec "$C" wg set "$DC" peer "$bpub" persistent-keepalive 0
  sleep 16  # past WireGuard's passive keepalive (10 s) and the conntrack timeout
  in_b ping -c 2 -W 2 198.19.171.1 > /dev/null 2>&1
  lost=$?
  report "persistent keepalive keeps a NAT mapping open (and without it the mapping expires)" \
    $(((kept == 0) && (lost != 0))) "with: $( ((kept == 0)) && echo reachable || echo unreachable); without: $( ((lost == 0)) && echo reachable || echo unreachable)"
  ip -n "$C" link del "$DC"
  ip -n "$B" link del "$DB"
else
  report "persistent keepalive through NAT (needs nft)" 0
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
