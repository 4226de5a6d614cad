#!/bin/sh
# export_selftest.sh SHADOWFUZZ PROGRAM: the selftest 'export --selftest' writes compiles
# with -Wall -Werror and, where /dev/kvm is usable, runs to exit 0. Exit 4 (ctest's
# SKIP_RETURN_CODE) when there is no /dev/kvm or the selftest skips itself.
set -u
sf=$1 program=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "export_selftest: $*" >&2; exit 1; }

"$sf" export --selftest "$program" -o "$dir/selftest.c" >/dev/null || fail "export failed"
[ -f "$dir/selftest.sfp" ] || fail "no text program beside the C file"
cc -O1 -Wall -Werror -o "$dir/selftest" "$dir/selftest.c" 2>"$dir/cc.err" ||
  { cat "$dir/cc.err"; fail "the selftest does not compile"; }
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
  echo "export_selftest: compiled; no usable /dev/kvm to run it"
  exit 4
fi
"$dir/selftest"
status=$?
[ $status -eq 0 ] || [ $status -eq 4 ] || fail "the selftest exits $status"
exit $status
