#!/bin/sh
# regen-analyze.sh - derive the analyzer's extra golden captures from the sim
# captures (regen.sh) and synthesize the usbmuxd-relay ones, then refresh the
# expected outputs listed in TESTLIST.
#   captures/regen-analyze.sh [LINKPROBE]    (needs python3 and jq)
# Review `git diff captures/expected` before committing: an expected file
# changes only when the analyzer's verdict or stages change on purpose.
set -eu
cd "$(dirname "$0")"
LP=${1:-../linkprobe}
CONV=../tools/captures/capconv.py
RELAY=../tools/captures/gen_usbmuxd_relay.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 $CONV sim-healthy-pair.pcapng analyze-healthy-pair.pcap --to 220
python3 $CONV sim-healthy-pair.pcapng analyze-healthy-pair-189.pcap --to 189
python3 $CONV sim-healthy-pair.pcapng analyze-healthy-pair-usbpcap.pcap --to 249
python3 $CONV sim-denied.pcapng analyze-denied-big-endian.pcap --big-endian
python3 $CONV sim-denied.pcapng "$tmp/second.pcap" --renumber 3.7 --shift 0.5
python3 $CONV merge analyze-two-devices.pcap analyze-healthy-pair.pcap "$tmp/second.pcap"
for s in trusted denied refused; do
	python3 $RELAY usbmuxd-relay-$s.pcap --scenario $s
done
grep -v '^#' TESTLIST | while read -r name file opts; do
	[ -n "$name" ] || continue
	[ "$opts" = - ] && opts=
	# shellcheck disable=SC2086
	"$LP" analyze "$file" $opts --json | jq -S -f expected/normalize.jq > "expected/$name.json" || true
done
ls -l analyze-*.pcap usbmuxd-relay-*.pcap
