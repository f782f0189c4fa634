#!/bin/sh
# 62-bus.t - bus-level captures (USB 2.0 packets, link types 288/294/295):
# linkprobe's packet decoder against Wireshark's usbll dissector on every
# golden bus capture (captures/bus-*) and on a fresh --capture-bus of the
# flaky link: packet count, PID byte and CRC5/CRC16 status of each packet
# must be identical. Then the analysis: the wire-only evidence and verdict
# of the flaky link, the address change after its re-enumeration, and
# hostile bus-level files (truncated, garbage, lying lengths) giving
# anomalies or a clear error, never a crash.
. "$(dirname "$0")/lib.sh"
C=$(cd "$(dirname "$0")/../../captures" && pwd)
DUMP=$(cd "$(dirname "$0")/../.." && pwd)/build/tests/usbll-dump
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }
command -v tshark >/dev/null || { echo "1..0 # SKIP tshark not installed"; exit 0; }
[ -x "$DUMP" ] || { echo "1..0 # SKIP $DUMP not built (make check builds it)"; exit 0; }

# cross-check: our decode vs tshark's, packet by packet
xcheck() { # FILE LABEL
	"$DUMP" "$1" > "$T/ours.txt"
	tshark -r "$1" -T fields -e frame.number -e usbll.pid -e usbll.crc5.status -e usbll.crc16.status \
		2>/dev/null > "$T/ws.txt"
	n=$(wc -l < "$T/ws.txt")
	ok $([ "$n" -gt 10 ]; echo $?) "$2: tshark reads $n packets as usbll"
	if diff "$T/ws.txt" "$T/ours.txt" > "$T/x.diff"; then
		ok 0 "$2: packet count, PIDs and CRC status agree with tshark ($n packets)"
	else
		ok 1 "$2: packet count, PIDs and CRC status agree with tshark"; head -20 "$T/x.diff" | sed 's/^/# /'
	fi
	bad=$(awk -F'\t' '$3=="0" || $4=="0"' "$T/ws.txt" | wc -l)
	echo "# $2: $bad packet(s) with a bad CRC"
}
for f in bus-healthy-pair.pcap bus-camera-only.pcapng bus-flaky-cable.pcapng bus-full-speed.pcapng; do
	xcheck "$C/$f" "$f"
done
is "$(awk -F'\t' '$3=="0" || $4=="0"' "$T/ws.txt" | wc -l | tr -d ' ')" "$(tshark -r "$C/bus-full-speed.pcapng" -Y 'usbll.crc5.status == 0 || usbll.crc16.status == 0' 2>/dev/null | wc -l | tr -d ' ')" \
	"the last file's bad-CRC count is what a display filter finds"

# Wireshark's own transaction state machine finds every PID sequence legal
# in the clean captures (token, data, handshake in the order USB allows)
for f in bus-healthy-pair.pcap bus-camera-only.pcapng bus-full-speed.pcapng; do
	is "$(tshark -r "$C/$f" -Y 'usbll.invalid_pid_sequence || usbll.invalid_pid || _ws.malformed' 2>/dev/null | wc -l | tr -d ' ')" 0 \
		"$f: no invalid PID sequence, invalid PID or malformed packet for tshark"
done

# the flaky golden has corrupted packets on the wire, and both decoders see them
"$DUMP" "$C/bus-flaky-cable.pcapng" > "$T/f.txt"
nb=$(awk -F'\t' '$3=="0" || $4=="0"' "$T/f.txt" | wc -l)
ok $([ "$nb" -gt 10 ]; echo $?) "flaky golden: $nb packets fail their CRC"
is "$(tshark -r "$C/bus-flaky-cable.pcapng" -Y 'usbll.crc5.status == 0 || usbll.crc16.status == 0' 2>/dev/null | wc -l | tr -d ' ')" \
	"$nb" "tshark counts the same bad-CRC packets"

# a fresh bus capture of the flaky link: same cross-check, and the analysis
run_lp "$T/live.json" --cable-test --duration 1 --device sim:flaky --capture-bus "$T/flaky.pcapng" --json
ok $([ -s "$T/flaky.pcapng" ]; echo $?) "--capture-bus wrote a file"
xcheck "$T/flaky.pcapng" "fresh flaky bus capture"
is "$(tshark -r "$T/flaky.pcapng" -T fields -e frame.encap_type 2>/dev/null | sort -u | wc -l | tr -d ' ')" 1 "one link type"
run_lp "$T/a.json" analyze "$T/flaky.pcapng" --json
is "$?" 1 "flaky bus capture: exit 1"
is "$(jget .verdict "$T/a.json")" FLAKY "flaky bus capture: FLAKY"
like "$(jget .evidence "$T/a.json")" "^[0-9]+ of [0-9]+ packets on the wire were corrupted \([0-9]+ failed their CRC" \
	"evidence: corrupted packets counted"
like "$(jget .remedy "$T/a.json")" "signal integrity - replace the cable, avoid hubs and extension leads" "remedy: cable and port"
like "$(jget .metrics.bus.crc16_errors "$T/a.json")" "^[1-9]" "metrics: CRC16 errors"
like "$(jget .metrics.bus.crc5_errors "$T/a.json")" "^[1-9]" "metrics: CRC5 errors (corrupted tokens)"
like "$(jget .metrics.bus.garbage "$T/a.json")" "^[1-9]" "metrics: bit-level garbage between packets"
like "$(jget .metrics.bus.retries "$T/a.json")" "^[1-9]" "metrics: retried transactions"
like "$(jget .metrics.bus.timeouts "$T/a.json")" "^[1-9]" "metrics: timed-out transactions"
like "$(jget .metrics.bus.host_gave_up "$T/a.json")" "^[1-9]" "metrics: transactions the host gave up on"
like "$(jget .metrics.bus.sof_missing "$T/a.json")" "^[1-9]" "metrics: frames whose SOF was hit (missing SOFs)"
is "$(jget .metrics.bus.unexpected "$T/a.json")" 0 "no packet out of sequence: data after a corrupted token is ignored, as the device does"
is "$(jget .metrics.bus.resets "$T/a.json")" 1 "metrics: the bus reset before the re-enumeration"
is "$(jget .metrics.bus.set_address "$T/a.json")" 2 "metrics: two SET_ADDRESS (attach, re-attach)"
is "$(jget .metrics.reenumerations "$T/a.json")" 1 "the re-enumeration to a new address is followed"
is "$(jget .device.address "$T/a.json")" 3 "the device is reported at its new address"
like "$(jget '.metrics.bus.endpoints[] | select(.endpoint=="2.5in") | .nak_rate' "$T/a.json")" "^0\.[0-9]" \
	"NAK rate of the usbmux IN endpoint"
like "$(jget '[.anomalies[] | select(test("failed its CRC16"))][0]' "$T/a.json")" "^packet [0-9]+: DATA[01] of [0-9]+ bytes failed its CRC16" \
	"anomaly names the packet"

# an old address reused: the flaky capture with the re-enumeration's
# SET_ADDRESS and traffic moved from address 3 back to 2 (CRCs recomputed)
python3 - "$C/bus-flaky-cable.pcapng" "$T/reuse.pcapng" 3 2 <<'EOF2'
import struct, sys
src, dst, old, new = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def crc5(v, n):
    r = 0x1f
    for i in range(n):
        fb = ((v >> i) ^ r) & 1; r >>= 1
        if fb: r ^= 0x14
    return (~r) & 0x1f
def crc16(d):
    c = 0xffff
    for b in d:
        c ^= b
        for i in range(8): c = (c >> 1) ^ 0xa001 if c & 1 else c >> 1
    return (~c) & 0xffff
b = bytearray(open(src, 'rb').read())
off, setup0 = 0, False
while off + 12 <= len(b):
    t, ln = struct.unpack_from('<II', b, off)
    if t == 6:
        cl = struct.unpack_from('<I', b, off + 20)[0]
        p = off + 28
        pid = b[p] & 0xf
        if cl == 3 and pid in (1, 9, 0xd, 4):
            v = b[p + 1] | b[p + 2] << 8
            if crc5(v & 0x7ff, 11) == v >> 11 and (v & 0x7f) == old:
                v = (v & ~0x7f) | new
                v = (v & 0x7ff) | crc5(v & 0x7ff, 11) << 11
                b[p + 1], b[p + 2] = v & 0xff, v >> 8
            setup0 = pid == 0xd and (v & 0x7f) == 0
        elif cl == 11 and pid == 3 and setup0 and b[p + 1] == 0 and b[p + 2] == 5 and b[p + 3] == old:
            b[p + 3] = new
            c = crc16(bytes(b[p + 1:p + 9]))
            b[p + 9], b[p + 10] = c & 0xff, c >> 8
    off += ln
open(dst, 'wb').write(b)
EOF2
run_lp "$T/reuse.json" analyze "$T/reuse.pcapng" --json
is "$(jget '[.metrics.reenumerations, .device.address, .metrics.devices, .metrics.bus.set_address] | map(tostring) | join(" ")' "$T/reuse.json")" \
	"1 2 1 2" "an old address given again after the reset: one device, re-enumerated, still at address 2"

# the healthy ones show no corruption and the device's own verdict
run_lp "$T/h.json" analyze "$C/bus-healthy-pair.pcap" --json
is "$(jget .verdict "$T/h.json")" TRUSTED "healthy bus capture (link type 288): TRUSTED"
is "$(jget .metrics.bus.speed "$T/h.json")" high "link type 288: high speed inferred from the SOFs"
is "$(jget '.metrics.bus.crc5_errors + .metrics.bus.crc16_errors + .metrics.bus.garbage' "$T/h.json")" 0 "no corruption"
is "$(jget '.metrics.bus.sof_missing + .metrics.bus.sof_late' "$T/h.json")" 0 "no missing or late SOF"
run_lp "$T/c.txt" analyze "$C/bus-camera-only.pcapng"
like "$(cat "$T/c.txt")" "verdict: CAMERA_ONLY" "camera-only from the wire"

# hostile bus-level files
python3 - "$C/bus-healthy-pair.pcap" "$T" <<'EOF'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
b = open(src, 'rb').read()
def recs(buf):
    off, r = 24, []
    while off + 16 <= len(buf):
        n = struct.unpack_from('<I', buf, off + 8)[0]
        r.append(off); off += 16 + n
    return r
r = recs(b)
def w(name, data): open(out + '/' + name, 'wb').write(data)
w('bus-truncated.pcap', b[:r[400] + 9])
x = bytearray(b); struct.pack_into('<I', x, r[50] + 8, 0x7fffffff); w('bus-lying-caplen.pcap', x)
x = bytearray(b); struct.pack_into('<I', x, r[60] + 12, 9999); w('bus-lying-wirelen.pcap', x)
# every 7th packet's PID byte replaced by noise, every 11th cut short by one byte
x = bytearray(b[:24])
for i, o in enumerate(r):
    n = struct.unpack_from('<I', b, o + 8)[0]
    rec = bytearray(b[o:o + 16 + n])
    if i % 7 == 3: rec[16] ^= 0x50
    if i % 11 == 5 and n > 1:
        rec = rec[:-1]; struct.pack_into('<II', rec, 8, n - 1, n - 1)
    x += rec
w('bus-garbage.pcap', x)
w('bus-noise.pcap', b[:24] + b''.join(struct.pack('<IIII', 1, i * 1000, 5, 5) + bytes([(i * 37 + k * 11) & 0xff for k in range(5)]) for i in range(3000)))
EOF
for f in bus-truncated bus-lying-caplen bus-lying-wirelen bus-garbage bus-noise; do
	run_lp "$T/$f.json" analyze "$T/$f.pcap" --json; rc=$?
	ok $([ $rc -le 3 ]; echo $?) "$f: no crash (exit $rc)"
	if [ $rc = 3 ]; then
		like "$(cat "$T/$f.json.err")" "." "$f: a clear error"
	else
		like "$(jget .metrics.anomalies "$T/$f.json")" "^[1-9]" "$f: anomalies reported"
	fi
done
like "$(jget '.metrics.bus.garbage' "$T/bus-garbage.json")" "^[1-9]" "noise in place of PID bytes is counted as garbage"
like "$(jget '.metrics.bus.malformed' "$T/bus-garbage.json")" "^[1-9]" "packets cut short are counted as malformed"
is "$(jget '.verdict' "$T/bus-garbage.json")" FLAKY "a corrupted wire is FLAKY whatever the device"
like "$(jget '.anomalies | join(" ")' "$T/bus-lying-wirelen.json")" "captured; not decoded" "a record shorter than its wire length is an anomaly"
done_testing
