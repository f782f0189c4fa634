#!/bin/sh
# 70-replay.t - `--device replay:FILE`: each golden capture, played back as
# the device, gives the verdict of the live sim run that recorded it; a host
# that asks something the recording never answered gets a clear divergence.
. "$(dirname "$0")/lib.sh"
C=$(cd "$(dirname "$0")/../.." && pwd)/captures
PD=$T/pd

# The pair record the healthy-record and forgot-host captures need is made by
# replaying the healthy pairing (same UDID: one simulated iPhone, seed 1).
while read -r cap cmd want; do
	if [ "$cmd" = trust ]; then set -- trust --pair-dir "$PD"; elif [ "$cmd" = pair ]; then
		set -- trust --pair --pair-dir "$PD"; else set -- --cable-test; fi
	run_lp $T/r.json "$@" --device "replay:$C/sim-$cap.pcapng" --json; rc=$?
	v=$(jget .verdict $T/r.json)
	like "$v" "^($want)\$" "replay $cap ($cmd): $want"
	case $v in GOOD|TRUSTED) w=0 ;; *) w=1 ;; esac
	is "$rc" "$w" "replay $cap ($cmd): exit $w"
	unlike "$(jget .evidence $T/r.json)" "replay diverged" "replay $cap ($cmd): no divergence"
done <<'EOF_T'
healthy-pair pair TRUSTED
healthy-record trust TRUSTED
forgot-host trust STALE_TRUST
denied pair DENIED
locked pair LOCKED
pending pair TRUST_PENDING
camera-only trust CAMERA_ONLY
dfu cable DFU_MODE
healthy-cable cable GOOD
full-speed-cable cable DEGRADED
flaky-cable cable FLAKY|DISCONNECTED
EOF_T

# the kernel's own usbmon capture of a libusb `trust --pair` in the QEMU lab
# (link type 220, classic pcap, written by dumpcap): another writer, same meaning
run_lp $T/k.json trust --pair --pair-dir $T/pd-lab --device "replay:$C/lab-trust-usbmon.pcap" --json; rc=$?
is "$(jget .verdict $T/k.json)" TRUSTED "replay of the lab's kernel usbmon capture: TRUSTED"
is "$rc" 0 "replay of the lab's kernel usbmon capture: exit 0"
is "$(jget '.stages[] | select(.name=="Pair") | .status' $T/k.json)" ok "lab capture: Pair replayed"
unlike "$(jget .evidence $T/k.json)" "replay diverged" "lab capture: no divergence"

# read by the one capture reader: USBPcap (Windows) and a usbmon capture whose
# headers are in the other byte order replay like the native ones
run_lp $T/w.json trust --pair --pair-dir $T/pd-usbpcap --device "replay:$C/analyze-healthy-pair-usbpcap.pcap" --json
is "$(jget .verdict $T/w.json)" TRUSTED "replay of a USBPcap capture: TRUSTED"
run_lp $T/m.json trust --pair --pair-dir $T/pd-darwin --device "replay:$C/analyze-healthy-pair-darwin.pcap" --json
is "$(jget .verdict $T/m.json)" TRUSTED "replay of a macOS capture (OUT bytes at completion): TRUSTED"
run_lp $T/b.json trust --pair --pair-dir $T/pd-be --device "replay:$C/analyze-denied-big-endian.pcap" --json
is "$(jget .verdict $T/b.json)" DENIED "replay of a byte-swapped usbmon capture: DENIED"
run_lp $T/e.json --cable-test --device "replay:$C/usbmuxd-relay-trusted.pcap"; rc=$?
is "$rc" 3 "a usbmuxd relay capture has no USB device: exit 3"
like "$(cat $T/e.json.err)" "not USB" "relay capture: says why"

# the kernel's usbmon capture of Debian's usbmuxd + libimobiledevice pairing
# with the gadget and using it (tests/lab/20-interop.sh): another host's
# requests, in another order; replayed to linkprobe it deserves TRUSTED
# (linkprobe asks GetValue keys libimobiledevice never asked: UniqueDeviceID
# comes from the recorded USB serial, the rest is MissingValue and said so;
# the EPROTO completions as the gadget re-enumerated are its disconnect, not a
# lossy link)
run_lp $T/u.json trust --pair --pair-dir $T/pd-lab2 --device "replay:$C/lab-usbmuxd-usbmon.pcap" --json; rc=$?
is "$(jget .verdict $T/u.json)" TRUSTED "replay of the lab's usbmuxd + libimobiledevice session: TRUSTED"
is "$rc" 0 "replay of the lab's usbmuxd session: exit 0"
unlike "$(jget .evidence $T/u.json)" "replay diverged" "lab usbmuxd capture: no divergence"
like "$(jget '.stages[] | select(.name=="device info") | .detail' $T/u.json)" \
	"iOS 16.7.2, UDID 228171a8a8e7ee4e3b257903b58b15de0a29d3f6" \
	"lab usbmuxd capture: ProductVersion recorded, UniqueDeviceID from the USB serial"
like "$(cat $T/u.json.err)" "GetValue Key=ProductType is not in the recording: answered MissingValue" \
	"lab usbmuxd capture: a key the recording lacks is named"
is "$(jget '.stages[] | select(.name=="Pair") | .status' $T/u.json)" ok "lab usbmuxd capture: Pair replayed"

# the Pair stage of the healthy pairing: the dialog answered on the 3rd try
run_lp $T/p.json trust --pair --pair-dir $T/pd2 --device "replay:$C/sim-healthy-pair.pcapng" --json
like "$(jq -r '.stages[] | select(.name=="Pair") | .detail' $T/p.json)" "after 3 attempt\(s\), Trust tapped" \
	"healthy-pair: pending, pending, success replayed in order"
d=$(jq -r '.stages[] | select(.name=="Pair") | .duration_ns' $T/p.json)
ok $([ "$d" -ge 2000000000 ] && [ "$d" -lt 3000000000 ]; echo $?) \
	"healthy-pair: the Trust dialog wait reproduces (Pair took $d ns, recorded ~2 s)"

# divergence: a cable-test capture cannot answer `trust`
run_lp $T/d.json trust --pair-dir $T/pd3 --device "replay:$C/sim-healthy-cable.pcapng" --json; rc=$?
ok $([ $rc = 1 ] || [ $rc = 3 ]; echo $?) "divergence: exit 1 or 3 (got $rc)"
like "$(jget .evidence $T/d.json)" "replay diverged: host sent GetValue Key=UniqueDeviceID; recording has next: QueryType" \
	"divergence names the request and the recorded alternative"
run_lp $T/d.txt trust --pair-dir $T/pd3 --device "replay:$C/sim-healthy-cable.pcapng"
like "$(cat $T/d.txt)" "verdict: .*replay diverged: host sent GetValue" "divergence shown to humans"

# bad input is a runtime error, not a crash
run_lp $T/e.json trust --device "replay:$T/missing.pcapng" --json; rc=$?
is "$rc" 3 "missing capture: exit 3"
printf 'not a capture' > $T/junk.pcapng
run_lp $T/e.json --cable-test --device "replay:$T/junk.pcapng"; rc=$?
is "$rc" 3 "garbage capture: exit 3"
like "$(cat $T/e.json.err)" "replay: not a pcap" "garbage capture: says why"
# a capture that starts mid-session holds usbmux but no descriptors: replay
# cannot present a device and says why (analyze reads it: 60-analyze.t)
run_lp $T/e.json trust --device "replay:$C/mid-usbmuxd-usbmon.pcap" --json; rc=$?
is "$rc" 3 "mid-session capture: exit 3, as other unusable captures"
like "$(cat $T/e.json.err)" "started after the device was plugged in: its usbmux traffic \(bus 1 address 3\) is there, but not the descriptors replay needs" \
	"mid-session capture: replay says why it cannot present the device"
unlike "$(cat $T/e.json.err)" "GET_DESCRIPTOR" "mid-session capture: not the generic no-descriptor message"
run_lp $T/e.json trust --udid 0000 --device "replay:$C/sim-healthy-pair.pcapng"; rc=$?
like "$(cat $T/e.json.err)" "no device with UDID 0000" "--udid selects the recorded device"
done_testing
