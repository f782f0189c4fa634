# lib.sh - tiny TAP library for linkprobe's CLI tests (git's t/test-lib.sh idea).
# Source it, call plan N (or done_testing at the end), then ok/is/like/...
# LP is the binary under test; every run gets a fresh temp dir in $T, and a
# private home inside it (HOME, XDG_*): no test reads or writes the state of
# the user running it (the simulated iPhone keeps its key in XDG_STATE_HOME).
# Waits are for a condition (wait_for), never a bare sleep; time bounds leave
# room for a loaded machine.
set -u
LP=${LP:-$(cd "$(dirname "$0")/../.." && pwd)/linkprobe}
T=$(mktemp -d "${TMPDIR:-/tmp}/lp-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
export HOME=$T/home XDG_STATE_HOME=$T/home/.local/state XDG_CONFIG_HOME=$T/home/.config \
	XDG_CACHE_HOME=$T/home/.cache XDG_DATA_HOME=$T/home/.local/share XDG_RUNTIME_DIR=$T/run
mkdir -p "$XDG_STATE_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"
chmod 0700 "$XDG_RUNTIME_DIR"
export LINKPROBE_SIM_CLOCK=virtual   # virtual clock: deterministic, no wall time
unset LINKPROBE_DEVICE LINKPROBE_PAIR_DIR NO_COLOR
_n=0
_fail=0
plan() { echo "1..$1"; }
done_testing() { echo "1..$_n"; [ "$_fail" = 0 ]; exit $?; }
ok() { # ok COND-EXIT-STATUS DESCRIPTION
	_n=$((_n + 1))
	if [ "$1" = 0 ]; then echo "ok $_n - $2"; else echo "not ok $_n - $2"; _fail=1; fi
}
is() { # is GOT WANT DESCRIPTION
	_n=$((_n + 1))
	if [ "$1" = "$2" ]; then echo "ok $_n - $3"; else
		echo "not ok $_n - $3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; _fail=1; fi
}
# todo_is GOT WANT DESCRIPTION REASON: a known failure, reported as a TAP
# TODO (it runs, it shows, it does not fail the suite; "ok # TODO" says fixed)
todo_is() {
	_n=$((_n + 1))
	if [ "$1" = "$2" ]; then echo "ok $_n - $3 # TODO $4"; else
		echo "not ok $_n - $3 # TODO $4"; echo "#   got:  '$1'"; echo "#   want: '$2'"; fi
}
like() { # like GOT REGEX DESCRIPTION
	_n=$((_n + 1))
	if printf '%s' "$1" | grep -qE -- "$2"; then echo "ok $_n - $3"; else
		echo "not ok $_n - $3"; echo "#   got:  '$(printf '%s' "$1" | head -c 400)'"; echo "#   want: /$2/"; _fail=1; fi
}
unlike() {
	_n=$((_n + 1))
	if printf '%s' "$1" | grep -qE -- "$2"; then echo "not ok $_n - $3"; _fail=1; else echo "ok $_n - $3"; fi
}
# run_lp OUTFILE ARGS... : runs linkprobe, stores stdout in OUTFILE, returns its exit
# code; a signal (exit > 128) is always a failure of the test, like git's test_must_fail.
run_lp() {
	out=$1; shift
	timeout 120 "$LP" "$@" >"$out" 2>"$out.err"
	rc=$?
	if [ $rc -gt 128 ] || [ $rc = 124 ]; then echo "# linkprobe died (rc $rc): $*"; cat "$out.err" | sed 's/^/# /'; fi
	return $rc
}
jget() { jq -r "$1" "$2"; }
# wait_for SECONDS CMD...: until CMD succeeds (polled every 50 ms); fails when
# SECONDS pass first. For "the process got this far" before signalling it.
wait_for() {
	_wl=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -ge "$_wl" ] && return 1
		sleep 0.05
	done
}
# file_over FILE BYTES: FILE exists and holds more than BYTES
file_over() { [ -e "$1" ] && [ "$(stat -c %s "$1")" -gt "$2" ]; }
# lp_asan: the linkprobe under test is built with AddressSanitizer (make
# SANITIZE=address: libasan linked in; clang: the runtime linked statically)
lp_asan() { grep -q __asan_init "$LP" 2>/dev/null; }
