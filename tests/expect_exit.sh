#!/bin/sh
# expect_exit.sh CODE [--stderr TEXT] CMD...: passes when CMD exits with exactly CODE (and,
# with --stderr, prints TEXT on stderr). ctest's WILL_FAIL would also accept a crash.
want=$1
shift
text=
if [ "$1" = "--stderr" ]; then
	text=$2
	shift 2
fi
err=$(mktemp)
"$@" 2>"$err"
got=$?
cat "$err" >&2
if [ -n "$text" ] && ! grep -qF -- "$text" "$err"; then
	echo "expect_exit: stderr lacks '$text'" >&2
	rm -f "$err"
	exit 1
fi
rm -f "$err"
if [ "$got" -ne "$want" ]; then
	echo "expect_exit: exit code $got, wanted $want: $*" >&2
	exit 1
fi
