#!/bin/sh
# bench_analyze.sh - `linkprobe analyze` throughput (MB/s, 10^6 B/s of capture
# file) next to `tshark -r` on the same file in the same run, as a ratio.
#
# The capture (>= 200 MB pcapng of usbmon records: enumeration, usbmux
# VERSION/SETUP, bulk streams both ways on one and two connections, link
# model timestamps) comes from build/bench/gen_capture and is cached in
# build/bench/; it is regenerated when missing or older than the generator.
# While `linkprobe analyze` answers "not implemented" the script prints
# "analyze: SKIP (not implemented)" and still times tshark.
#
# Run by `make bench` from the top directory (after the bench binaries and
# ./linkprobe are built). Env: B (build dir, default build), BENCH_ANALYZE_MB
# (capture size, default 210), BENCH_ANALYZE_RUNS (default 3; the median
# time is used). Exit 0 when every step ran, 1 when one failed (a slow number
# is not a failure).
set -u
B=${B:-build}
LP=${LP:-./linkprobe}
MB=${BENCH_ANALYZE_MB:-210}
RUNS=${BENCH_ANALYZE_RUNS:-3}
GEN=$B/bench/gen_capture
CAP=$B/bench/analyze-${MB}MB.pcapng

echo "== bench_analyze: analyze vs tshark -r on a ${MB} MB capture"

now() { date +%s.%N; }

# median of the wall times of $RUNS runs of "$@" (stdout/stderr dropped);
# prints seconds, returns the first non-zero exit status other than 0/1
time_median() {
	t=""
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		t0=$(now)
		"$@" >/dev/null 2>&1
		rc=$?
		t1=$(now)
		if [ "$rc" -gt 1 ]; then
			return "$rc"
		fi
		t="$t $(echo "$t0 $t1" | awk '{ printf "%.6f", $2 - $1 }')"
		i=$((i + 1))
	done
	echo "$t" | tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

if [ ! -x "$GEN" ]; then
	echo "bench_analyze: $GEN not built" >&2
	exit 1
fi
if [ ! -s "$CAP" ] || [ "$GEN" -nt "$CAP" ]; then
	t0=$(now)
	if ! "$GEN" "$CAP" "$MB"; then
		echo "bench_analyze: generating $CAP failed" >&2
		exit 1
	fi
	t1=$(now)
	echo "capture generated in $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }') s (cached in $CAP)"
fi
size=$(wc -c <"$CAP")
echo "capture: $CAP, $(echo "$size" | awk '{ printf "%.1f", $1 / 1e6 }') MB"

ts_s=""
if command -v tshark >/dev/null 2>&1; then
	# tshark -r prints one summary line per packet: to /dev/null
	if ! ts_s=$(time_median tshark -r "$CAP"); then
		echo "tshark -r: FAILED"
		exit 1
	fi
	echo "tshark -r: $(echo "$size $ts_s" | awk '{ printf "%.1f MB/s  [%.2f s, median of '"$RUNS"']", $1 / 1e6 / $2, $2 }')"
else
	echo "tshark -r: SKIP (tshark not installed)"
fi

if [ ! -x "$LP" ]; then
	echo "analyze: FAILED ($LP not built)"
	exit 1
fi
msg=$("$LP" analyze "$CAP" 2>&1 >/dev/null)
rc=$?
if [ "$rc" -gt 1 ] && echo "$msg" | grep -qi "not implemented"; then
	echo "analyze: SKIP (not implemented)"
	exit 0
fi
if [ "$rc" -gt 1 ]; then
	echo "analyze: FAILED (exit $rc: $(echo "$msg" | head -n 1))"
	exit 1
fi
if ! an_s=$(time_median "$LP" analyze "$CAP"); then
	echo "analyze: FAILED"
	exit 1
fi
line=$(echo "$size $an_s" | awk '{ printf "%.1f MB/s  [%.2f s, median of '"$RUNS"']", $1 / 1e6 / $2, $2 }')
if [ -n "$ts_s" ]; then
	line="$line  ($(echo "$ts_s $an_s" | awk '{ printf "%.2fx", $1 / $2 }') the speed of tshark -r)"
fi
echo "analyze: $line"
exit 0
