#!/bin/sh
# demo.sh - what `make demo` shows: pairing with the simulated iPhone over
# usbmux + lockdown + TLS, stage by stage with timestamps (real-time clock, so
# the Trust countdown and timings are what a user would see), then cable tests
# on a healthy and on a full-speed (bad cable) link, and a refused Trust.
# Fails if any verdict is not the expected one.
set -u
LP=${LP:-./linkprobe}
dir=$(mktemp -d "${TMPDIR:-/tmp}/linkprobe-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail=0
run() { # expected-exit-code, command...
	want=$1; shift
	echo; echo "\$ linkprobe $*"
	"$LP" "$@"
	rc=$?
	if [ "$rc" != "$want" ]; then echo "demo: expected exit code $want, got $rc" >&2; fail=1; fi
}
run 0 list --device sim:healthy
run 0 trust --pair --device sim:healthy,keep --pair-dir "$dir"
run 0 trust --device sim:healthy,keep --pair-dir "$dir"  # keep: the device remembers the pairing
run 0 --cable-test --duration 1 --device sim:healthy
run 1 --cable-test --duration 1 --device sim:full-speed
run 1 trust --pair --device sim:deny --pair-dir "$dir/deny"
echo
[ $fail = 0 ] && echo "demo: all verdicts as expected" || echo "demo: UNEXPECTED VERDICTS" >&2
exit $fail
