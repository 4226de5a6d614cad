#!/bin/sh
# truncated_binary.sh SHADOWFUZZ PROGRAM: a NAME.bin cut inside an op record is refused by
# run, trace and minimize with one line naming the problem and exit 2; the same bytes as a
# fuzzer's input (crash-*) replay, as the fuzz target read them.
set -u
sf=$1 program=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "truncated_binary: $*" >&2; exit 1; }

"$sf" encode --out "$dir" "$program" >/dev/null || fail "encode failed"
bin="$dir/$(basename "${program%.*}").bin"
size=$(wc -c <"$bin")
head -c $((size - 1)) "$bin" >"$dir/cut.bin"
for cmd in run trace "minimize -o $dir/out.sfp"; do
  # shellcheck disable=SC2086
  "$sf" $cmd "$dir/cut.bin" >/dev/null 2>"$dir/err"
  [ $? -eq 2 ] || fail "$cmd accepted a truncated .bin"
  [ "$(wc -l <"$dir/err")" -eq 1 ] && grep -q "cut.bin: truncated" "$dir/err" ||
    fail "$cmd: expected one line naming the truncation, got: $(cat "$dir/err")"
done
cp "$dir/cut.bin" "$dir/crash-cut"
"$sf" run -q "$dir/crash-cut" >/dev/null
[ $? -le 1 ] || fail "a fuzzer input ending inside a record was refused"
exit 0
