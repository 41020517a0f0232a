#!/usr/bin/env bash
# Runs the static checks and every test, then prints `N passed, N failed` as the last line. The static
# checks (fmt, lint, type check) count as one test, so a formatting slip is a red build too.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0

echo "==> static checks: deno fmt --check, deno lint, deno check"
if deno task --quiet check; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "==> deno test (real nats-server, real HTTP, real Deno processes)"
log=$(mktemp)
# Four test files at once on this 2-core machine (Deno's default is one per core): most of a file's time is
# spent waiting on its own processes (nats-server restarts, time-outs, a 35 s patience test). With two at once
# the suite took 15 min 15 s; with three, 12 min once and 14 min 44 s when it had grown to 729 tests. Override
# with DENO_JOBS.
# --no-check: the static checks above type-checked every file, the tests with them (`deno check` takes the
# whole workspace); `deno test` checked them again, one core for 16 s before any test ran (16 s user of 36 s
# on a loaded machine, 2026-12-07), and a type error stays a red build through the static checks.
# The long files first (test/run_first.txt), then the rest: Deno keeps the order it is given and skips a file
# named twice, and `.` finds every test file as `deno test` alone would.
first=()
while read -r file; do
  [[ -z "$file" || "$file" == \#* || ! -f "$file" ]] || first+=("$file")
done <test/run_first.txt
DENO_JOBS="${DENO_JOBS:-4}" NO_COLOR=1 deno test -A --no-check --parallel "${first[@]}" . 2>&1 | tee "$log"
code=${PIPESTATUS[0]}
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n1)
if [ -n "$summary" ]; then
  passed=$((passed + $(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")))
  failed=$((failed + $(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")))
elif [ "$code" -ne 0 ]; then
  failed=$((failed + 1))
fi
rm -f "$log"

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] && [ "$code" -eq 0 ]
