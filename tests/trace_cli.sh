#!/bin/sh
# trace_cli.sh SHADOWFUZZ B13_PROGRAM ZAP_PROGRAM UNSYNC_PROGRAM: 'shadowfuzz trace' names
# B13's divergence with a disassembled instruction and kvm_mmu_get_page events, passes
# without the bug, writes valid JSON lines, reports the zaps of a memslot delete/move
# program, and names the rule that lets an unsync program's stale answers stand.
set -u
sf=$1 b13=$2 zap=$3 unsync=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "trace_cli: $*" >&2; exit 1; }
has() { grep -qF -- "$2" "$1" || fail "$1 lacks '$2'"; }

"$sf" trace --bug B13 "$b13" > "$dir/b13.txt"; [ $? -eq 1 ] || fail "B13 trace did not exit 1"
has "$dir/b13.txt" "DIVERGENCE (translation) at op 12"
has "$dir/b13.txt" "insn   0x2000: mov al, byte ptr [rdi]"
has "$dir/b13.txt" "kvm_mmu_get_page"
"$sf" trace "$b13" > "$dir/clean.txt" || fail "B13 program diverges without the bug"
has "$dir/clean.txt" "PASS: 14 ops"

"$sf" trace --json --bug B13 "$b13" > "$dir/b13.json"; [ $? -eq 1 ] || fail "--json B13 did not exit 1"
python3 - "$dir/b13.json" <<'PY' || fail "B13 --json output is wrong"
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
events = {o["event"] for o in lines if o["type"] == "event"}
ops = [o for o in lines if o["type"] == "op"]
assert "kvm_mmu_get_page" in events, events
assert len(ops) == 13 and ops[12]["diverged"], ops[-1]
assert ops[10]["access"]["insn"]["text"] == "mov al, byte ptr [rdi]"
assert lines[-1]["type"] == "verdict" and lines[-1]["check"] == "translation"
PY

"$sf" trace --json "$zap" > "$dir/zap.json" || fail "zap program diverges"
python3 - "$dir/zap.json" <<'PY' || fail "no kvm_mmu_prepare_zap_page event for a memslot delete/move"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
zaps = [e for e in events if e.get("event") == "kvm_mmu_prepare_zap_page"]
assert zaps and all("gfn" in e and "level" in e for e in zaps), zaps
PY

"$sf" trace "$unsync" > "$dir/unsync.txt" || fail "unsync program diverges"
has "$dir/unsync.txt" "kvm_mmu_unsync_page"
has "$dir/unsync.txt" "rule   ARCH_STALE_TRANSLATION allowed the model's answer"
"$sf" trace --json "$unsync" | grep -qF '"allowed_by_rule":"ARCH_STALE_TRANSLATION"' ||
	fail "--json does not name the rule"

"$sf" trace --ops 11-12 "$b13" > "$dir/range.txt" || fail "--ops run failed"
[ "$(grep -c "^ *[0-9][0-9]*  [a-z]" "$dir/range.txt")" -eq 2 ] || fail "--ops 11-12 did not show two ops"
exit 0
