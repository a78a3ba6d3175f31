#!/usr/bin/env bash
# The testbed's link emulator against what it is asked for: two namespaces joined through a
# third where `duet-testbed link` relays frames; a scenario file per case gives the link.
# Delay (ping round trips), loss (the share of 1 000 pings lost), duplication (DUP! replies),
# a rate (iperf3 TCP), MTU (a ping that fits, one that does not), and that the emulator stops
# and reports on SIGTERM. Usage: link_emulator_test.sh DUET_TESTBED (root; removed on exit).
set -u
tb=$1
p=le$$ A=le$$_a B=le$$_b K=le$$_k
dir=$(mktemp -d)
emu=
cleanup() {
  [[ -n $emu ]] && kill "$emu" 2>/dev/null
  wait 2>/dev/null
  for ns in $A $B $K; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
[[ $(id -u) -eq 0 ]] || { echo "0 passed, 1 failed"; echo "needs root"; exit 1; }
passed=0 failed=0
check() {  # check NAME OK DETAILS
  if [[ $2 -eq 1 ]]; then echo "ok   $1 ($3)"; passed=$((passed + 1)); else
    echo "FAIL $1 ($3)"; failed=$((failed + 1)); [[ -f $dir/emu.log ]] && cat "$dir/emu.log"
  fi
}

for ns in $A $B $K; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip netns exec $K sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add ${p}a type veth peer name ${p}x
ip link add ${p}b type veth peer name ${p}y
ip link set ${p}a netns $A; ip link set ${p}b netns $B
ip link set ${p}x netns $K; ip link set ${p}y netns $K
ip -n $K link set ${p}x up; ip -n $K link set ${p}y up
ip -n $A link set ${p}a up; ip -n $B link set ${p}b up
ip -n $A addr add 198.18.160.1/24 dev ${p}a; ip -n $B addr add 198.18.160.2/24 dev ${p}b

# link LINE...: (re)starts the emulator with a scenario whose one link has these settings.
link() {
  [[ -n $emu ]] && { kill "$emu"; wait "$emu" 2>/dev/null; }
  { printf 'name = "link"\nexpect = ["a starts"]\n[[host]]\nname = "a"\n[[host]]\nname = "b"\n'
    printf '[[link]]\nbetween = ["a:eth0", "b:eth0"]\n'; printf '%s\n' "$@"; } > "$dir/link.toml"
  ip netns exec $K "$tb" link "$dir/link.toml" 0 ${p}x ${p}y 7 2> "$dir/emu.log" &
  emu=$!
  sleep 0.3
}
# pings COUNT INTERVAL [SIZE]: ping's summary lines
pings() { ip netns exec $A ping -n -q -c "$1" -i "$2" -W 1 ${3:+-s $3} ${3:+-M do} 198.18.160.2 2>&1; }

link 'delay = "10ms"'
out=$(pings 50 0.02)
avg=$(sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p' <<< "$out")
got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<< "$out")
check "delay 10 ms each way: round trips of 20 ms" "$(awk -v a="${avg:-0}" 'BEGIN{print (a >= 19.5 && a <= 23) ? 1 : 0}')" "avg ${avg:-?} ms"
check "no loss asked, none seen" "$([[ $got == 50 ]] && echo 1 || echo 0)" "$got of 50 answered"

link 'delay = "1ms"' 'loss = 0.1'
out=$(pings 1000 0.005)
got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<< "$out")
# 10 % each way: 81 % of round trips survive (binomial, 1 000 tries: 3 sigma is 3.7 %).
check "loss 0.1 each way: about 81 % of pings answered" "$(awk -v g="${got:-0}" 'BEGIN{print (g >= 770 && g <= 850) ? 1 : 0}')" "${got:-?} of 1000"

link 'delay = "1ms"' 'duplicate = 0.5'
dups=$(pings 200 0.01 | sed -n 's/.*+\([0-9]*\) duplicates.*/\1/p')
# Each way 50 %: a request and its reply may both be duplicated (expected 250 of 200).
check "duplicate 0.5: duplicate replies" "$(awk -v d="${dups:-0}" 'BEGIN{print (d >= 150 && d <= 350) ? 1 : 0}')" "${dups:-0} duplicates"

link 'delay = "1ms"' 'bandwidth_bps = 20000000'
if command -v iperf3 >/dev/null; then
  ip netns exec $B iperf3 -s -1 -D >/dev/null 2>&1; sleep 0.3
  rate=$(ip netns exec $A iperf3 -c 198.18.160.2 -t 2 -J 2>/dev/null |
    python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' 2>/dev/null)
  check "rate 20 Mbit/s: TCP gets close to it and no more" "$(awk -v r="${rate:-0}" 'BEGIN{print (r >= 14 && r <= 20.5) ? 1 : 0}')" "${rate:-?} Mbit/s"
fi

# MTU: the plan sets it on the interfaces; the emulator carries what fits.
ip -n $A link set ${p}a mtu 1280; ip -n $K link set ${p}x mtu 1280; ip -n $K link set ${p}y mtu 1280; ip -n $B link set ${p}b mtu 1280
link 'delay = "1ms"' 'mtu = 1280'
fits=$(pings 3 0.1 1252 | sed -n 's/.* \([0-9]*\) received.*/\1/p')
too=$(pings 1 0.1 1300 | sed -n 's/.* \([0-9]*\) received.*/\1/p')
check "MTU 1280: a 1280-byte packet crosses, a larger one does not" "$([[ $fits == 3 && $too == 0 ]] && echo 1 || echo 0)" "$fits of 3 fit; larger: ${too:-?} of 1"

kill "$emu"; wait "$emu" 2>/dev/null; emu=
check "SIGTERM: the emulator reports what it did and ends" "$(grep -c 'frames in' "$dir/emu.log" | awk '{print ($1 == 2) ? 1 : 0}')" "$(head -1 "$dir/emu.log")"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
