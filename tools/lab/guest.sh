#!/bin/sh
# guest.sh - runs inside the lab VM (started by tools/lab/init after
# switch_root): runs the scenario scripts tests/lab/NN-*.sh in order and
# collects their TAP into $LAB_TAP ($LAB_OUT/tap.txt), which the host streams.
#
# The plan comes first: each selected scenario declares `plan N` (a line of its
# own, tests/lab/lib.sh), read here before anything runs; the run's plan is
# the sum plus one result per scenario, "ran to the end with exactly its plan".
# Scenarios print `ok`/`not ok` through lib.sh, numbered across scenarios. A
# scenario that stops early gets `not ok` for every planned result it did not
# report; one that stops early, dies, overruns its time, or reports more
# than it planned fails its own last result (and the host sees the count disagree with the
# plan). `# needs: NN-name` in a scenario runs that one first when the
# selection leaves it out (30-usbmon reads 20-interop's capture).
#   guest.sh ENVFILE      (LAB_REPO, LAB_OUT, LAB_KVER, LAB_ONLY)
. "$1"
export LAB_REPO LAB_OUT LAB_KVER
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
export LAB_BIN=$LAB_OUT/bin
export LAB_TAP=$LAB_OUT/tap.txt
export LAB_STATE=/run/lab
# per-scenario bound (the whole run is bounded on the host too)
SCENARIO_TIMEOUT=${LAB_SCENARIO_TIMEOUT:-600}

mkdir -p "$LAB_STATE"
echo 0 >"$LAB_STATE/tapnum"
hostname lab 2>/dev/null || true
# lockdown pair records and usbmuxd state: fresh for every lab run. The
# tmpfs overlay starts from the host's own /, so records the host has in its
# /var/lib/lockdown (the gadget's UDID is the same on every run) would be
# there too: removed here (in the overlay only; the host's stay)
rm -rf /var/lib/lockdown && mkdir -p /var/lib/lockdown && chmod 0755 /var/lib/lockdown

tap() { echo "$*" >>"$LAB_TAP"; echo "TAP: $*"; }
tap "# guest: kernel $(uname -r), UDCs: $(ls /sys/class/udc 2>/dev/null | tr '\n' ' ')"

cd "$LAB_REPO" || exit 3
# a scenario marked "# only when named" (a benchmark: 90-bench) runs only
# when the selection names it, not in a whole `make lab`
selected() {
	if [ -z "$LAB_ONLY" ]; then
		grep -q '^# only when named' "$2" && return 1
		return 0
	fi
	for w in $LAB_ONLY; do case $1 in *"$w"*) return 0 ;; esac; done
	return 1
}
# the scenarios to run: the selection and what it needs, in file order
need=
for s in tests/lab/[0-9][0-9]-*.sh; do
	selected "$(basename "$s" .sh)" "$s" || continue
	need="$need $(sed -n 's/^# needs: *//p' "$s")"
done
run=
for s in tests/lab/[0-9][0-9]-*.sh; do
	name=$(basename "$s" .sh)
	hit=
	selected "$name" "$s" && hit=1
	for n in $need; do [ "$n" = "$name" ] && hit=1; done
	[ -n "$hit" ] && run="$run $s"
done
# the plan, before anything runs
total=0
for s in $run; do
	p=$(sed -n 's/^plan \([0-9][0-9]*\)$/\1/p' "$s")
	case $p in
	"" | *[!0-9]*) p=0 ;; # no plan (or two): its own last result fails
	esac
	echo "$p" >"$LAB_STATE/static-plan.$(basename "$s" .sh)"
	total=$((total + p + 1))
done
[ -n "$run" ] || tap "# guest: no scenario matches '$LAB_ONLY'"
tap "1..$total"

for s in $run; do
	name=$(basename "$s" .sh)
	planned=$(cat "$LAB_STATE/static-plan.$name")
	tap "# --- $name ($(cut -d' ' -f1 /proc/uptime)s, plan $planned)"
	before=$(cat "$LAB_STATE/tapnum")
	rc=0
	# the trace goes to tmpfs (a line per command: slow on the 9p share under
	# load) and is copied to $LAB_OUT after the scenario
	LAB_SCENARIO=$name timeout -k 5 "$SCENARIO_TIMEOUT" sh "$s" >"$LAB_STATE/$name.out" 2>&1 || rc=$?
	after=$(cat "$LAB_STATE/tapnum")
	ran=$((after - before))
	declared=$(cat "$LAB_STATE/plan.$name" 2>/dev/null)
	n=$after
	while [ "$ran" -lt "$planned" ]; do
		n=$((n + 1))
		ran=$((ran + 1))
		tap "not ok $n - $name: planned result $ran of $planned not reported (the scenario stopped early: see $name.out)"
	done
	why=
	[ "$planned" = 0 ] && why="no \`plan N\` line"
	[ -z "$why" ] && [ "$declared" != "$planned" ] && why="plan() said '${declared:-nothing}', the file says $planned"
	[ -z "$why" ] && [ $((after - before)) -gt "$planned" ] && why="reported $((after - before)) results, planned $planned"
	[ -z "$why" ] && [ "$rc" = 124 ] && why="timed out after ${SCENARIO_TIMEOUT}s"
	[ -z "$why" ] && [ "$rc" != 0 ] && why="exited $rc"
	[ -z "$why" ] && [ $((after - before)) -lt "$planned" ] && why="stopped after $((after - before)) of $planned planned results"
	n=$((n + 1))
	if [ -z "$why" ]; then
		tap "ok $n - $name: ran to the end, $planned of $planned planned results"
	else
		tap "not ok $n - $name: $why (see $name.out)"
	fi
	echo $n >"$LAB_STATE/tapnum"
	# whatever a scenario left behind must not leak into the next one
	LAB_SCENARIO=$name sh "$LAB_REPO/tests/lab/lib.sh" cleanup >>"$LAB_STATE/$name.out" 2>&1
	cp "$LAB_STATE/$name.out" "$LAB_OUT/$name.out"
done
tap "# guest: done at $(cut -d' ' -f1 /proc/uptime)s"
exit 0
