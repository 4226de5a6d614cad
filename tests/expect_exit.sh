#!/bin/sh
# expect_exit.sh CODE [--stderr TEXT] [--stdout TEXT] CMD...: passes when CMD exits with
# exactly CODE (and prints TEXT on stderr / stdout). ctest's WILL_FAIL would also accept
# a crash.
want=$1
shift
err_text=
out_text=
while :; do
	case $1 in
	--stderr) err_text=$2; shift 2 ;;
	--stdout) out_text=$2; shift 2 ;;
	*) break ;;
	esac
done
err=$(mktemp)
out=$(mktemp)
"$@" >"$out" 2>"$err"
got=$?
cat "$out"
cat "$err" >&2
status=0
if [ -n "$err_text" ] && ! grep -qF -- "$err_text" "$err"; then
	echo "expect_exit: stderr lacks '$err_text'" >&2
	status=1
fi
if [ -n "$out_text" ] && ! grep -qF -- "$out_text" "$out"; then
	echo "expect_exit: stdout lacks '$out_text'" >&2
	status=1
fi
rm -f "$err" "$out"
if [ "$got" -ne "$want" ]; then
	echo "expect_exit: exit code $got, wanted $want: $*" >&2
	exit 1
fi
exit $status
