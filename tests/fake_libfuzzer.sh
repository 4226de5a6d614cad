#!/bin/sh
# A stand-in for the libFuzzer target, for testing the campaign supervisor without an
# engine: it copies the inputs named in FAKE_CRASHES (space-separated) into the artifact
# prefix as crash-N files, prints libFuzzer's fork-mode status line and exits. With
# FAKE_SLEEP it waits first (to be interrupted).
prefix=
for arg; do
  case $arg in -artifact_prefix=*) prefix=${arg#-artifact_prefix=} ;; esac
done
[ -n "$prefix" ] || { echo "fake_libfuzzer: no -artifact_prefix" >&2; exit 3; }
[ -z "${FAKE_SLEEP:-}" ] || sleep "$FAKE_SLEEP"
n=0
for crash in ${FAKE_CRASHES:-}; do
  n=$((n + 1))
  cp "$crash" "${prefix}crash-$n-$$"
done
echo "#1234: cov: 77 ft: 80 corp: 9 exec/s 100 oom/timeout/crash: 0/0/$n time: 1s job: 1 dft_time: 0"
