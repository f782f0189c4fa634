#!/bin/sh
# bench_bus.sh - `linkprobe analyze` on a bus-level capture (USB 2.0 packets,
# link type 295: a saturated high-speed bus, made by build/bench/bench_bus
# from the bench device model), in MB/s (10^6 B/s of capture file) next to
# `tshark -r` on the same file, and the analyzer's peak memory (bounded: it
# must not grow with the file). Goal: >= 200 MB/s.
#
# Run by `make bench` after the bench binaries (bench_bus writes the file).
# Env: B (build dir, default build), BENCH_BUS_MB (default 210),
# BENCH_BUS_RUNS (default 3; the median time is used). Exit 0 when every
# step ran, 1 when one failed (a slow number is not a failure).
set -u
B=${B:-build}
LP=${LP:-./linkprobe}
MB=${BENCH_BUS_MB:-210}
RUNS=${BENCH_BUS_RUNS:-3}
CAP=$B/bench/bus-${MB}MB.pcapng

echo "== bench_bus: analyze vs tshark -r on a ${MB} MB bus-level capture"
now() { date +%s.%N; }
time_median() {
	t=""
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		t0=$(now)
		"$@" >/dev/null 2>&1
		rc=$?
		t1=$(now)
		[ "$rc" -gt 1 ] && return "$rc"
		t="$t $(echo "$t0 $t1" | awk '{ printf "%.6f", $2 - $1 }')"
		i=$((i + 1))
	done
	echo "$t" | tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
if [ ! -s "$CAP" ]; then
	echo "bench_bus: $CAP missing (build/bench/bench_bus makes it)" >&2
	exit 1
fi
size=$(wc -c <"$CAP")
echo "capture: $CAP, $(echo "$size" | awk '{ printf "%.1f", $1 / 1e6 }') MB"
ts_s=""
if command -v tshark >/dev/null 2>&1; then
	if ! ts_s=$(time_median tshark -r "$CAP"); then
		echo "tshark -r: FAILED"
		exit 1
	fi
	echo "tshark -r: $(echo "$size $ts_s" | awk '{ printf "%.1f MB/s  [%.2f s, median of '"$RUNS"']", $1 / 1e6 / $2, $2 }')"
else
	echo "tshark -r: SKIP (tshark not installed)"
fi
if ! "$LP" analyze "$CAP" --json > "$B/bench/bus-analyze.json" 2>/dev/null && [ $? -gt 1 ]; then
	echo "analyze: FAILED"
	exit 1
fi
if ! an_s=$(time_median "$LP" analyze "$CAP"); then
	echo "analyze: FAILED"
	exit 1
fi
line=$(echo "$size $an_s" | awk '{ printf "%.1f MB/s  [%.2f s, median of '"$RUNS"']", $1 / 1e6 / $2, $2 }')
[ -n "$ts_s" ] && line="$line  ($(echo "$ts_s $an_s" | awk '{ printf "%.1fx", $1 / $2 }') the speed of tshark -r)"
echo "analyze (bus): $line"
# CPU time and peak memory of one more run: on a shared machine the wall
# time above includes waiting for a CPU; user+sys does not
if [ -x /usr/bin/time ]; then
	cpu=$(/usr/bin/time -f "%U %S %M" "$LP" analyze "$CAP" 2>&1 >/dev/null | tail -n 1)
	echo "$size $cpu" | awk '{ s = $2 + $3; printf "analyze (bus): %.1f MB/s of CPU time [user+sys %.2f s], peak memory %d KiB\n", (s > 0 ? $1 / 1e6 / s : 0), s, $4 }'
fi
exit 0
