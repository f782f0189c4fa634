#!/bin/sh
# 40-linkprobe.sh - linkprobe itself over libusb against the simulated iPhone
# on the lab's bus (no usbmuxd: linkprobe talks usbmux directly), and its
# verdicts for the profiles the gadget maps onto the bus physically.
. "$LAB_REPO/tests/lab/lib.sh"
plan 11
trap lab_cleanup EXIT
LP=$LAB_REPO/linkprobe
PAIRDIR=$LAB_STATE/lp-pair
mkdir -p "$PAIRDIR"

# lp NAME ARGS...: run linkprobe --json, keep its output as linkprobe-NAME.json
lp() {
	_n=$1
	shift
	timeout 180 "$LP" --pair-dir "$PAIRDIR" "$@" --json >"$LAB_OUT/linkprobe-$_n.json" \
		2>"$LAB_OUT/linkprobe-$_n.err"
	echo "linkprobe $* -> rc $?"
	cat "$LAB_OUT/linkprobe-$_n.json"
}
verdict() { sed -n 's/^ *"verdict": *"\([A-Z_]*\)".*/\1/p' "$LAB_OUT/linkprobe-$1.json" | head -1; }
is() { [ "$(verdict "$1")" = "$2" ] || { diag "linkprobe $1: verdict '$(verdict "$1")', want $2: $(grep '"evidence"' "$LAB_OUT/linkprobe-$1.json")"; return 1; }; }

# profile NAME: gadget up with that profile; waits for the bus when it binds
profile() {
	gadget down 2>/dev/null
	wait_nodev 5
	gadget up --profile "$1" || return 1
	# charge-only: the gadget is built but never bound, nothing enumerates
	[ "$1" = charge-only ] && { ! wait_dev 2; return; }
	wait_dev 10
}

check "gadget up (healthy)" profile healthy
lp list list
check "list: FOUND" is list FOUND
check "list: 480 Mb/s" grep -q '"speed_mbps": *480' "$LAB_OUT/linkprobe-list.json"
check "list: usbmux present" grep -q '"has_usbmux": *true' "$LAB_OUT/linkprobe-list.json"
check "list: UDID $(udid)" grep -q "\"udid\": *\"$(udid)\"" "$LAB_OUT/linkprobe-list.json"

devdir >/dev/null || profile healthy
lp trust trust --pair --timeout 120
check "trust --pair: TRUSTED" is trust TRUSTED

for pv in healthy:GOOD full-speed:DEGRADED charge-only:NO_DEVICE camera-only:CAMERA_ONLY dfu:DFU_MODE; do
	p=${pv%%:*} v=${pv#*:}
	if ! profile "$p"; then
		fail "cable-test $p: gadget up failed"
		continue
	fi
	lp "cable-$p" cable-test
	check "cable-test $p: $v" is "cable-$p" "$v"
done
