#!/bin/sh
# guest.sh - runs inside the lab VM (started by tools/lab/init after
# switch_root): runs the scenario scripts tests/lab/NN-*.sh in order and
# collects their TAP into $LAB_OUT/tap.txt, which the host streams.
#
# Scenarios print `ok`/`not ok`/`# SKIP` lines through tests/lab/lib.sh, which
# numbers them across scenarios; this script adds the plan at the end. A
# scenario that dies or overruns its time gets a `not ok` of its own.
#   guest.sh ENVFILE      (LAB_REPO, LAB_OUT, LAB_KVER, LAB_ONLY)
. "$1"
export LAB_REPO LAB_OUT LAB_KVER
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
export LAB_BIN=$LAB_OUT/bin
export LAB_TAP=$LAB_OUT/tap.txt
export LAB_STATE=/run/lab
# per-scenario bound (the whole run is bounded on the host too)
SCENARIO_TIMEOUT=${LAB_SCENARIO_TIMEOUT:-300}

mkdir -p "$LAB_STATE"
echo 0 >"$LAB_STATE/tapnum"
hostname lab 2>/dev/null || true
# lockdown pair records and usbmuxd state: fresh for every lab run (tmpfs root)
mkdir -p /var/lib/lockdown && chmod 0755 /var/lib/lockdown

tap() { echo "$*" >>"$LAB_TAP"; echo "TAP: $*"; }
tap "# guest: kernel $(uname -r), UDCs: $(ls /sys/class/udc 2>/dev/null | tr '\n' ' ')"

cd "$LAB_REPO" || exit 3
for s in tests/lab/[0-9][0-9]-*.sh; do
	name=$(basename "$s" .sh)
	if [ -n "$LAB_ONLY" ]; then
		hit=
		for w in $LAB_ONLY; do case $name in *"$w"*) hit=1 ;; esac; done
		[ -n "$hit" ] || continue
	fi
	tap "# --- $name ($(cut -d' ' -f1 /proc/uptime)s)"
	before=$(cat "$LAB_STATE/tapnum")
	rc=0
	LAB_SCENARIO=$name timeout -k 5 "$SCENARIO_TIMEOUT" sh "$s" >"$LAB_OUT/$name.out" 2>&1 || rc=$?
	after=$(cat "$LAB_STATE/tapnum")
	if [ "$rc" != 0 ]; then
		n=$((after + 1))
		echo $n >"$LAB_STATE/tapnum"
		[ "$rc" = 124 ] && why="timed out after ${SCENARIO_TIMEOUT}s" || why="exited $rc"
		tap "not ok $n - $name: scenario $why (see $name.out)"
	elif [ "$after" = "$before" ]; then
		n=$((after + 1))
		echo $n >"$LAB_STATE/tapnum"
		tap "not ok $n - $name: scenario reported no test"
	fi
	# whatever a scenario left behind must not leak into the next one
	sh "$LAB_REPO/tests/lab/lib.sh" cleanup >>"$LAB_OUT/$name.out" 2>&1
done
tap "1..$(cat "$LAB_STATE/tapnum")"
tap "# guest: done at $(cut -d' ' -f1 /proc/uptime)s"
exit 0
