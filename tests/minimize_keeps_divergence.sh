#!/bin/sh
# minimize_keeps_divergence.sh SHADOWFUZZ PROGRAM MAX_OPS ARGS...: the minimised program
# still diverges with ARGS (the planted bug) and passes without it, has at most MAX_OPS
# ops, and minimize refuses to overwrite an existing output.
set -u
sf=$1 program=$2 max_ops=$3
shift 3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "minimize_keeps_divergence: $*" >&2; exit 1; }

"$sf" minimize "$@" "$program" -o "$dir/min.sfp" || fail "minimize failed"
"$sf" run -q "$@" "$dir/min.sfp" >/dev/null; [ $? -eq 1 ] || fail "the minimised program does not diverge"
ops=$(grep -cv '^#\|^$' "$dir/min.sfp")
[ "$ops" -le "$max_ops" ] || fail "$ops ops left, more than $max_ops"
cp "$dir/min.sfp" "$dir/before"
"$sf" minimize "$@" "$program" -o "$dir/min.sfp" 2>"$dir/err"
[ $? -eq 2 ] && grep -q "not overwriting" "$dir/err" || fail "an existing output was not refused"
cmp -s "$dir/min.sfp" "$dir/before" || fail "an existing output was changed"
exit 0
