#!/bin/sh
# campaign_interrupt.sh SHADOWFUZZ FAKE_ENGINE: Ctrl-C (SIGINT) stops a campaign promptly:
# the engine is stopped, the summary is printed and summary.json written.
set -u
sf=$1 engine=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "campaign_interrupt: $*" >&2; exit 1; }

FAKE_SLEEP=60 "$sf" fuzz --time 60 --target "$engine" --out "$dir/c" >"$dir/out" 2>&1 &
pid=$!
sleep 2
kill -INT "$pid"
for _ in 1 2 3 4 5 6 7 8 9 10; do
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "still running 10 s after Ctrl-C"; }
wait "$pid"
grep -q "campaign interrupted" "$dir/out" || fail "no summary after Ctrl-C: $(cat "$dir/out")"
[ -f "$dir/c/summary.json" ] || fail "no summary.json after Ctrl-C"
pgrep -f "fake_libfuzzer.sh.*$dir" >/dev/null && fail "the engine outlived the campaign"
exit 0
