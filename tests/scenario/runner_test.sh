#!/usr/bin/env bash
# The scenario runner's own tests: every expectation must be able to fail, invalid files
# are named with file and line (exit 2), and nondeterminism is caught (exit 3).
# Usage: runner_test.sh PATH/TO/duet-sim [SEEDS]   (SEEDS: the swarm of the --jobs check, 20)
set -u
sim=$1 seeds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0
check() { if "$@"; then passed=$((passed+1)); else failed=$((failed+1)); fi; }

# 1. Each sentence in the failing scenario is reported as failed, and the run exits 1.
f="$here/failing/every-sentence-can-fail.toml"
out=$("$sim" run "$f"); rc=$?
want=$(grep -cE '^  "' "$f")
got=$(grep -c 'expected (line' <<<"$out")
check test "$rc" -eq 1 || echo "FAIL failing scenario: exit $rc, wanted 1"
if [[ $got -eq $want ]]; then passed=$((passed+1)); echo "ok   all $want expectations failed as they must"
else failed=$((failed+1)); echo "FAIL only $got of $want expectations failed:"; echo "$out" | sed 's/^/    /'; fi
grep -q "replay: duet-sim run $f --seed 1" <<<"$out" && { passed=$((passed+1)); echo "ok   replay command printed"; } || { failed=$((failed+1)); echo "FAIL no replay command"; }

# 2. Invalid scenario files: exit 2, and the error names the file and a line.
declare -A line=([bad-toml]=2 [unknown-key]=3 [unknown-host]=6 [bad-sentence]=4 [bad-duration]=2 [bad-route]=6 [unknown-instance]=2)
for name in "${!line[@]}"; do
  out=$("$sim" run "$here/invalid/$name.toml"); rc=$?
  if [[ $rc -eq 2 ]] && grep -q "INVALID $here/invalid/$name.toml:${line[$name]}:" <<<"$out"; then
    passed=$((passed+1)); echo "ok   invalid/$name.toml: exit 2 at line ${line[$name]}"
  else
    failed=$((failed+1)); echo "FAIL invalid/$name.toml: exit $rc, wanted 2 and line ${line[$name]}"; echo "$out" | sed 's/^/    /'
  fi
done

# 3. Nondeterminism: the checker's self-test changes the second run's seed.
out=$("$sim" run "$here/../../sim/scenarios/19-failover-udp.toml" --check-determinism --self-test-perturb); rc=$?
if [[ $rc -eq 3 ]] && grep -q "traces differ first at line" <<<"$out"; then
  passed=$((passed+1)); echo "ok   nondeterminism detected (exit 3)"
else
  failed=$((failed+1)); echo "FAIL nondeterminism: exit $rc"; echo "$out" | sed 's/^/    /'
fi

# 4. A missing path is an error, not a silent pass.
"$sim" run /nonexistent/scenarios >/dev/null 2>&1; rc=$?
check test "$rc" -eq 2 && echo "ok   missing path: exit 2" || echo "FAIL missing path: exit $rc"

# 5. --jobs changes nothing but speed: the same verdicts and failing seeds with 1 and 2 jobs.
lib="$here/../../sim/scenarios"
verdicts() { grep -v wall_ms | grep -v wall_s; }
one=$("$sim" run "$lib" "$f" --swarm "$seeds" -j 1 --json | verdicts)
two=$("$sim" run "$lib" "$f" --swarm "$seeds" -j 2 --json | verdicts)
if [[ "$one" == "$two" ]]; then passed=$((passed+1)); echo "ok   --jobs 1 and 2 give the same results"
else failed=$((failed+1)); echo "FAIL --jobs 1 and 2 differ:"; diff <(echo "$one") <(echo "$two") | head -20; fi

# 6. A swarm split by --seeds and merged gives the verdict of one run (a failure keeps its seed).
tmp=$(mktemp -d)
"$sim" run "$lib/02-v6-blackhole-udp.toml" "$f" --swarm 1 --seeds 1..10 --json > "$tmp/a.json"
"$sim" run "$lib/02-v6-blackhole-udp.toml" "$f" --swarm 1 --seeds 11..20 --json > "$tmp/b.json"
out=$("$sim" merge "$tmp/a.json" "$tmp/b.json"); rc=$?
rm -rf "$tmp"
if [[ $rc -eq 1 ]] && grep -q "^PASS .*(20 seeds in 2 parts)" <<<"$out" && grep -q "^FAIL .*(20 seeds in 2 parts)" <<<"$out" \
   && grep -q "replay: duet-sim run $f --seed 1 --swarm 1" <<<"$out" && grep -q "1 passed, 1 failed" <<<"$out"; then
  passed=$((passed+1)); echo "ok   merged parts: one pass, one failure with its first seed (exit 1)"
else
  failed=$((failed+1)); echo "FAIL merge: exit $rc"; echo "$out" | head -20 | sed 's/^/    /'
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
