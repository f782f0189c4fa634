#!/bin/sh
# 22-throughput.t - `--cable-test --throughput`: a file written to the device
# through com.apple.afc, read back, verified and removed; MB/s each way in
# the stage and the JSON metrics, judged against the link's practical rate.
# The simulated iPhone serves AFC over its link model (virtual clock), so the
# figures follow the profile: ~51 MB/s at high speed (the model's 53 MB/s
# wire rate), ~1.2 MB/s at full speed, a few MB/s on slow-link.
. "$(dirname "$0")/lib.sh"

# one phone (state=) and one pair directory per profile
pair() { # pair PROFILE
	run_lp $T/p.json trust --pair --device "sim:$1,state=$T/phone-$1" --pair-dir "$T/pd-$1" --json
	is "$(jget .verdict $T/p.json)" TRUSTED "$1: paired for the throughput test"
}
cable() { # cable OUT PROFILE ARGS...
	out=$1 prof=$2; shift 2
	run_lp "$out" --cable-test --device "sim:$prof,state=$T/phone-$prof" --pair-dir "$T/pd-$prof" "$@"
}
stage() { jget '.stages[] | select(.name == "throughput") | .'"$2" "$1"; }
num_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
num_lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# --- high speed: near the wire rate, GOOD -----------------------------------
pair healthy
cable $T/h.json healthy --throughput --json; rc=$?
is "$rc" 0 "healthy: exit 0"
is "$(jget .verdict $T/h.json)" GOOD "healthy: GOOD"
is "$(stage $T/h.json status)" ok "healthy: throughput stage ok"
like "$(stage $T/h.json detail)" "com.apple.afc: write [0-9.]+ MB/s .*read [0-9.]+ MB/s .*verified and removed" \
	"healthy: the stage says what moved, both ways, verified and removed"
w=$(jget .metrics.throughput_write_mbps $T/h.json); r=$(jget .metrics.throughput_read_mbps $T/h.json)
ok $(num_ge "$w" 30; echo $?) "healthy: write $w MB/s >= 30"
ok $(num_ge "$r" 30; echo $?) "healthy: read $r MB/s >= 30"
ok $(num_lt "$w" 54; echo $?) "healthy: write $w MB/s under the 53.2 MB/s wire rate"
# default size: about one second of a 480 Mb/s link, whole MiB
is "$(jget .metrics.throughput_bytes $T/h.json)" 40894464 "healthy: default size 39 MiB (~1 s at ~40 MB/s)"
like "$(jget .metrics.throughput_spread_mbps.write_min $T/h.json)" "^[0-9.]+$" "healthy: spread reported"
is "$(jget .metrics.throughput_practical_mbps $T/h.json)" 40 "healthy: judged against ~40 MB/s"

cable $T/h2.json healthy --throughput=2 --json
is "$(jget .metrics.throughput_bytes $T/h2.json)" 2097152 "--throughput=2: 2 MiB each way"
cable $T/h.txt healthy --throughput=1
like "$(cat $T/h.txt)" "throughput +ok .*MB/s" "human output: the throughput stage line"
like "$(cat $T/h.txt)" "throughput_write_mbps" "human output: the metrics"

# --- a USB-C phone at 10 Gb/s: the device's usbmux moves about the USB 2.0
# figure (a real iPad Pro at 10 Gb/s: ~35 MB/s), which is healthy, not DEGRADED.
# The sim times SuperSpeed as high speed, so it moves what a real one does.
pair usbc-superspeed
cable $T/ss.json usbc-superspeed --throughput --json; rc=$?
is "$(jget .verdict $T/ss.json)" GOOD "usbc-superspeed: ~40 MB/s at 10 Gb/s is GOOD"
is "$rc" 0 "usbc-superspeed: exit 0"
is "$(stage $T/ss.json status)" ok "usbc-superspeed: throughput stage ok"
is "$(jget .metrics.throughput_practical_mbps $T/ss.json)" 40 "usbc-superspeed: judged against ~40 MB/s, not the link's signalling rate"
is "$(jget .metrics.throughput_bytes $T/ss.json)" 40894464 "usbc-superspeed: default size 39 MiB (~1 s of what usbmux moves)"
like "$(stage $T/ss.json detail)" "usbmux .*USB 2.0 figure whatever the link speed" \
	"usbc-superspeed: the stage says the device's usbmux, not the link, sets the rate"
w=$(jget .metrics.throughput_write_mbps $T/ss.json)
ok $(num_lt "$w" 54; echo $?) "usbc-superspeed: write $w MB/s is of the real ~35 MB/s class, not GB/s"
# --- full speed: the numbers show it; DEGRADED by the link speed ------------
pair full-speed
cable $T/f.json full-speed --throughput --json; rc=$?
is "$(jget .verdict $T/f.json)" DEGRADED "full-speed: DEGRADED"
is "$rc" 1 "full-speed: exit 1"
is "$(jget .metrics.throughput_bytes $T/f.json)" 1048576 "full-speed: default size 1 MiB"
w=$(jget .metrics.throughput_write_mbps $T/f.json)
ok $(num_lt "$w" 1.6; echo $?) "full-speed: write $w MB/s under the 1.5 MB/s of 12 Mb/s"
ok $(num_ge "$w" 0.5; echo $?) "full-speed: write $w MB/s near it"

# --- a high-speed link that crawls: only the data shows it -------------------
pair slow-link
cable $T/s0.json slow-link --json
is "$(jget .verdict $T/s0.json)" GOOD "slow-link without --throughput: round trips look GOOD"
cable $T/s.json slow-link --throughput --json; rc=$?
is "$(jget .verdict $T/s.json)" DEGRADED "slow-link with --throughput: DEGRADED"
is "$rc" 1 "slow-link: exit 1"
is "$(stage $T/s.json status)" fail "slow-link: the throughput stage fails"
like "$(jget .evidence $T/s.json)" "moves data at [0-9.]+ MB/s .*under 25% of the ~40 MB/s" \
	"slow-link: the evidence has the numbers"
like "$(jget .remedy $T/s.json)" "cable" "slow-link: the remedy is about the cable/port"
like "$(stage $T/s.json detail)" "cut short by the time budget" "slow-link: the default size stops after its time budget"

# --- flaky: a transfer error while moving data is FLAKY, not USB_ERROR ------
# (the healthy phone's memory, now behind a flaky link: it knows this host)
run_lp $T/k.json --cable-test --device "sim:flaky,state=$T/phone-healthy" --pair-dir "$T/pd-healthy" --throughput --json
is "$(jget .verdict $T/k.json)" FLAKY "flaky: FLAKY"

# --- no pairing: skipped, says what is needed, verdict stands -----------------
run_lp $T/n.json --cable-test --device sim:healthy --pair-dir "$T/empty" --throughput --json; rc=$?
is "$rc" 0 "no pair record: exit 0 (the cable is judged by its round trips)"
is "$(jget .verdict $T/n.json)" GOOD "no pair record: GOOD"
is "$(stage $T/n.json status)" skipped "no pair record: throughput skipped"
like "$(stage $T/n.json detail)" "needs a pairing.*linkprobe trust --pair" "no pair record: says what to do"
is "$(jget .metrics.throughput_write_mbps $T/n.json)" null "no pair record: no figure invented"

# --- this host's record is the problem: the host's verdict, as in trust -----
rec=$(ls "$T"/pd-healthy/*.plist | grep -v SystemConfiguration | head -n 1)
for kind in garbage directory badkey; do
	d=$T/pd-$kind; rm -rf "$d"; cp -r "$T/pd-healthy" "$d"; f=$d/$(basename "$rec")
	case $kind in
	garbage) printf 'not a plist' >"$f" ;;
	directory) rm -f "$f"; mkdir "$f" ;;
	badkey) plistutil -i "$rec" -o "$T/r.xml" -f xml >/dev/null 2>&1
		# HostPrivateKey's data replaced by 3 bytes that are no PEM
		awk '/<key>HostPrivateKey<\/key>/ { print; k = 1; next }
		     k && /<data>/ { print "<data>QUFB</data>"; skip = !/<\/data>/; k = 0; next }
		     skip { if (/<\/data>/) skip = 0; next } { print }' "$T/r.xml" >"$T/r2.xml"
		plistutil -i "$T/r2.xml" -o "$f" -f bin >/dev/null 2>&1 ;;
	esac
	run_lp $T/b.json --cable-test --device "sim:healthy,state=$T/phone-healthy" --pair-dir "$d" --throughput --json; rc=$?
	case $kind in directory) want=PAIR_RECORD_ACCESS ;; *) want=PAIR_RECORD_CORRUPT ;; esac
	is "$(jget .verdict $T/b.json)" $want "record $kind: $want, as trust says it"
	is "$rc" 1 "record $kind: exit 1"
	is "$(stage $T/b.json status)" fail "record $kind: the throughput stage fails"
	unlike "$(jget .remedy $T/b.json)" "cable|another port|restart the device" "record $kind: no cable or phone remedy"
done
like "$(jget .evidence $T/b.json)" "HostCertificate or HostPrivateKey is not a usable PEM" "bad key: the evidence says which"

# --- a device that no longer knows this host: its real cause ------------------
run_lp $T/x.json --cable-test --device "sim:forgot-host,state=$T/phone-healthy" --pair-dir "$T/pd-healthy" --throughput --json
is "$(jget .verdict $T/x.json)" STALE_TRUST "a record the device forgot: STALE_TRUST"

# --- usage ---------------------------------------------------------------------
run_lp $T/u --cable-test --device sim --throughput=0; is $? 2 "--throughput=0 is a usage error"
run_lp $T/u --cable-test --device sim --throughput=2x; is $? 2 "--throughput=2x is a usage error"
like "$(cat $T/u.err)" "MiB" "the usage error says what it wants"
run_lp $T/u trust --device sim --throughput; is $? 2 "trust does not take --throughput"
run_lp $T/u --cable-test --help
like "$(cat $T/u)" "--throughput\[=MiB\]" "cable-test help lists --throughput[=MiB]"
done_testing
