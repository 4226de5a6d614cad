#!/bin/bash -eu
# Builds shadowfuzz's libFuzzer target for OSS-Fuzz / ClusterFuzzLite. The builder image
# provides $CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE $SRC $WORK $OUT; the sources are in
# $SRC/shadowfuzz and Unicorn 2 is installed with its static archive (.clusterfuzzlite/Dockerfile;
# scripts/oss-fuzz-build runs this same script on Debian). Writes to $OUT:
#   shadowfuzz_fuzzer                 the target, Unicorn linked in statically
#   shadowfuzz_fuzzer_seed_corpus.zip corpus/*.sfp in binary form (never corpus/bugs/)
#   shadowfuzz_fuzzer.options         libFuzzer limits
#   shadowfuzz_fuzzer.dict            when fuzz/shadowfuzz.dict exists
repo=$SRC/shadowfuzz

# The target: sanitizers, coverage instrumentation and the engine come only from the
# builder's flags; CMake adds no sanitizer of its own.
cmake -S "$repo" -B "$WORK/fuzzer" -DSF_TESTS=OFF -DSF_SANITIZE=OFF \
  -DSF_STATIC=ON -DSF_FUZZ_LINK_CXX=ON -DSF_FUZZ_ENGINE="$LIB_FUZZING_ENGINE"
cmake --build "$WORK/fuzzer" --target shadowfuzz_fuzzer -j"$(nproc)"
cp "$WORK/fuzzer/fuzz/shadowfuzz_fuzzer" "$OUT/"

# The seeds are encoded by a plain build of the shadowfuzz command (no sanitizer, no
# fuzzer instrumentation): it runs here, on the build machine, and is not shipped.
env -u CFLAGS -u CXXFLAGS cmake -S "$repo" -B "$WORK/host" -DCMAKE_BUILD_TYPE=Release \
  -DSF_TESTS=OFF -DSF_STATIC=ON
cmake --build "$WORK/host" --target shadowfuzz -j"$(nproc)"
rm -rf "$WORK/seeds"
mkdir -p "$WORK/seeds"
"$WORK/host/fuzz/shadowfuzz" encode --out "$WORK/seeds" "$repo"/corpus/*.sfp
rm -f "$OUT/shadowfuzz_fuzzer_seed_corpus.zip"
(cd "$WORK/seeds" && zip -q -X "$OUT/shadowfuzz_fuzzer_seed_corpus.zip" ./*.bin)

cat > "$OUT/shadowfuzz_fuzzer.options" <<'OPTIONS'
[libfuzzer]
timeout = 25
rss_limit_mb = 2560
use_value_profile = 1
OPTIONS

if [ -f "$repo/fuzz/shadowfuzz.dict" ]; then
  cp "$repo/fuzz/shadowfuzz.dict" "$OUT/shadowfuzz_fuzzer.dict"
fi
