#!/bin/sh
# 87-watch.t - `linkprobe watch`: simulated devices coming and going
# (churn), the JSON lines, the Prometheus file (promtool check metrics), the
# example alert rules (promtool check rules / test rules), a usbmux interface
# held by another process, clean shutdown on SIGTERM/SIGINT, and flat memory
# over hours of churn (virtual clock).
. "$(dirname "$0")/lib.sh"

D=$T/pd
M=$T/m.prom
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
have_promtool=0
command -v promtool >/dev/null && have_promtool=1

# 3 phones, each leaves for 0.5 s every 3 s (spread over the period); 10 s
run_lp $T/w.jsonl watch --device 'sim:healthy*2+full-speed,churn=3/0.5' --duration 10 \
	--interval 2 --metrics $M --pair-dir $D
is $? 0 "watch --duration exits 0"
ok "$(jq -e . $T/w.jsonl >/dev/null 2>&1; echo $?)" "every line is JSON"
is "$(jq -c . $T/w.jsonl | wc -l)" "$(wc -l <$T/w.jsonl)" "one JSON object per line"
is "$(head -1 $T/w.jsonl | jq -r .event)" start "first line: start"
is "$(tail -1 $T/w.jsonl | jq -r .event)" summary "last line: summary"
is "$(tail -1 $T/w.jsonl | jq -r .reason)" duration "ended by --duration"
is "$(jq -r 'select(.event=="arrived") | .port_path' $T/w.jsonl | sort | tr '\n' ' ')" "1-1.1 1-1.2 1-1.3 " \
	"three arrivals, one per port"
is "$(jq -r 'select(.event=="arrived") | .udid' $T/w.jsonl | sort -u | wc -l)" 3 "three UDIDs"
# 10 s with a departure every 3 s per phone: 3 or 4 departures each
n_left=$(jq -r 'select(.event=="left")' $T/w.jsonl | jq -s length)
n_back=$(jq -r 'select(.event=="reenumerated")' $T/w.jsonl | jq -s length)
ok "$([ "$n_left" -ge 9 ] && [ "$n_left" -le 12 ]; echo $?)" "phones left the bus on schedule ($n_left departures)"
ok "$([ "$n_back" -ge 8 ] && [ "$n_back" -le "$n_left" ]; echo $?)" "and came back as re-enumerations ($n_back)"
like "$(jq -r 'select(.event=="reenumerated") | .gap_s' $T/w.jsonl | head -1)" "^0\.[5-9]" \
	"a re-enumeration says how long the phone was gone"
is "$(jq -r 'select(.event=="reenumerated" and .port_path=="1-1.2") | .udid' $T/w.jsonl | sort -u)" \
	"$(jq -r 'select(.event=="arrived" and .port_path=="1-1.2") | .udid' $T/w.jsonl)" \
	"the phone back on a port is the one that left it"
is "$(jq -r 'select(.event=="arrived" and .port_path=="1-1.3") | .speed_mbps' $T/w.jsonl)" 12 \
	"speed of each attachment (the full-speed one: 12)"
p=$(jq -c 'select(.event=="probe" and .port_path=="1-1.1")' $T/w.jsonl | tail -1)
like "$(echo "$p" | jq -r .control_ms)" "^[0-9]+\.[0-9]+$" "probe: control round trip in ms"
like "$(echo "$p" | jq -r .usbmux_ms)" "^[0-9]+\.[0-9]+$" "probe: usbmux round trip"
like "$(echo "$p" | jq -r .lockdown_ms)" "^[0-9]+\.[0-9]+$" "probe: lockdown QueryType round trip"
is "$(echo "$p" | jq -r .product_type)" "iPhone10,6" "product type learned from lockdown"
is "$(echo "$p" | jq -r .probe_errors)" 0 "no probe errors on a healthy phone"
is "$(tail -1 $T/w.jsonl | jq -r .arrivals)" "$((3 + n_back))" "summary: arrivals = first arrivals + re-enumerations"
is "$(tail -1 $T/w.jsonl | jq -r .departures)" "$n_left" "summary: departures"

# the metrics file
ok "$([ -f $M ]; echo $?)" "--metrics file written"
is "$(stat -c %a $M)" 644 "readable by the collector's user (0644)"
is "$(ls -a $T | grep -c 'm.prom.tmp')" 0 "no temporary file left beside it"
like "$(cat $M)" "# HELP linkprobe_device_reenumerations_total " "HELP lines"
like "$(cat $M)" "# TYPE linkprobe_device_reenumerations_total counter" "TYPE lines"
like "$(cat $M)" 'linkprobe_device_present\{udid="[0-9a-f]{40}",port_path="1-1.2",product_type="iPhone10,6"\} [01]' \
	"per-device labels: UDID, port path, product type"
is "$(grep -c '^linkprobe_watch_up 0$' $M)" 1 "linkprobe_watch_up 0 in the file left at the end"
u=$(jq -r 'select(.event=="arrived" and .port_path=="1-1.1") | .udid' $T/w.jsonl)
is "$(grep "^linkprobe_device_reenumerations_total{udid=\"$u\"" $M | awk '{print $2}')" \
	"$(jq -r "select(.event==\"reenumerated\" and .udid==\"$u\")" $T/w.jsonl | jq -s length)" \
	"the file's re-enumeration count is the JSON lines' one"
like "$(grep 'linkprobe_device_link_speed_bytes_per_second.*port_path="1-1.3"' $M)" " 1500000$" \
	"full speed in the file (1.5e6 bytes/s = 12 Mb/s)"
if [ $have_promtool = 1 ]; then
	out=$(promtool check metrics <$M 2>&1)
	is "$?" 0 "promtool check metrics passes${out:+: $out}"
	out=$(promtool check rules "$ROOT/tools/prometheus/linkprobe-alerts.yml" 2>&1)
	is "$?" 0 "promtool check rules passes on the example alerts"
	out=$(cd "$ROOT/tools/prometheus" && promtool test rules linkprobe-alerts.test.yml 2>&1)
	is "$?" 0 "the alerts fire on full speed, error rate and re-enumerations (promtool test rules)"
	# and the check can fail: a counter without _total
	sed 's/linkprobe_device_probes_total/linkprobe_device_probes/g' $M >$T/bad.prom
	promtool check metrics <$T/bad.prom >/dev/null 2>&1
	is "$?" 3 "promtool check metrics rejects a badly named counter (the check bites)"
else
	echo "# promtool missing (Debian package prometheus; tools/bootstrap.sh installs it)"
	ok 1 "promtool check metrics"
	ok 1 "promtool check rules"
	ok 1 "promtool test rules"
	ok 1 "promtool bites"
fi

# usbmuxd holds the interface: control round trips only, said so
run_lp $T/h.jsonl watch --device 'sim:healthy,fault=claim-ebusy' --duration 3 --interval 1 \
	--metrics $T/h.prom --pair-dir $D
is $? 0 "watch with the interface held exits 0"
p=$(jq -c 'select(.event=="probe")' $T/h.jsonl | tail -1)
is "$(echo "$p" | jq -r .usbmux_held)" true "probe says usbmux is held by another process"
like "$(echo "$p" | jq -r .control_ms)" "^[0-9.]+$" "control round trip still measured"
is "$(echo "$p" | jq -r .usbmux_ms)-$(echo "$p" | jq -r .lockdown_ms)" "null-null" "no usbmux/lockdown probe on a held device"
like "$(cat $T/h.prom)" 'linkprobe_device_usbmux_held\{[^}]*\} 1' "the file says held"

# a flaky phone: its errors are counted
run_lp $T/f.jsonl watch --device 'sim:flaky' --duration 4 --interval 0.2 --pair-dir $D
like "$(tail -1 $T/f.jsonl | jq -r '.probe_errors + .transfer_errors')" "^[1-9]" "errors of a flaky phone counted"
is "$(tail -1 $T/f.jsonl | jq -r .reenumerations)" 1 "its drop at 0.7 s is one re-enumeration"
is "$(jq -r 'select(.event=="error") | .probe' $T/f.jsonl | sort -u | grep -cvE '^(control|usbmux|lockdown)$')" 0 \
	"error lines name the probe that failed"

# clean shutdown: SIGTERM and SIGINT end it with a summary, exit 0 (real clock)
for sig in TERM INT; do
	LINKPROBE_SIM_CLOCK= "$LP" watch --device 'sim:healthy*2,clock=real' --interval 0.2 \
		--metrics $T/s.prom --pair-dir $D >$T/s.jsonl 2>$T/s.err &
	pid=$!
	wait_for 60 sh -c "grep -q '\"event\":\"probe\"' $T/s.jsonl"
	ok $? "SIG$sig: watch probing"
	kill -$sig $pid
	wait $pid
	is $? 0 "SIG$sig: exit 0"
	is "$(tail -1 $T/s.jsonl | jq -r .reason)" "SIG$sig" "SIG$sig: last line is the summary, with the reason"
	is "$(tail -1 $T/s.jsonl | jq -r .devices_present)" 2 "SIG$sig: both phones present at the end"
	like "$(cat $T/s.err)" "linkprobe watch: [0-9.]+ s, 2 device\(s\) seen" "SIG$sig: summary on stderr"
	is "$(grep -c '^linkprobe_watch_up 0$' $T/s.prom)" 1 "SIG$sig: the file says the watch is down"
done

# flat memory: ten times as long, ten times the churn, same peak RSS. Under
# AddressSanitizer freed blocks wait in its quarantine (up to 256 MB) and ten
# times the churn frees ten times the bytes: the quarantine is off for these
# two runs, so the peak is live memory again (LeakSanitizer still checks exit)
churn() {
	if lp_asan; then
		(export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
			run_lp "$@")
	else run_lp "$@"; fi
}
churn $T/a.jsonl watch --device 'sim:healthy*4,churn=5/1' --duration 300 --pair-dir $D
churn $T/b.jsonl watch --device 'sim:healthy*4,churn=5/1' --duration 3000 --pair-dir $D
a=$(tail -1 $T/a.jsonl | jq -r .max_rss_kb)
b=$(tail -1 $T/b.jsonl | jq -r .max_rss_kb)
is "$(tail -1 $T/b.jsonl | jq -r .reenumerations)" 2399 "50 min of churn: 2399 re-enumerations followed"
ok "$([ "$b" -le $((a + 1024)) ]; echo $?)" "peak RSS flat over 10x the churn ($a KB -> $b KB)"

# usage
run_lp $T/e.json watch --all --json; is $? 2 "--all is not watch's"
run_lp $T/e.json list --metrics $M --json; is $? 2 "--metrics is watch's"
run_lp $T/e.json watch --interval 0 --json; is $? 2 "--interval 0 is a usage error"
done_testing
