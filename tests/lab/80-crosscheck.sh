#!/bin/sh
# 80-crosscheck.sh - linkprobe's capture against the kernel's: during one
# `linkprobe trust --pair` over libusb (usbmuxd not running), linkprobe
# records its own transfers (--capture lp-trust.pcapng, --no-redact so the
# payloads are the wire's) while dumpcap records the bus on usbmon
# (kernel-trust.pcap); tools/lab/crosscheck.sh then checks both show the same
# bulk transfers - endpoints, lengths, bytes, order - and timestamps within
# its tolerance. Both captures stay in $LAB_OUT as artifacts.
. "$LAB_REPO/tests/lab/lib.sh"
# 5 of its own + the 7 results of tools/lab/crosscheck.sh
plan 12
trap lab_cleanup EXIT
LP=$LAB_REPO/linkprobe
LPCAP=$LAB_OUT/lp-trust.pcapng
KCAP=$LAB_OUT/kernel-trust.pcap


check "gadget up (healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device" wait_dev 10 || exit 0
bus=$(cat "$(devdir)/busnum")
modprobe usbmon 2>/dev/null || true
rm -f "$LPCAP" "$KCAP"
CAPFILE=$KCAP
dumpcap -q -P -i "usbmon$bus" -w "$KCAP" >"$LAB_OUT/dumpcap-kernel-trust.log" 2>&1 &
echo $! >"$LAB_STATE/dumpcap.pid"
check "usbmon$bus capture started" retry 20 0.1 test -s "$KCAP" || exit 0

timeout 200 "$LP" trust --pair --timeout 120 --pair-dir "$LAB_STATE/xcheck-pair" \
	--capture "$LPCAP" --no-redact --json >"$LAB_OUT/linkprobe-xcheck.json" \
	2>"$LAB_OUT/linkprobe-xcheck.err"
echo "linkprobe trust -> rc $?"
capture_stop
v=$(jq -r .verdict "$LAB_OUT/linkprobe-xcheck.json" 2>/dev/null)
check "trust --pair --capture over libusb: TRUSTED ($v)" test "$v" = TRUSTED
check "linkprobe wrote its capture" test -s "$LPCAP"
diag "lp-trust.pcapng $(stat -c %s "$LPCAP" 2>/dev/null) bytes, kernel-trust.pcap $(stat -c %s "$KCAP") bytes (usbmon$bus)"

# crosscheck's own TAP, renumbered into the lab's
"$LAB_REPO/tools/lab/crosscheck.sh" "$LPCAP" "$KCAP" >"$LAB_OUT/crosscheck.txt" 2>&1
echo "crosscheck -> rc $?"
cat "$LAB_OUT/crosscheck.txt"
n=0
while IFS= read -r l; do
	case $l in
	"ok "*) pass "crosscheck: ${l#* - }"; n=$((n + 1)) ;;
	"not ok "*) fail "crosscheck: ${l#* - }"; n=$((n + 1)) ;;
	"#"*) diag "${l#\# }" ;;
	"Bail out!"*) fail "crosscheck: $l"; n=$((n + 1)) ;;
	esac
done <"$LAB_OUT/crosscheck.txt"
echo "crosscheck reported $n results"
