#!/bin/sh
# 62-bus.t - bus-level captures (USB 2.0 packets, link types 288/294/295):
# linkprobe's packet decoder against Wireshark's usbll dissector on every
# golden bus capture (captures/bus-*) and on a fresh --capture-bus of the
# flaky link: packet count, PID byte and CRC5/CRC16 status of each packet
# must be identical.
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
done_testing
