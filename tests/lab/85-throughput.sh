#!/bin/sh
# 85-throughput.sh - the data a cable really carries, measured two ways on the
# same gadget and the same file service (the simulated iPhone's
# com.apple.afc), same size, same request size (1 MiB):
#   1. linkprobe's direct path: `--cable-test --throughput` (our usbmux,
#      lockdown session, AFC client) over libusb;
#   2. the peer path: Debian's usbmuxd + libimobiledevice's AFC client
#      (tools/lab/lab_afc.c), with the pair record linkprobe wrote.
# Both must move the file both ways and read back what they wrote; the
# figures and their ratio are printed as "# bench:" lines (never pass/fail on
# speed: the guest runs under TCG on a shared machine).
. "$LAB_REPO/tests/lab/lib.sh"
plan 11
trap lab_cleanup EXIT
LP=$LAB_REPO/linkprobe
MIB=8

check "gadget up (healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device" wait_dev 10 || exit 0
U=$(udid)
tp() { jq -r --arg f "$2" '.stages[] | select(.name == "throughput") | .[$f]' "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }

# --- 1. linkprobe, direct --------------------------------------------------
lp pair trust --pair --pair-dir /var/lib/lockdown --timeout 120
check "linkprobe paired directly ($(jfield pair .verdict))" test "$(jfield pair .verdict)" = TRUSTED
lp tp --cable-test --duration 1 --throughput=$MIB --pair-dir /var/lib/lockdown
diag "linkprobe throughput stage: $(tp tp status): $(tp tp detail)"
check "linkprobe moved $MIB MiB both ways and read back what it wrote" test "$(tp tp status)" != skipped -a "$(jfield tp .metrics.throughput_bytes)" = $((MIB << 20))
lw=$(jfield tp '.metrics.throughput_write_mbps * 100 | round / 100')
lr=$(jfield tp '.metrics.throughput_read_mbps * 100 | round / 100')
check "linkprobe reports MB/s both ways ($lw / $lr)" test -n "$lw" -a "$lw" != null -a -n "$lr" -a "$lr" != null
v=$(jfield tp .verdict)
check "the cable test's verdict is a link verdict ($v)" sh -c "case $v in GOOD|DEGRADED) ;; *) exit 1 ;; esac"

# --- 2. usbmuxd + libimobiledevice ---------------------------------------------
check "systemd-udevd running" start_udevd
check "usbmuxd started" start_usbmuxd || { explain; exit 0; }
check "usbmuxd lists the device" retry 120 1 listed || explain
out=$(timeout 300 "$LAB_BIN/lab_afc" "$U" $MIB 2>"$LAB_OUT/lab_afc.err"); rc=$?
diag "libimobiledevice AFC via usbmuxd: $out $(cat "$LAB_OUT/lab_afc.err")"
check "libimobiledevice moved $MIB MiB both ways through usbmuxd and read back what it wrote" test $rc = 0
pw=$(echo "$out" | sed -n 's/.*write_mbps=\([0-9.]*\).*/\1/p')
pr=$(echo "$out" | sed -n 's/.*read_mbps=\([0-9.]*\).*/\1/p')
check "the peer reports MB/s both ways ($pw / $pr)" test -n "$pw" -a -n "$pr"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
diag "bench: AFC $MIB MiB write: linkprobe direct $lw MB/s, libimobiledevice via usbmuxd $pw MB/s, ratio $(ratio "$lw" "$pw")"
diag "bench: AFC $MIB MiB read: linkprobe direct $lr MB/s, libimobiledevice via usbmuxd $pr MB/s, ratio $(ratio "$lr" "$pr")"
stop_usbmuxd
:
