#!/usr/bin/env bash
# duet-testbed report counts what is within issue 16's bound (10 % of the simulator's time
# or 5 ms), and judges a run on random links against the simulator's range over seeds.
# Usage: report_test.sh PATH/TO/duet-testbed
set -u
tb=$1
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
move() {  # move SENTENCE SIM_MS KERNEL_MS [RANGE_JSON]
  printf '{"sentence":"%s","kernel":true,"kernel_detail":"reconnected to X %s ms after the fault","sim":true,"sim_detail":"reconnected to X %s ms after the fault"%s}' \
    "$1" "$3" "$2" "${4:+,\"sim_range\":$4}"
}
cat > "$runs" <<JSON
{"scenario":"s/19-a.toml","sim_passed":true,"kernel_passed":true,"expectations":[$(move "c reconnects within 1s after 5s" 801.0 786.0),$(move "d reconnects within 1s after 5s" 30.0 36.0)],"instances":[{"name":"c","sim":"after 21 ms","kernel":"IPv6/udp after 26 ms"},{"name":"d","sim":"after 41 ms","kernel":"IPv6/tcp after 47 ms"}]}
{"scenario":"s/32-b.toml","sim_passed":true,"kernel_passed":true,"expectations":[$(move "e reconnects within 22s after 30s" 8071.0 9000.0 '{"min_ms":8071,"max_ms":9071,"seeds":20}'),$(move "f reconnects within 22s after 30s" 8071.0 12000.0 '{"min_ms":8071,"max_ms":9071,"seeds":20}')],"instances":[]}
{"scenario":"s/05-c.toml","simulator_only":"an answer order glibc would change"}
JSON
out=$("$tb" report "$runs")
passed=0 failed=0
expect() {  # expect WHAT PATTERN
  if grep -qF -- "$2" <<< "$out"; then passed=$((passed + 1)); echo "ok   $1"; else
    failed=$((failed + 1)); echo "FAIL $1: no '$2' in:"; echo "$out"; fi
}
expect "a first connection 5 ms late is within, 6 ms late is not" "First connections: 1 of 2 within"
expect "moves within 5 ms or 10 %, or inside the seeds' range, count" 'failovers (`reconnects` sentences): 2 of 4'
expect "the 6 ms miss is named" "- 19, d's first connection: simulator 41 ms, kernel 47 ms"
expect "a miss against the range names the range" '- 32, "f reconnects within 22s after 30s": simulator 8071 ms (20 seeds: 8071-9071 ms), kernel 12000 ms'
expect "a 6 ms late ICMP move is a miss" '- 19, "d reconnects within 1s after 5s": simulator 30 ms, kernel 36 ms'
expect "simulator-only scenarios are listed" "1 simulator-only"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
