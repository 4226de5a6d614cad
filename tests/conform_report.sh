#!/bin/sh
# conform_report.sh SHADOWFUZZ FAKE_ENGINE CORPUS: conform is clean on the unmodified model
# (exit 0, verdict CLEAN), not clean with B13 planted (exit 1, a minimised reproducer in
# the report that still diverges), files the campaign's findings too, and refuses to
# reuse a report directory.
set -u
sf=$1 engine=$2 corpus=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "conform_report: $*" >&2; exit 1; }

"$sf" conform --corpus "$corpus" --time 0 --out "$dir/clean" >"$dir/out" 2>&1 ||
  { cat "$dir/out"; fail "conform on the unmodified model is not clean"; }
grep -q "verdict:  CLEAN" "$dir/clean/report.txt" || fail "clean report lacks the verdict"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["clean"] and r["programs"]["run"] > 50' \
  "$dir/clean/report.json" || fail "report.json is not a clean report of the corpus"

"$sf" conform --corpus "$corpus" --time 0 --bug B13 --out "$dir/b13" >"$dir/out" 2>&1
[ $? -eq 1 ] || { cat "$dir/out"; fail "conform with B13 must exit 1"; }
grep -q "verdict:  NOT CLEAN" "$dir/b13/report.txt" || fail "B13 report is not NOT CLEAN"
grep -q "minimised reproducer" "$dir/b13/report.txt" || fail "B13 report shows no reproducer"
set -- "$dir"/b13/*.min.sfp
[ -f "$1" ] || fail "no reproducer file"
"$sf" run -q --bug B13 "$1" >/dev/null; [ $? -eq 1 ] || fail "the reproducer does not diverge with B13"

"$sf" encode --out "$dir" "$corpus/bugs/S6_cr0_wp_role.sfp" >/dev/null
FAKE_CRASHES="$dir/S6_cr0_wp_role.bin" "$sf" conform --corpus "$corpus" --time 2 --bug S6 \
  --target "$engine" --out "$dir/s6" >"$dir/out" 2>&1
[ $? -eq 1 ] || { cat "$dir/out"; fail "conform with S6 must exit 1"; }
grep -q "DIVERGENCE .* in $dir/s6/campaign/findings/" "$dir/s6/report.txt" ||
  fail "the campaign's finding is not in the report"
[ -n "$(ls "$dir"/s6/campaign-*.min.sfp 2>/dev/null)" ] || fail "no reproducer for the campaign finding"

"$sf" conform --corpus "$corpus" --time 0 --out "$dir/clean" 2>"$dir/err" >/dev/null
[ $? -eq 2 ] && grep -q "never overwritten" "$dir/err" || fail "an existing report directory was reused"
exit 0
