#!/bin/sh
# regressions_replay.sh SHADOWFUZZ DIR: every regression program in DIR diverges under the
# model options its "# model:" header names (a planted bug) and passes without its --bug
# options. Programs without a --bug in their header (a fixed model bug) must pass.
set -u
sf=$1 dir=$2
fail=0 count=0
for f in "$dir"/*.sfp; do
  [ -f "$f" ] || continue
  count=$((count + 1))
  model=$(sed -n 's/^# model: \(--.*\)/\1/p' "$f" | head -n 1)
  [ -n "$model" ] || { echo "regressions_replay: $f has no '# model:' header" >&2; fail=1; continue; }
  clean=$(echo "$model" | sed 's/--bug [A-Za-z0-9]*//g')
  if [ "$clean" != "$model" ]; then
    # shellcheck disable=SC2086
    "$sf" run -q $model "$f" >/dev/null
    [ $? -eq 1 ] || { echo "regressions_replay: $f does not diverge with $model" >&2; fail=1; }
  fi
  # shellcheck disable=SC2086
  "$sf" run -q $clean "$f" >/dev/null || { echo "regressions_replay: $f diverges with $clean" >&2; fail=1; }
done
[ "$count" -gt 0 ] || { echo "regressions_replay: no programs in $dir" >&2; exit 1; }
echo "$count regression programs replayed"
exit $fail
