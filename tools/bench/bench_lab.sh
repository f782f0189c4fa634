#!/bin/sh
# bench_lab.sh - the USB lab's numbers for `make bench`: linkprobe directly
# over libusb against Debian's usbmuxd + libimobiledevice on the same
# (virtual) bus - lockdown QueryType round trips (linkprobe --cable-test vs a
# client through iproxy + usbmuxd) and pairing wall time (linkprobe trust
# --pair vs idevicepair pair). The measuring is tests/lab/90-bench.sh; this
# runs just that scenario in the lab VM and prints its "# bench:" lines.
#
# The lab boots QEMU and needs root, so it is opt-in: without
# LINKPROBE_BENCH_LAB=1 this prints a SKIP line and exits 0. A whole `make lab`
# leaves 90-bench out (it is marked "only when named": a benchmark, not a check).
#
# Env: LINKPROBE_BENCH_LAB=1 to run; LAB_OUT (default build/lab-bench, so a
# `make lab` run's artifacts are left alone). Exit 0 when the scenario ran
# and passed, 1 otherwise.
set -u
if [ "${LINKPROBE_BENCH_LAB:-}" != 1 ]; then
	echo "lab bench: SKIP (run \`make lab\` or set LINKPROBE_BENCH_LAB=1)"
	exit 0
fi
REPO=$(cd "$(dirname "$0")/../.." && pwd)
export LAB_OUT=${LAB_OUT:-$REPO/build/lab-bench}
echo "== bench_lab: linkprobe direct vs usbmuxd + libimobiledevice in the USB lab (QEMU)"
mkdir -p "$LAB_OUT" || exit 1
rc=0
"$REPO/tools/lab/lab.sh" 90-bench >"$LAB_OUT.tap" 2>"$LAB_OUT.err" || rc=$?
grep '^# bench:' "$LAB_OUT.tap" | sed 's/^# bench: /lab bench: /'
if [ $rc != 0 ]; then
	echo "lab bench: the lab run failed (rc $rc):"
	grep -E '^not ok|^# lab:' "$LAB_OUT.tap" | sed 's/^/  /'
	tail -3 "$LAB_OUT.err" | sed 's/^/  /'
	exit 1
fi
grep -q '^# bench:' "$LAB_OUT.tap" || { echo "lab bench: no numbers (see $LAB_OUT.tap)"; exit 1; }
exit 0
