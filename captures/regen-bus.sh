#!/bin/sh
# regen-bus.sh - regenerate the bus-level golden captures: the packets the
# simulated link's USB 2.0 bus carries (linkprobe --capture-bus, virtual
# clock, fixed seed: byte-for-byte reproducible except the fresh keys inside
# the session), then refresh their expected outputs listed in TESTLIST.
#   captures/regen-bus.sh [LINKPROBE]        (needs jq)
# Review `git diff captures/expected` before committing.
set -eu
cd "$(dirname "$0")"
LP=${1:-../linkprobe}
export LINKPROBE_SIM_CLOCK=virtual
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bus() { # file, then linkprobe arguments
	f=$1; shift
	"$LP" "$@" --capture-bus "$f" --json > /dev/null 2>&1 || true
}
# classic pcap: link type 288 (the reader infers high speed from the SOFs)
bus bus-healthy-pair.pcap     trust --pair --device sim:healthy --pair-dir "$tmp/a"
# pcapng: 295 (high speed) / 294 (full speed)
bus bus-camera-only.pcapng    trust --device sim:camera-only --pair-dir "$tmp/e"
bus bus-flaky-cable.pcapng    --cable-test --duration 1 --device sim:flaky
bus bus-full-speed.pcapng     --cable-test --duration 0.2 --device sim:full-speed
grep '^bus-' TESTLIST | while read -r name file opts; do
	[ "$opts" = - ] && opts=
	# shellcheck disable=SC2086
	"$LP" analyze "$file" $opts --json | jq -S -f expected/normalize.jq > "expected/$name.json" || true
done
ls -l bus-*.pcap*
