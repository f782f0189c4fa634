#!/bin/sh
# bench_analyze.sh - `linkprobe analyze` next to `tshark -r` on the same files
# in the same run: packets/s, MB/s (10^6 B/s of capture file), peak memory,
# and the ratios (issue 14's goals: >= 20x tshark in packets/s on the
# lockdown-heavy file, >= 1.5 GB/s on the bulk-heavy one, <= 64 MiB peak RSS
# on a 2 GiB capture). Never pass/fail on speed: a slow number is printed.
#
# The files (cached in $B/bench/, made again when missing or older than the
# generator):
#   bulk-heavy      build/bench/gen_capture: usbmon records of the bench
#                   device model (enumeration, usbmux, bulk streams both ways
#                   on one and two connections), BENCH_ANALYZE_MB (210) MB;
#   lockdown-heavy  one `linkprobe trust --pair` session on the simulated
#                   iPhone (descriptors, usbmux, lockdown plaintext, Pair,
#                   TLS), captured once and repeated by gen_capture --repeat
#                   to BENCH_ANALYZE_LKD_MB (100) MB: small packets, many
#                   lockdown messages;
#   2 GiB           the lockdown-heavy kind at BENCH_ANALYZE_BIG_MB (2148) MB,
#                   for analyze's peak memory only, written to $B/bench and
#                   deleted after (skipped when the disk has less than three
#                   times that free, or with BENCH_ANALYZE_BIG_MB=0).
#
# Each command runs BENCH_ANALYZE_RUNS (3) times under /usr/bin/time; the
# medians of wall time and of CPU time (user+sys) are used, and the largest
# peak RSS. analyze takes about 0.1 s on these files, near the 10 ms steps of
# /usr/bin/time and easily moved by one descheduling: each of its runs is
# BENCH_ANALYZE_REPEAT (5) analyses in a row, timed together and divided. On a shared machine wall time includes waiting for a core: both
# are printed, and the ratio in each.
#
# Run by `make bench` from the top directory (after the bench binaries and
# ./linkprobe are built). Env: B (build dir, default build), LP. Exit 0 when
# every step ran, 1 when one failed.
set -u
B=${B:-build}
LP=${LP:-./linkprobe}
MB=${BENCH_ANALYZE_MB:-210}
LMB=${BENCH_ANALYZE_LKD_MB:-100}
BIG=${BENCH_ANALYZE_BIG_MB:-2148}
RUNS=${BENCH_ANALYZE_RUNS:-3}
REPEAT=${BENCH_ANALYZE_REPEAT:-5}
GEN=$B/bench/gen_capture
BULK=$B/bench/analyze-${MB}MB.pcapng
LKD=$B/bench/analyze-lockdown-${LMB}MB.pcapng
SEED=$B/bench/seed-trust-pair.pcapng
TMP=$B/bench/analyze-time.$$

echo "== bench_analyze: analyze vs tshark -r"

now() { date +%s.%N; }
have_time() { [ -x /usr/bin/time ]; }

# measure [-r N] CMD...: runs it $RUNS times (each time N times in a row,
# timed together and divided by N); prints "wall cpu rss_kib" (medians of
# wall and CPU seconds, largest RSS); returns the first exit status above 1
measure() {
	rep=1
	if [ "$1" = -r ]; then
		rep=$2
		shift 2
	fi
	: >"$TMP.all"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		if have_time; then
			/usr/bin/time -f '%e %U %S %M' -o "$TMP" sh -c '
				n=$1; shift; k=0
				while [ "$k" -lt "$n" ]; do
					"$@" >/dev/null 2>&1; r=$?
					[ "$r" -gt 1 ] && exit "$r"
					k=$((k + 1))
				done' sh "$rep" "$@" >/dev/null 2>&1
			rc=$?
			line=$(tail -n 1 "$TMP" | awk -v n="$rep" '{ printf "%.4f %.4f %.4f %s", $1 / n, $2 / n, $3 / n, $4 }')
		else
			t0=$(now)
			"$@" >/dev/null 2>&1
			rc=$?
			line="$(echo "$t0 $(now)" | awk '{ printf "%.3f", $2 - $1 }') 0 0 0"
		fi
		[ "$rc" -gt 1 ] && return "$rc"
		echo "$line" >>"$TMP.all"
		i=$((i + 1))
	done
	w=$(awk '{ print $1 }' "$TMP.all" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	c=$(awk '{ print $2 + $3 }' "$TMP.all" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	m=$(awk '{ print $4 }' "$TMP.all" | sort -g | tail -n 1)
	echo "$w $c $m"
}

# figures LABEL SIZE PACKETS "wall cpu rss"
figures() {
	echo "$2 $3 $4" | awk -v l="$1" -v cpu="$(have_time && echo 1)" '{
		w = $3; c = $4;
		printf "%s: %.0f k packets/s, %.1f MB/s wall [%.2f s]", l, $2 / w / 1e3, $1 / 1e6 / w, w;
		if (cpu && c > 0)
			printf "; %.0f k packets/s, %.1f MB/s of CPU time [%.2f s]; peak RSS %.1f MiB", $2 / c / 1e3, $1 / 1e6 / c, c, $5 / 1024;
		printf "\n" }'
}

# ratio "tshark wall cpu rss" "analyze wall cpu rss": analyze's speed over tshark's
ratio() {
	echo "$1 $2" | awk -v cpu="$(have_time && echo 1)" '{
		printf "%.1fx wall", $1 / $4;
		if (cpu && $5 > 0) printf ", %.1fx CPU time", $2 / $5 }'
}

count() { cat "$1.packets" 2>/dev/null || echo 0; }

# compare NAME FILE GOAL_TEXT
compare() {
	size=$(wc -c <"$2")
	pk=$(count "$2")
	echo "$1: $2, $(echo "$size" | awk '{ printf "%.1f", $1 / 1e6 }') MB, $pk packets"
	ts=""
	if command -v tshark >/dev/null 2>&1; then
		if ! ts=$(measure tshark -r "$2"); then
			echo "  tshark -r: FAILED"
			return 1
		fi
		figures "  tshark -r" "$size" "$pk" "$ts"
	else
		echo "  tshark -r: SKIP (tshark not installed)"
	fi
	if ! an=$(measure -r "$REPEAT" "$LP" analyze "$2"); then
		echo "  analyze: FAILED"
		return 1
	fi
	figures "  analyze  " "$size" "$pk" "$an"
	[ -n "$ts" ] && echo "  analyze / tshark -r: $(ratio "$ts" "$an") ($3)"
	return 0
}

if [ ! -x "$GEN" ] || [ ! -x "$LP" ]; then
	echo "bench_analyze: $GEN or $LP not built" >&2
	exit 1
fi
fails=0

# ---- bulk-heavy ----------------------------------------------------------------
if [ ! -s "$BULK" ] || [ ! -s "$BULK.packets" ] || [ "$GEN" -nt "$BULK" ]; then
	t0=$(now)
	if ! "$GEN" "$BULK" "$MB"; then
		echo "bench_analyze: generating $BULK failed" >&2
		exit 1
	fi
	echo "bulk-heavy capture generated in $(echo "$t0 $(now)" | awk '{ printf "%.2f", $2 - $1 }') s"
fi
compare "bulk-heavy" "$BULK" "goal: analyze >= 1500 MB/s" || fails=$((fails + 1))

# ---- lockdown-heavy ------------------------------------------------------------
if [ ! -s "$SEED" ] || [ "$LP" -nt "$SEED" ]; then
	rm -rf "$B/bench/seed-pairs"
	if ! "$LP" trust --pair --device sim:healthy --pair-dir "$B/bench/seed-pairs" \
		--capture "$SEED" >/dev/null 2>&1; then
		echo "bench_analyze: the trust --pair session for the lockdown-heavy file failed" >&2
		exit 1
	fi
	rm -f "$LKD"
fi
if [ ! -s "$LKD" ] || [ ! -s "$LKD.packets" ] || [ "$GEN" -nt "$LKD" ]; then
	if ! "$GEN" --repeat "$SEED" "$LKD" "$LMB"; then
		echo "bench_analyze: generating $LKD failed" >&2
		exit 1
	fi
fi
compare "lockdown-heavy (trust --pair repeated)" "$LKD" "goal: >= 20x in packets/s" ||
	fails=$((fails + 1))

# ---- 2 GiB: peak memory --------------------------------------------------------
if [ "$BIG" -gt 0 ] && have_time; then
	BIGF=$B/bench/analyze-rss-${BIG}MB.pcapng
	avail=$(df -Pk "$B/bench" | awk 'NR == 2 { print $4 }')
	if [ "$((avail / 1024))" -lt "$((BIG * 3))" ]; then
		echo "2 GiB capture: SKIP (${avail} KiB free in $B/bench, want $((BIG * 3)) MB)"
	elif ! "$GEN" --repeat "$SEED" "$BIGF" "$BIG"; then
		echo "2 GiB capture: generating $BIGF failed"
		fails=$((fails + 1))
	else
		RUNS=1
		if an=$(measure "$LP" analyze "$BIGF"); then
			figures "analyze on a $(wc -c <"$BIGF" | awk '{ printf "%.0f", $1 / 1e6 }') MB capture" \
				"$(wc -c <"$BIGF")" "$(count "$BIGF")" "$an"
			echo "$an" | awk '{ printf "  peak RSS %.1f MiB (goal <= 64 MiB)\n", $3 / 1024 }'
		else
			echo "analyze on the 2 GiB capture: FAILED"
			fails=$((fails + 1))
		fi
	fi
	rm -f "$BIGF" "$BIGF.packets" "$BIGF.tmp"
fi
rm -f "$TMP" "$TMP.all"
[ "$fails" = 0 ]
