#!/bin/sh
# encode_roundtrip.sh SHADOWFUZZ PROGRAM BUG: the binary form that 'encode' writes is the
# same program (it is caught by BUG and clean without it), and a second encode keeps the
# first file byte for byte.
set -u
sf=$1 program=$2 bug=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "encode_roundtrip: $*" >&2; exit 1; }

"$sf" encode --out "$dir" "$program" || fail "encode failed"
bin="$dir/$(basename "${program%.*}").bin"
[ -s "$bin" ] || fail "no $bin"
"$sf" run -q --bug "$bug" "$bin"; [ $? -eq 1 ] || fail "the encoded program is not caught by $bug"
"$sf" run -q "$bin" || fail "the encoded program diverges without $bug"
printf 'X' >> "$bin"
cp "$bin" "$dir/changed"
"$sf" encode --out "$dir" "$program" | grep -q "1 already there" || fail "second encode did not keep the file"
cmp -s "$bin" "$dir/changed" || fail "second encode overwrote an existing file"
