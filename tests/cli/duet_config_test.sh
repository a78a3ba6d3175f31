#!/usr/bin/env bash
# duet-config check as a user runs it: exit status, the plan it prints, its JSON.
# Usage: duet_config_test.sh PATH/TO/duet-config EXAMPLES_DIR
set -u
bin=$1 examples=$2
failed=0 passed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() {  # expect NAME STATUS PATTERN -- ARGS...
  local name=$1 status=$2 pattern=$3; shift 4
  local out rc
  out=$("$bin" "$@" 2>&1); rc=$?
  if [[ $rc -ne $status ]]; then
    echo "FAIL $name: exit $rc, wanted $status"; echo "$out" | sed 's/^/    /'; failed=$((failed+1)); return
  fi
  if ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: output lacks /$pattern/"; echo "$out" | sed 's/^/    /'; failed=$((failed+1)); return
  fi
  echo "ok   $name"; passed=$((passed+1))
}

expect "server plans four sockets" 0 'bind \[::\]:443 +tcp +IPV6_V6ONLY=1' -- check "$examples/server.conf"
expect "server binds IPv4 UDP too" 0 'bind 0\.0\.0\.0:1194 +udp$' -- check "$examples/server.conf"
expect "client is nobind by default" 0 'bind: no \(mode client implies nobind\)' -- check --no-resolve "$examples/client.conf"
expect "client with --bind binds one family" 0 'bind: only the family being connected to, ephemeral port' -- check --no-resolve "$examples/client.conf" --bind
expect "racing off" 0 'no racing: addresses tried strictly in order' -- check --no-resolve "$examples/client.conf" --happy-eyeballs-delay 0
expect "removed proto" 1 "'udp6' is no longer a proto: use 'proto udp' with '--ipv6'" -- check --no-resolve --remote a --proto udp6
expect "ipv4 and ipv6" 1 "'ipv6' contradicts 'ipv4'" -- check --no-resolve --remote a --ipv4 --ipv6
expect "bind/remote error" 1 'bound to IPv4 only, but the remote has only IPv6 addresses \(fd00::1\)' -- check --local 127.0.0.1 --remote fd00::1
expect "bind/remote warning" 0 'will not be used' -- check "$examples/p2p.conf" --local 127.0.0.1
expect "resolved names use the same words (127.1 is a name to duet, IPv4 to getaddrinfo)" 1 'bound to IPv6 only, but the remote has only IPv4 addresses \(127\.0\.0\.1\)' -- check --local ::1 --remote 127.1
expect "unknown directive suggests" 1 "did you mean 'remote'" -- check --no-resolve --remtoe a
expect "usage" 2 'usage: duet-config check' --
printf 'mode server\n<listen>\nproto udp\n</listen>\n<listen>\nproto udp\n</listen>\n' > "$tmp/clash.conf"
expect "listen clash names both lines" 1 'clash.conf:5:1: error: this <listen> would take 0\.0\.0\.0:1194/udp, which the <listen> at .*clash.conf:2:1 already takes' -- check "$tmp/clash.conf"

json=$("$bin" check --json "$examples/server.conf")
if python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["plan"]["listens"]; assert d["ok"] and len(s)==2 and [x["v6only"] for x in s[0]["sockets"]]==[False,True], d' <<<"$json"; then
  echo "ok   json plan"; passed=$((passed+1))
else
  echo "FAIL json plan"; failed=$((failed+1))
fi
json=$("$bin" check --json --no-resolve --proto tcp6)
if python3 -c 'import json,sys; d=json.load(sys.stdin); e=d["diagnostics"][0]; assert not d["ok"] and e["severity"]=="error" and e["line"]==2 and "tcp6" in e["message"], d' <<<"$json"; then
  echo "ok   json errors"; passed=$((passed+1))
else
  echo "FAIL json errors"; failed=$((failed+1))
fi

# duetd --test-config is the same check.
duetd=$(dirname "$bin")/duetd
if [[ -x $duetd ]]; then
  out=$("$duetd" --test-config "$examples/server.conf" 2>&1); rc=$?
  if [[ $rc -eq 0 ]] && grep -qE 'bind \[::\]:443 +tcp +IPV6_V6ONLY=1' <<<"$out"; then
    echo "ok   duetd --test-config prints the same plan"; passed=$((passed+1))
  else
    echo "FAIL duetd --test-config: exit $rc"; echo "$out" | sed 's/^/    /'; failed=$((failed+1))
  fi
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
