#!/bin/sh
# bench_fleet.sh - 64 simulated devices in one process (issue 12, section 3):
# `--cable-test --all --device sim:healthy*60+flaky*4`, every device tested
# at once on one event loop, against one device alone through the same path.
# Prints: every verdict (60 GOOD + 4 FLAKY expected), each device's
# cable-test time (its own start to its verdict; goal <= 1.5x one device's),
# rounds per device, peak RSS per device (goal <= 1 MiB), and on a virtual
# clock (no wall time passes: the cost is all CPU) the CPU per device of 64
# against 1 (how the event loop scales).
#
# Env: LP (default ./linkprobe), BENCH_FLEET_DURATION (default 2).
# Exit 0 when every step ran and every verdict was right; 1 otherwise (a
# slow figure is printed, not failed).
set -u
LP=${LP:-./linkprobe}
DUR=${BENCH_FLEET_DURATION:-2}
T=$(mktemp -d "${TMPDIR:-/tmp}/lp-bench-fleet.XXXXXX")
trap 'rm -rf "$T"' EXIT
PD=$T/pd
N=64
SPEC="healthy*60+flaky*4"

echo "== bench_fleet: --cable-test --all on $N simulated devices in one process (${DUR} s each)"
# run NAME SPEC [k=v]: the --all cable test; JSON in $T/NAME.json, time(1) in $T/NAME.time
run() {
	/usr/bin/time -f "%e %U %S %M" -o "$T/$1.time" \
		"$LP" --cable-test --all --device "sim:$2" --duration "$DUR" --pair-dir "$PD" --json \
		>"$T/$1.json" 2>"$T/$1.err"
	rc=$?
	[ $rc -le 1 ] || { echo "bench_fleet: $1 failed (exit $rc)"; sed 's/^/  /' "$T/$1.err" | tail -5; return 1; }
}
# the devices' keys are made once (as a real phone has one), outside the timing
"$LP" list --device "sim:$SPEC" --pair-dir "$PD" >/dev/null 2>&1
run one "healthy" || exit 1
run fleet "$SPEC" || exit 1

good=$(jq '[.devices[] | select(.verdict == "GOOD")] | length' "$T/fleet.json")
flaky=$(jq '[.devices[4:] | .[] | select(.verdict == "FLAKY")] | length' "$T/fleet.json")
want_ok=$(jq '[.devices[:60][] | .verdict == "GOOD"] + [.devices[60:][] | .verdict == "FLAKY"] | all' "$T/fleet.json")
echo "verdicts: $good GOOD, $(jq '[.devices[] | select(.verdict == "FLAKY")] | length' "$T/fleet.json") FLAKY of $(jq .device_count "$T/fleet.json") (want 60 GOOD, 4 FLAKY on the flaky ports): $( [ "$want_ok" = true ] && echo right || echo WRONG)"
[ "$want_ok" = true ] || jq -r '.devices[] | "  \(.port_path) \(.verdict) \(.evidence)"' "$T/fleet.json" | grep -v GOOD
one_t=$(jq '.devices[0].elapsed_s' "$T/one.json")
jq -r --argjson one "$one_t" '
	[.devices[].elapsed_s] as $e | [.devices[].metrics.rounds // 0] as $r |
	"cable-test time per device: one alone \($one | .*1000 | round / 1000) s; of 64 at once: max \($e | max | .*1000 | round / 1000) s, median \($e | sort | .[32] | .*1000 | round / 1000) s -> \(($e | max) / $one | .*100 | round / 100)x (goal <= 1.5x)",
	"rounds per device (control + usbmux + lockdown round trips each): min \($r | min), median \($r | sort | .[32]), max \($r | max)"
	' "$T/fleet.json"
echo "  (one alone: $(jq '.devices[0].metrics.rounds' "$T/one.json") rounds; on a real clock the 64 share the CPU and the machine's timer wake-ups)"
read -r w1 u1 s1 m1 <<EOT
$(tail -1 "$T/one.time")
EOT
read -r w64 u64 s64 m64 <<EOT
$(tail -1 "$T/fleet.time")
EOT
echo "$m1 $m64 $N" | awk '{ printf "peak RSS: one device %.1f MiB; 64 devices %.1f MiB = %.2f MiB per device (%.2f MiB each beyond the first) (goal <= 1 MiB)\n", $1/1024, $2/1024, $2/1024/$3, ($2-$1)/1024/($3-1) }'
echo "$w1 $w64" | awk '{ printf "wall: one %.2f s, 64 %.2f s\n", $1, $2 }'

# CPU per device on a virtual clock: the event loop's cost as N grows
run vone "healthy,clock=virtual" || exit 1
run vfleet "$SPEC,clock=virtual" || exit 1
read -r vw1 vu1 vs1 vm1 <<EOT
$(tail -1 "$T/vone.time")
EOT
read -r vw64 vu64 vs64 vm64 <<EOT
$(tail -1 "$T/vfleet.time")
EOT
vok=$(jq '[.devices[:60][] | .verdict == "GOOD"] + [.devices[60:][] | .verdict == "FLAKY"] | all' "$T/vfleet.json")
echo "$vu1 $vs1 $vu64 $vs64 $N" | awk '{ one = $1 + $2; all = $3 + $4; printf "virtual clock: CPU one device %.3f s, 64 devices %.3f s = %.3f s per device -> %.2fx of one alone\n", one, all, all / $5, (one > 0 ? all / $5 / one : 0) }'
echo "virtual clock verdicts: $( [ "$vok" = true ] && echo right || echo WRONG)"
[ "$want_ok" = true ] && [ "$vok" = true ]
