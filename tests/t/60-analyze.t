#!/bin/sh
# 60-analyze.t - `linkprobe analyze` on every golden capture in
# captures/TESTLIST: the normalized JSON (captures/expected/normalize.jq)
# must equal captures/expected/<name>.json, and the exit code must follow the
# verdict. Plus human output, usage errors, and the two-device capture.
. "$(dirname "$0")/lib.sh"
C=$(cd "$(dirname "$0")/../../captures" && pwd)
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }

# the hand-written verdict and stages of TESTLIST, then the rest of the
# expected output (device identity, counts) from expected/<name>.json
stages_of() { jq -r '[.stages[] | "\(.name | gsub(" "; "_"))=\(.status)"] | join(" ")' "$1" 2>/dev/null; }
grep -v '^#' "$C/TESTLIST" | while read -r name file opts verdict stages; do
	[ -n "$name" ] || continue
	[ "$opts" = - ] && opts=
	# a case whose stages the analyzer is known to get wrong: "# TODO why"
	# after its stages; the stage check is a TAP TODO, its expected file (if
	# any) is compared without the stages, the verdict and exit code still
	# count
	todo=
	case $stages in *" # TODO "*) todo=${stages#* \# TODO }; stages=${stages%% \# TODO *} ;; esac
	# shellcheck disable=SC2086
	run_lp "$T/$name.json" analyze "$C/$file" $opts --json
	echo "$? $name" >> "$T/rcs"
	got=$(jq -r .verdict "$T/$name.json" 2>/dev/null)
	if [ -n "$verdict" ] && [ "$got" = "$verdict" ]; then echo "ok - $name: verdict $verdict (TESTLIST)"; else
		echo "not ok - $name: verdict '$got', TESTLIST says '$verdict'"; fi
	got=$(stages_of "$T/$name.json")
	if [ -n "$stages" ] && [ "$got" = "$stages" ]; then echo "ok - $name: stages (TESTLIST)${todo:+ # TODO $todo}"; else
		echo "not ok - $name: stages differ from TESTLIST${todo:+ # TODO $todo}"; echo "#   got:  $got"; echo "#   want: $stages"; fi
	jq -S -f "$C/expected/normalize.jq" "$T/$name.json" > "$T/$name.norm" 2>/dev/null
	if [ -n "$todo" ] && [ -e "$C/expected/$name.json" ]; then
		# known wrong stages: the rest of the expected output still holds
		jq -S 'del(.stages)' "$C/expected/$name.json" > "$T/$name.want"
		jq -S 'del(.stages)' "$T/$name.norm" > "$T/$name.got"
		if diff -u "$T/$name.want" "$T/$name.got" > "$T/$name.diff"; then echo "ok - golden $name ($file), stages aside"; else
			echo "not ok - golden $name ($file), stages aside"; sed 's/^/# /' "$T/$name.diff" | head -40; fi
		want=$(jq -r .exit_code "$C/expected/$name.json")
	elif [ -n "$todo" ]; then
		want=$(jq -r .exit_code "$T/$name.norm")
	elif diff -u "$C/expected/$name.json" "$T/$name.norm" > "$T/$name.diff"; then
		echo "ok - golden $name ($file)"
		want=$(jq -r .exit_code "$C/expected/$name.json")
	else
		echo "not ok - golden $name ($file)"; sed 's/^/# /' "$T/$name.diff" | head -40
		want=$(jq -r .exit_code "$C/expected/$name.json")
	fi
	got=$(grep " $name\$" "$T/rcs" | cut -d' ' -f1)
	case $verdict in GOOD | TRUSTED | FOUND) w=0 ;; *) w=1 ;; esac
	if [ "$got" = "$want" ] && [ "$got" = "$w" ]; then echo "ok - exit code $got for $name"; else echo "not ok - exit code $got for $name (want $w)"; fi
done > "$T/golden.tap"
while read -r line; do
	case "$line" in
	*" # TODO "*) _n=$((_n + 1)); echo "${line%%ok - *}ok $_n - ${line#*ok - }" ;;
	ok*) ok 0 "${line#ok - }" ;;
	"not ok"*) ok 1 "${line#not ok - }" ;;
	*) echo "$line" ;;
	esac
done < "$T/golden.tap"
ok $([ -s "$T/golden.tap" ]; echo $?) "TESTLIST produced results"

# human output: stage lines, verdict and remedy
run_lp "$T/h.txt" analyze "$C/sim-denied.pcapng"
is "$?" 1 "problem verdict exits 1"
like "$(cat "$T/h.txt")" "Pair +FAIL" "human output shows the failing stage"
like "$(cat "$T/h.txt")" "verdict: DENIED" "human output shows the verdict"
like "$(cat "$T/h.txt")" "remedy: .*Reset Location" "human output shows the remedy"

# stage times come from the capture: Pair waits on the Trust dialog
run_lp "$T/p.json" analyze "$C/sim-healthy-pair.pcapng" --json
like "$(jget '.stages[] | select(.name=="Pair") | .duration_ns' "$T/p.json")" "^[12][0-9]{9}$" \
	"Pair stage spans the Trust-dialog wait (1-3 s of capture time)"
is "$(jget '.metrics.lockdown.dialog_pending' "$T/p.json")" 2 "two PairingDialogResponsePending answers counted"
like "$(jget '.metrics.lockdown_rtt.count' "$T/p.json")" "^[1-9]" "lockdown latency measured"
like "$(jget '.connections | length' "$T/p.json")" "^[1-9]" "per-connection list present"

# unconfigured (SET_CONFIGURATION 0, no usbmuxd after it): the host's fault
run_lp "$T/u.txt" analyze "$C/crafted-unconfigured.pcap"
like "$(cat "$T/u.txt")" "usbmux +FAIL .*configuration 0 \(unconfigured\).*no usbmux client claimed the device" \
	"unconfigured: the usbmux stage says no usbmux client claimed it"
like "$(cat "$T/u.txt")" "verdict: USBMUXD_UNREACHABLE .*usbmuxd not running, or not started by udev" \
	"unconfigured: usbmuxd named as the likely cause"
unlike "$(cat "$T/u.txt")" "camera|charge-only|another cable" "unconfigured: no camera, cable or phone advice"

# two devices are told apart
run_lp "$T/two.json" analyze "$C/analyze-two-devices.pcap" --json
is "$(jget '.devices | length' "$T/two.json")" 2 "two devices listed"
is "$(jget '[.devices[].verdict] | sort | join(",")' "$T/two.json")" "DENIED,TRUSTED" "each device has its own verdict"
is "$(jget '[.devices[] | "\(.bus).\(.address)"] | sort | join(",")' "$T/two.json")" "1.2,3.7" "devices by bus.address"

# the usbmuxd relay is found by shape, and not at all on a wrong port
run_lp "$T/r.json" analyze "$C/usbmuxd-relay-trusted.pcap" --usbmuxd-port 1234 --json
is "$?" 3 "wrong --usbmuxd-port: a capture error (TCP, but no usbmuxd relay), not NO_DEVICE"
like "$(cat "$T/r.json.err")" "no usbmuxd messages on the port given with --usbmuxd-port, 1234" \
	"wrong --usbmuxd-port: the error names the port"

# The macOS captures are made by capconv.py: Wireshark must read them as it
# reads macOS's own (LINKTYPE_USB_DARWIN) - the device descriptor decoded
# from a control completion paired with its setup submit, the host's bulk OUT
# bytes in completions and none in submits - or the goldens prove nothing
if command -v tshark >/dev/null; then
	D=$C/analyze-healthy-pair-darwin.pcap
	is "$(tshark -r "$D" -Y usb.idVendor -T fields -e usb.idVendor -e usb.idProduct 2>/dev/null | head -1)" \
		"$(printf '0x05ac\t0x12a8')" "macOS capture: tshark decodes the device descriptor"
	is "$(tshark -r "$D" -Y 'usb.darwin.request_type == 1 && usb.darwin.endpoint_address == 0x04 && usb.capdata' 2>/dev/null | wc -l)" \
		"$(jget .metrics.transfers.bulk_out "$T/darwin.json")" \
		"macOS capture: every bulk OUT completion carries its bytes (tshark), as many as analyze counts transfers"
	is "$(tshark -r "$D" -Y 'usb.darwin.request_type == 0 && usb.capdata' 2>/dev/null | wc -l)" 0 \
		"macOS capture: no bulk submit carries data (tshark)"
else
	for _i in 1 2 3; do echo "ok $((_n = _n + 1)) # SKIP tshark not installed"; done
fi

# TLS that ends without ending the connection: after StopSession and both
# close_notify alerts lockdown goes on in plaintext, even into a second
# session. Every plaintext message is followed (8 requests), none of it is
# taken for a broken TLS record.
run_lp "$T/restart.json" analyze "$C/usbmuxd-relay-restart.pcap" --json
is "$?" 0 "plaintext after StopSession: exit 0"
is "$(jget '.metrics.lockdown | "\(.requests) \(.replies)"' "$T/restart.json")" "8 8" \
	"plaintext after StopSession: both sessions' plaintext requests and replies counted"
is "$(jget '"\(.metrics.protocol_violations) \(.metrics.anomalies)"' "$T/restart.json")" "0 0" \
	"plaintext after StopSession: no violation, no anomaly"
like "$(jget '.stages[] | select(.name == "StartSession") | .detail' "$T/restart.json")" \
	"B2C3D4E5-2222-4333-8444-555566667777" "the second session's StartSession reply is read"

# TLS 1.3 encrypts its alerts: the same conversation with every close_notify
# sent as application data (content type 23) goes back to plaintext just the same
python3 -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
i = d.find(b"\x15\x03\x03\x00\x1a")
while i >= 0:
    d[i] = 0x17
    i = d.find(b"\x15\x03\x03\x00\x1a", i + 1)
open(sys.argv[2], "wb").write(d)' "$C/usbmuxd-relay-restart.pcap" "$T/restart13.pcap"
run_lp "$T/restart13.json" analyze "$T/restart13.pcap" --json
is "$(jget '"\(.verdict) \(.metrics.lockdown.requests) \(.metrics.anomalies)"' "$T/restart13.json")" "TRUSTED 8 0" \
	"plaintext after StopSession with TLS 1.3's encrypted alerts: followed, no anomaly"

# ... and one that ends inside the second session's handshake keeps what the
# first showed (the device accepted the pairing): TRUSTED, not cut short
if command -v editcap >/dev/null; then
	editcap -r "$C/usbmuxd-relay-restart.pcap" "$T/restart-cut.pcap" 1-96 2>/dev/null
	run_lp "$T/restart-cut.json" analyze "$T/restart-cut.pcap" --json
	is "$(jget .verdict "$T/restart-cut.json")" TRUSTED \
		"cut inside a second session's handshake: the first session's TRUSTED stands"
fi

# USBPcap logs a bulk OUT at its submit only, so no OUT ever looks completed:
# a healthy Windows capture with thousands of device packets (a cable test's
# throughput) is no "flood while OUT is refused"
run_lp "$T/cab.json" --cable-test --device sim:healthy --capture "$T/cab.pcapng" --json
python3 "$C/../tools/captures/capconv.py" "$T/cab.pcapng" "$T/cab249.pcap" --to 249
run_lp "$T/cab249.json" analyze "$T/cab249.pcap" --json
is "$(jget '"\(.verdict) \(.metrics.protocol_violations)"' "$T/cab249.json")" "GOOD 0" \
	"USBPcap cable test: GOOD, no protocol violation blamed on the device"

# a capture that starts mid-session (no descriptors, no VERSION): the device
# by bus and address, usbmux recognised from the packets, never NO_DEVICE
run_lp "$T/mid.txt" analyze "$C/mid-usbmuxd-usbmon.pcap"
is "$?" 0 "mid-session capture: exit 0"
run_lp "$T/mid.json" analyze "$C/mid-usbmuxd-usbmon.pcap" --json
is "$(jget '.device | "\(.vid) \(.pid) \(.speed_mbps)"' "$T/mid.json")" "null null null" \
	"mid-session capture --json: vid, pid and speed unknown are null, not 0"
like "$(cat "$T/mid.txt")" "find device +ok .*bus 1 address 3.*descriptors not in the capture \(it started after the device was plugged in\)" \
	"mid-session: the device is found by bus and address, and why its ids are unknown"
like "$(cat "$T/mid.txt")" "usbmux +skip .*VERSION exchange before the capture.*endpoints 0x07/0x86 recognised from the packets" \
	"mid-session: usbmux skipped (VERSION before the capture), endpoints from the packets"
like "$(cat "$T/mid.txt")" "verdict: TRUSTED" "mid-session: the conversation's verdict"
unlike "$(cat "$T/mid.txt")" "NO_DEVICE|charge-only|cable" "mid-session: no NO_DEVICE, no cable advice"
like "$(cat "$T/mid.txt")" "device: bus 1 address 3, ids unknown" "mid-session: the device line says the ids are unknown"

# the enumeration in the capture but VERSION cut: skipped, and said plainly
run_lp "$T/nov.txt" analyze "$C/mid-no-version.pcap"
like "$(cat "$T/nov.txt")" "usbmux +skip .*no VERSION exchange in the capture after SET_CONFIGURATION 4; usbmux v2 traffic on configuration 4, interface 1, endpoints 0x07/0x86" \
	"VERSION missing after SET_CONFIGURATION: usbmux skipped, not 'before the capture'"

# bulk traffic of another device (storage-like and random bytes) is not usbmux
python3 - "$T/bulk.pcap" <<'PY'
import random, struct, sys
random.seed(7)
out = [struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 220)]
n = [0]
def rec(typ, ep, data, length, status=0):
    n[0] += 1
    hdr = struct.pack('<QcBBBHccqiiII8siiII', n[0] // 2, typ, 3, ep, 4, 1, b'-',
                      b'=' if data else b'<', 1000 + n[0], 0, status, length, len(data),
                      b'\0' * 8, 0, 0, 0, 0)
    out.append(struct.pack('<IIII', 1000 + n[0], 0, len(hdr) + len(data), len(hdr) + len(data)))
    out.append(hdr + data)
for i in range(200):
    cbw = b'USBC' + struct.pack('<I', i) + bytes(23)
    rec(b'S', 0x02, cbw, 31, -115); rec(b'C', 0x02, b'', 31)
    d = bytes(random.getrandbits(8) for _ in range(random.randint(1, 512)))
    rec(b'S', 0x81, b'', 512, -115); rec(b'C', 0x81, d, len(d))
    d = bytes(random.getrandbits(8) for _ in range(random.randint(1, 512)))
    rec(b'S', 0x02, d, len(d), -115); rec(b'C', 0x02, b'', len(d))
open(sys.argv[1], 'wb').write(b''.join(out))
PY
run_lp "$T/bulk.json" analyze "$T/bulk.pcap" --json
is "$(jget .verdict "$T/bulk.json")" NO_DEVICE "other bulk traffic is not taken for usbmux"
is "$(jget .metrics.transfers.bulk_out "$T/bulk.json")" 400 "... though all of it was read"

# usage and runtime errors
run_lp "$T/u.txt" analyze
is "$?" 2 "analyze without FILE is a usage error"
# A cable test's bulk OUT judged at its end: one OUT cancelled untaken after
# 1.5 s early on (then OUT moved again) is not a stuck endpoint; one at the
# end, with none taken since, is (USB_ERROR, as live) - whichever came first.
python3 "$C/../tools/captures/capconv.py" "$C/sim-healthy-cable.pcapng" "$T/hc.pcap" --to 220
python3 - "$T/hc.pcap" "$T" <<'PY'
import struct, sys
src, T = sys.argv[1], sys.argv[2]
d = open(src, 'rb').read()
recs, off = [], 24
while off + 16 <= len(d):
    cl, = struct.unpack('<I', d[off + 8:off + 12])
    recs.append(bytearray(d[off:off + 16 + cl])); off += 16 + cl
def t(r): s, u = struct.unpack('<II', r[:8]); return s * 1000000 + u
def at(r, us):
    r[0:8] = struct.pack('<II', us // 1000000, us % 1000000)
    r[16 + 16:16 + 28] = struct.pack('<qi', us // 1000000, us % 1000000)
    return r
first_out = next(r for r in recs if r[16 + 9] == 3 and not r[16 + 10] & 0x80 and r[16 + 8] == ord('S'))
def untaken(us, secs, uid):
    s = bytearray(first_out[:16 + 64]); s[8:16] = struct.pack('<II', 64, 64)
    s[16:24] = struct.pack('<Q', uid); s[16 + 36:16 + 40] = struct.pack('<I', 0)  # length 0
    s[16 + 32:16 + 36] = struct.pack('<I', 0)
    c = bytearray(s); c[16 + 8] = ord('C'); c[16 + 28:16 + 32] = struct.pack('<i', -2)
    return [at(s, us), at(c, us + secs)]
def write(name, rs):
    open(T + '/' + name, 'wb').write(d[:24] + b''.join(bytes(r) for r in rs))
k = len(recs) // 4   # early: a quarter in
early = untaken(t(recs[k]) + 10, 1500000, 0xfeed0001)
shifted = [at(bytearray(r), t(r) + 1600000) for r in recs[k + 1:]]
base = recs[:k + 1] + early + shifted
write('out-early.pcap', base)
end = t(shifted[-1]) + 10000
write('out-early-and-end.pcap', base + untaken(end, 2000000, 0xfeed0002))
PY
run_lp "$T/oe.json" analyze "$T/out-early.pcap" --json
is "$(jget .verdict "$T/oe.json")" GOOD "cable capture, one OUT sat 1.5 s early and OUT moved again: GOOD"
run_lp "$T/oee.json" analyze "$T/out-early-and-end.pcap" --json
is "$(jget .verdict "$T/oee.json")" USB_ERROR "... and another one sat at the end: USB_ERROR"
like "$(jget .evidence "$T/oee.json")" "took none of the host's bulk OUT transfers for 2\.0 s" \
	"judged on the last one (2.0 s), not the first (1.5 s)"

run_lp "$T/m.txt" analyze "$T/does-not-exist.pcap"
is "$?" 3 "missing file exits 3"
like "$(cat "$T/m.txt.err")" "does-not-exist" "error names the file"
done_testing
