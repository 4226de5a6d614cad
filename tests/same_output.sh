#!/bin/sh
# same_output.sh "CMD A" "CMD B": both commands exit alike and print the same (e.g. a run
# with fresh reference engines every few programs and one without: no state may leak).
a=$(sh -c "$1"); ra=$?
b=$(sh -c "$2"); rb=$?
[ "$ra" -eq "$rb" ] || { echo "same_output: exit $ra vs $rb" >&2; exit 1; }
[ "$a" = "$b" ] || { printf 'same_output: outputs differ:\n%s\n---\n%s\n' "$a" "$b" >&2; exit 1; }
[ -n "$a" ] || { echo "same_output: no output" >&2; exit 1; }
exit 0
