#!/bin/sh
# smoke_vm_stats.sh SHADOWFUZZ SMOKE-ARGS...: the smoke run is clean and its "VM stats" line
# reports flooding zaps, pages gone unsync and dirty-log reads, so random programs reach
# those paths.
sf=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$sf" smoke "$@" >"$out"
rc=$?
cat "$out"
[ "$rc" -eq 0 ] || { echo "smoke_vm_stats: smoke exited $rc" >&2; exit 1; }
line=$(grep '^  VM stats:' "$out")
[ -n "$line" ] || { echo "smoke_vm_stats: no VM stats line" >&2; exit 1; }
for what in "flooding zaps" "pages gone unsync" "dirty-log reads"; do
	n=$(printf '%s\n' "$line" | sed -n "s/.* \([0-9][0-9]*\) $what.*/\1/p")
	[ -n "$n" ] && [ "$n" -gt 0 ] || { echo "smoke_vm_stats: no $what in: $line" >&2; exit 1; }
done
