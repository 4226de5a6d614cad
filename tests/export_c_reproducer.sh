#!/bin/sh
# export_c_reproducer.sh SHADOWFUZZ BUILD_DIR SOURCE_DIR PROGRAM BUG: the C reproducer that
# 'export --c' writes compiles against the project's libraries with the build line in its
# header, exits 1 on the divergence, and the text program lands beside it; a second export
# to the same name is refused.
set -u
sf=$1 build=$2 src=$3 program=$4 bug=$5
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "export_c_reproducer: $*" >&2; exit 1; }

"$sf" export --c --bug "$bug" "$program" -o "$dir/repro.c" >/dev/null || fail "export failed"
[ -f "$dir/repro.sfp" ] || fail "no text program beside the C file"
cc -O1 -I"$src/fuzz" -I"$src/core" -I"$src/oracle" "$dir/repro.c" "$build/fuzz/libsf_fuzz.a" "$build/fuzz/libsf_program_codec.a" \
  "$build/oracle/libsf_oracle.a" "$build/core/libsf_core.a" $(pkg-config --libs unicorn) \
  -lpthread -lm -o "$dir/repro" 2>"$dir/cc.err" || { cat "$dir/cc.err"; fail "the reproducer does not compile"; }
"$dir/repro" >"$dir/out"; [ $? -eq 1 ] || fail "the reproducer does not exit 1"
grep -q "^DIVERGENCE" "$dir/out" || fail "the reproducer does not print the divergence"
"$sf" export --c "$program" -o "$dir/repro.c" 2>"$dir/err"
[ $? -eq 2 ] && grep -q "not overwriting" "$dir/err" || fail "an existing reproducer was not refused"
exit 0
