#!/bin/sh
# 29-unplug-dialog.t - the phone unplugged while the Trust dialog is up, at
# many points of the dialog: a real kernel first ends the transfers in flight
# with an error status (-71) and removes the device up to seconds later
# (sim: removal-delay=MS). linkprobe must find out that the device left the
# bus before it blames the link: DISCONNECTED, never USB_ERROR ("try another
# cable") - live and in `analyze` on the run's capture. The lab does the
# same on a real kernel (tests/lab/50-unplug.sh).
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }

# unplug-at (ms after the dialog appears)  removal-delay (ms)
while read -r at rd; do
	l="unplug ${at} ms into the dialog, removed ${rd} ms later"
	run_lp $T/t.json trust --pair --timeout 10 --device "sim:unplug-during-pair,unplug-at=$at,removal-delay=$rd" --pair-dir "$T/pd-$at-$rd" --capture $T/c.pcapng --json; rc=$?
	is "$(jget .verdict $T/t.json)" DISCONNECTED "$l: DISCONNECTED"
	is "$rc" 1 "$l: exit 1"
	like "$(jget .evidence $T/t.json)" "^stage Pair: the device left the bus" "$l: the evidence says it left during Pair"
	run_lp $T/o.json analyze $T/c.pcapng --json
	is "$(jget .verdict $T/o.json)" DISCONNECTED "$l: analyze agrees"
done <<'EOF_T'
1 1500
40 100
333 2500
999 1
1000 700
1001 2900
1500 1500
2750 50
4200 1200
EOF_T
# a link that fails while the device stays on the bus is still a USB error
run_lp $T/f.json trust --pair --timeout 5 --device "sim:healthy,fault=submit-40" --pair-dir "$T/pd-f" --json
is "$(jget .verdict $T/f.json)" USB_ERROR "transfers failing with the device present: USB_ERROR"
done_testing
