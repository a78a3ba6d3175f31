#!/usr/bin/env bash
# duetd's command line as a user types it (no root needed: nothing here opens a TUN).
# Usage: duetd_cli_test.sh PATH/TO/duetd EXAMPLES_DIR
set -u
bin=$1 examples=$2
failed=0 passed=0

expect() {  # expect NAME STATUS PATTERN -- ARGS...
  local name=$1 status=$2 pattern=$3; shift 4
  local out rc
  out=$("$bin" "$@" 2>&1 </dev/null); rc=$?
  if [[ $rc -ne $status ]] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: exit $rc (wanted $status), output:"; echo "$out" | sed 's/^/    /'; failed=$((failed + 1)); return
  fi
  echo "ok   $name"; passed=$((passed + 1))
}

expect "--version" 0 '^duetd [0-9]+\.[0-9]+\.[0-9]+$' -- --version
expect "--help" 0 'usage: duetd' -- --help
expect "no arguments: usage, exit 2" 2 'usage: duetd' --
expect "--test-config first" 0 '^ok: 0 errors' -- --test-config --no-resolve "$examples/server.conf"
expect "--test-config after the file" 0 '^ok: 0 errors' -- --config "$examples/server.conf" --test-config --no-resolve
expect "--test-config after a directive" 0 'no racing: addresses tried strictly in order' -- --config "$examples/client.conf" --happy-eyeballs-delay 0 --test-config --no-resolve
expect "a bad directive names its place" 1 "unknown directive 'remot'; did you mean 'remote'" -- --test-config --no-resolve --remot a
expect "an interface name too long for Linux" 2 "is not an interface name" -- -f averyveryverylongname
expect "--start-at wants a number" 2 "--start-at wants milliseconds since 1970, not 'soon'" -- --start-at soon --config x.conf
key=$("$bin" genkey); pub=$("$bin" pubkey <<<"$key")
if [[ ${#key} -eq 44 && ${#pub} -eq 44 && $key != "$pub" ]]; then echo "ok   genkey | pubkey"; passed=$((passed + 1)); else
  echo "FAIL genkey | pubkey: '$key' '$pub'"; failed=$((failed + 1)); fi
expect "pubkey refuses what is not a key" 1 "not a WireGuard private key" -- pubkey

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
