#!/bin/sh
# campaign_findings.sh SHADOWFUZZ FAKE_ENGINE BUG_PROGRAM BUG CLEAN_PROGRAM: the campaign
# supervisor files engine crashes once per divergence signature, keeps findings across
# runs without overwriting them, files crashes whose replay is clean apart, writes a
# summary, and exits 1 when it found something and 0 when not.
set -u
sf=$1 engine=$2 bug_program=$3 bug=$4 clean_program=$5
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "campaign_findings: $*" >&2; exit 1; }

"$sf" encode --out "$dir" "$bug_program" "$clean_program" >/dev/null || fail "encode failed"
crash="$dir/$(basename "${bug_program%.*}").bin"
clean="$dir/$(basename "${clean_program%.*}").bin"

FAKE_CRASHES="$crash $crash" "$sf" fuzz --time 5 --bug "$bug" --target "$engine" --out "$dir/c" \
  >"$dir/out1" 2>&1
[ $? -eq 1 ] || { cat "$dir/out1"; fail "a campaign with findings must exit 1"; }
set -- "$dir"/c/findings/*/report.txt
[ $# -eq 1 ] && [ -f "$1" ] || fail "expected exactly one finding, got: $*"
sig=$(basename "$(dirname "$1")")
grep -q "^DIVERGENCE" "$1" || fail "report does not name the divergence"
grep -q -- "--bug $bug" "$1" || fail "report does not give the model options"
[ -s "$dir/c/findings/$sig/crash-input.bin" ] && [ -s "$dir/c/findings/$sig/program.sfp" ] ||
  fail "finding lacks crash-input.bin or program.sfp"
"$sf" run -q --bug "$bug" "$dir/c/findings/$sig/program.sfp" >/dev/null
[ $? -eq 1 ] || fail "the finding's text program does not reproduce"
grep -q "\"execs\": 1234" "$dir/c/summary.json" || fail "summary.json lacks the engine's execs"
grep -q "2 input(s)" "$dir/out1" || fail "duplicates not counted: $(cat "$dir/out1")"

cp "$1" "$dir/report.before"
FAKE_CRASHES="$crash $clean" "$sf" fuzz --time 5 --bug "$bug" --target "$engine" --out "$dir/c" \
  >"$dir/out2" 2>&1
cmp -s "$1" "$dir/report.before" || fail "a second campaign overwrote a finding"
[ -f "$dir/c/findings/no-divergence-on-replay/report.txt" ] ||
  fail "a crash with a clean replay was not filed apart"

"$sf" fuzz --time 5 --target "$engine" --out "$dir/nested/quiet" >"$dir/out3" 2>&1
[ $? -eq 0 ] || { cat "$dir/out3"; fail "a campaign without findings must exit 0"; }
exit 0
