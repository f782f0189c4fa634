#!/bin/sh
# fuzz-run.sh [-t WALL_S | -c CPU_S] [-j JOBS] [NAME...] - run libFuzzer harnesses
# (build/fuzz/fuzz_NAME, all of them if no NAME is given), niced, each with
# its dictionary (tests/fuzz/dict) and a -max_len over the caps it guards.
#
#   -t S   each harness for S seconds of wall time (make fuzz-run FUZZ_TIME=S)
#   -c S   each harness until it has used S seconds of CPU (user + system, as
#          /usr/bin/time counts them), in as many runs as that takes: on a busy
#          machine a niced fuzzer gets less than a core, so wall time would
#          overstate the fuzzing done (make fuzz-campaign FUZZ_CPU=S)
#   -j N   N harnesses at a time (default 1)
#   -a     add to the CPU already counted in build/fuzz-new/NAME.runs instead
#          of starting afresh, so a campaign stopped (^C) at the end of one
#          session goes on in the next (with -c)
#
# New inputs go to build/fuzz-new/NAME (merge them into the committed corpora
# with tools/fuzz-merge.sh); crash, leak and timeout inputs to
# build/fuzz-new/NAME.crash-*; each run's libFuzzer output to
# build/fuzz-new/NAME.log (appended), and one line per run to
# build/fuzz-new/NAME.runs:
#   wall_s cpu_s executions cov ft corpus peak_rss_mb exit
# At the end a Markdown table sums the runs of each harness named.
# Exit status: 0, or 1 if any harness found something (its log names it).
set -eu
cd "$(dirname "$0")/.."

mode=t secs=0 jobs=1 add=0
while getopts t:c:j:a o; do
	case $o in
	t) mode=t secs=$OPTARG ;;
	c) mode=c secs=$OPTARG ;;
	j) jobs=$OPTARG ;;
	a) add=1 ;;
	*) echo "usage: $0 [-t WALL_S | -c CPU_S] [-j JOBS] [-a] [NAME...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
case $secs$jobs in *[!0-9]*) echo "fuzz-run: -t, -c and -j take whole numbers" >&2; exit 2 ;; esac
[ -x /usr/bin/time ] || { echo "fuzz-run: needs /usr/bin/time (Debian package time)" >&2; exit 2; }

names=${*:-$(ls build/fuzz | sed -n 's/^fuzz_\([a-z_]*\)$/\1/p')}
out=build/fuzz-new
mkdir -p "$out"

# which dictionary and which -max_len: 64 KiB usbmux packet and PEM; 1 MiB pair
# record, pcapng block and plist inputs; the 4 MiB lockdown message cap is left
# to the unit tests (inputs that large make mutation crawl)
dict_of() {
	case $1 in
	hostlink | mux | streams) echo usbmux ;;
	usbmon | reader | analyze | replaydev | usbll | cap_tap | usb_desc | simdev) echo usbmon ;;
	*) echo plist ;;
	esac
}
maxlen_of() {
	case $1 in
	lockdown | lkd_client | plist_depth | pair_record | reader | analyze | replaydev | redact) echo 1200000 ;;
	*) echo 131072 ;;
	esac
}

# one libFuzzer run of NAME for WALL seconds; appends its line to NAME.runs
run_once() {
	n=$1 wall=$2
	t=$(mktemp)
	echo "=== fuzz-run $n: $wall s wall, $(date -u +%FT%TZ)" >>"$out/$n.log"
	rc=0
	nice -n 19 /usr/bin/time -f '%e %U %S' -o "$t" "build/fuzz/fuzz_$n" \
		-max_total_time="$wall" -max_len="$(maxlen_of "$n")" \
		-dict="tests/fuzz/dict/$(dict_of "$n").dict" -print_final_stats=1 \
		-artifact_prefix="$out/$n.crash-" "$out/$n" "tests/fuzz/corpus/$n" \
		>>"$out/$n.log.tmp" 2>&1 || rc=$?
	cat "$out/$n.log.tmp" >>"$out/$n.log"
	# the last status line carries coverage: "#N  DONE   cov: X ft: Y corp: Z/..."
	awk -v rc="$rc" -v tf="$t" '
		/^stat::number_of_executed_units:/ { ex = $2 }
		/^stat::peak_rss_mb:/ { rss = $2 }
		/^#[0-9]+.* cov: / {
			for (i = 1; i < NF; i++) {
				if ($i == "cov:") cov = $(i + 1)
				if ($i == "ft:") ft = $(i + 1)
				if ($i == "corp:") { corp = $(i + 1); sub(/\/.*/, "", corp) }
			}
		}
		END {
			# time(1) puts "Command exited with non-zero status N" first
			while ((getline l <tf) > 0) tl = l
			split(tl, a, " ")
			printf "%s %.1f %s %s %s %s %s %s\n", a[1], a[2] + a[3], ex + 0, cov + 0, ft + 0,
				corp + 0, rss + 0, rc
		}' "$out/$n.log.tmp" >>"$out/$n.runs"
	rm -f "$t" "$out/$n.log.tmp"
	return "$rc"
}

cpu_used() { awk '{ s += $2 } END { printf "%d\n", s }' "$out/$1.runs" 2>/dev/null || echo 0; }

# one harness, to the wall or CPU budget; 0, or 1 when it found something
fuzz_one() {
	n=$1
	[ -x "build/fuzz/fuzz_$n" ] || { echo "fuzz-run: no build/fuzz/fuzz_$n (make fuzz)" >&2; return 1; }
	mkdir -p "$out/$n"
	[ "$add" = 1 ] && [ "$mode" = c ] || : >"$out/$n.runs"
	if [ "$mode" = t ]; then
		run_once "$n" "$secs" || { report_fault "$n"; return 1; }
	else
		while :; do
			need=$((secs - $(cpu_used "$n")))
			[ "$need" -gt 0 ] || break
			[ "$need" -ge 10 ] || need=10
			run_once "$n" "$need" || { report_fault "$n"; return 1; }
		done
	fi
	echo "fuzz-run $n: $(summary "$n")"
}

report_fault() {
	rc=$(tail -1 "$out/$1.runs" | awk '{ print $8 }')
	if [ "$rc" = 72 ]; then
		touch "$claims/.stop"
		echo "fuzz-run $1: interrupted: $(summary "$1")" >&2
		return
	fi
	echo "fuzz-run $1: FOUND SOMETHING (exit $rc); inputs: $(ls "$out/$1.crash-"* 2>/dev/null | tr '\n' ' ')" >&2
	grep -E 'ERROR|SUMMARY|==[0-9]+==' "$out/$1.log" | tail -8 >&2
}

# "| name | runs | wall s | CPU min | executions | cov | ft | peak RSS | crashes |"
summary() {
	awk -v n="$1" '
		{ w += $1; c += $2; ex += $3; cov = $4; ft = $5; if ($7 > rss) rss = $7; runs++
		  if ($8 != 0 && $8 != 72) bad++ }
		END { printf "| `%s` | %d | %d | %.1f | %d | %d | %d | %d MB | %d |\n",
			n, runs, w, c / 60, ex, cov, ft, rss, bad }' "$out/$1.runs"
}

# -j N: N workers take harnesses off the list, each claimed once (mkdir is
# atomic). SIGINT to the process group (^C) stops the fuzzers, which print their
# figures; their runs are counted, and nothing new starts.
claims=$(mktemp -d)
trap 'rm -rf "$claims"' EXIT
trap 'touch "$claims/.stop"' INT TERM
worker() {
	trap 'touch "$claims/.stop"' INT TERM
	f=0
	for n in $names; do
		[ ! -e "$claims/.stop" ] || break
		mkdir "$claims/$n" 2>/dev/null || continue
		fuzz_one "$n" || f=1
	done
	return $f
}
pids='' fail=0 i=0
while [ "$i" -lt "$jobs" ]; do
	worker &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do
	while :; do
		rc=0
		wait "$p" || rc=$?
		# a trapped signal ends wait early (rc > 128) while the worker still runs
		if [ "$rc" -gt 128 ] && kill -0 "$p" 2>/dev/null; then continue; fi
		break
	done
	[ "$rc" -eq 0 ] || fail=1
done

echo
echo "| harness | runs | wall s | CPU min | executions | cov | ft | peak RSS | crashes |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $names; do [ -s "$out/$n.runs" ] && summary "$n"; done
exit $fail
