#!/bin/sh
# 31-reenum-trust.t - an iPhone drops off USB and re-enumerates at a new
# address around the tap on Trust (libusbmuxd#26, libimobiledevice#1354).
# `trust` must follow it - wait for the same UDID to come back, open it
# again, reconnect to lockdown and carry on - wherever the departure lands:
# (a) while the host waits on the dialog, (a') as the device answers the
# Pair (the reply is lost: the same Pair is sent again), (b) between the
# Pair reply and StartSession, (c) during TLS and during StartService. The
# verdict is TRUSTED, the stages say what happened, the record is saved
# once and JSON counts the re-enumeration. A device that does not come back
# within the bound (10 s) is DISCONNECTED, as a real unplug
# (29-unplug-dialog.t) still is.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }

# device spec | label | the stage the departure cut short | where the note is
while IFS='|' read -r dev label during stage; do
	pd=$T/pd-$label
	run_lp $T/$label.json trust --pair --timeout 10 --device "$dev" --pair-dir "$pd" --json; rc=$?
	is "$(jget .verdict $T/$label.json)" TRUSTED "$label: TRUSTED"
	is "$rc" 0 "$label: exit 0"
	is "$(jget .metrics.reenumerations $T/$label.json)" 1 "$label: one re-enumeration in JSON"
	like "$(jget "[.stages[] | select(.name==\"$stage\")][0].detail" $T/$label.json)" \
		"the device re-enumerated after Trust \\(as iPhones do\\) during $during and came back at address [0-9]+ after [0-9.]+ s; continued" \
		"$label: the $stage stage says it re-enumerated during $during and came back"
	is "$(jq '[.stages[] | select(.detail | test("record saved to"))] | length' $T/$label.json)" 1 \
		"$label: the record is saved once"
	is "$(ls "$pd" | grep -c '\.plist$' | tr -d ' ')" 2 "$label: the record (and SystemConfiguration) on disk"
	is "$(jq '[.stages[] | select(.status != "ok")] | length' $T/$label.json)" 0 \
		"$label: no stage failed"
	is "$(jq -r '[.stages[] | select(.name=="StopSession")][0].status' $T/$label.json)" ok \
		"$label: the session ran to StopSession"
done <<'EOF_T'
sim:reenum-after-trust|a-dialog|Pair|Pair
sim:healthy,reenum=pair|a-pair-reply|Pair|Pair
sim:healthy,reenum=pair+150us|b-before-session|StartSession|re-enumeration
sim:healthy,reenum=session+400us|c-tls|TLS|re-enumeration
sim:healthy,reenum=session+1|c-service|StartService|re-enumeration
EOF_T

# (a) the Pair stage waited for the device and sent Pair again after it was back
like "$(jget '[.stages[] | select(.name=="Pair")][0].detail' $T/a-dialog.json)" \
	"^paired after [0-9]+ attempt\\(s\\), Trust tapped on the device; the device re-enumerated" \
	"a-dialog: paired after the re-enumeration"
# the address in the report is the new one
run_lp $T/list.json trust --pair --timeout 10 --device "sim:reenum-after-trust" --pair-dir "$T/pd-addr" --json
like "$(jget '[.stages[] | select(.name=="Pair")][0].detail' $T/list.json)" \
	"came back at address $(jget .device.address $T/list.json) after" "the report's device address is the one it came back at"

# the same human text
run_lp $T/h.txt trust --pair --timeout 10 --device "sim:healthy,reenum=session+1" --pair-dir "$T/pd-h"
like "$(cat $T/h.txt)" "re-enumeration +ok .*during StartService and came back at address" "text: a re-enumeration row"
like "$(cat $T/h.txt)" "reenumerations +1" "text: the count in the metrics"

# a device that leaves after Trust and never comes back
run_lp $T/n.json trust --pair --timeout 10 --device "sim:healthy,reenum=pair,reenum-gap=60000" --pair-dir "$T/pd-n" --json; rc=$?
is "$(jget .verdict $T/n.json)" DISCONNECTED "never back: DISCONNECTED"
is "$rc" 1 "never back: exit 1"
like "$(jget .evidence $T/n.json)" "^stage Pair: the device left the bus during Pair .*did not come back within 10 s" \
	"never back: the evidence says it did not come back within 10 s"
is "$(jget .metrics.reenumerations $T/n.json)" 0 "never back: no re-enumeration counted"
is "$(ls "$T/pd-n" 2>/dev/null | grep -c "^[0-9a-f]\{40\}\.plist$" | tr -d ' ')" 0 "never back: no record saved"

# after StartSession, a device that never returns: DISCONNECTED in the stage it cut short
run_lp $T/m.json trust --pair --timeout 10 --device "sim:healthy,reenum=session+1,reenum-gap=60000" --pair-dir "$T/pd-m" --json
is "$(jget .verdict $T/m.json)" DISCONNECTED "gone during StartService for good: DISCONNECTED"
like "$(jget .evidence $T/m.json)" "^stage StartService: the device left the bus during StartService, right after pairing and did not come back within 10 s" \
	"gone during StartService: the evidence names the stage and the bound"

# a stored pairing: no Trust now, so a departure is not waited for
run_lp $T/s1.json trust --pair --device "sim:healthy,keep,reenum=never" --pair-dir "$T/pd-s" --json
is "$(jget .verdict $T/s1.json)" TRUSTED "stored pairing made"
run_lp $T/s2.json trust --device "sim:flaky,keep" --pair-dir "$T/pd-s" --json
unlike "$(jget .evidence $T/s2.json)" "did not come back" "without a pairing now, a departure is not taken for a re-enumeration"

# --via-usbmuxd: the daemon sees the device leave and lists it again under a
# new DeviceID (tests/fake_usbmuxd.c --reenum; real clock, Trust at 300 ms)
FAKE=${FAKE_USBMUXD:-$(cd "$(dirname "$0")/../.." && pwd)/build/tests/fake-usbmuxd}
if [ -x "$FAKE" ]; then
	SOCK=$T/usbmuxd.sock
	"$FAKE" --socket "$SOCK" --dir "$T/daemon" --profile reenum-after-trust --trust-delay-ms 300 --reenum 2>$T/daemon.log &
	FPID=$!
	trap 'kill $FPID 2>/dev/null; wait $FPID 2>/dev/null; rm -rf "$T"' EXIT
	for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
	export USBMUXD_SOCKET_ADDRESS="UNIX:$SOCK"
	run_lp $T/v.json trust --pair --via-usbmuxd --timeout 10 --json; rc=$?
	is "$(jget .verdict $T/v.json)" TRUSTED "via usbmuxd: TRUSTED"
	is "$rc" 0 "via usbmuxd: exit 0"
	like "$(jget '[.stages[] | select(.name=="Pair")][0].detail' $T/v.json)" \
		"re-enumerated after Trust \\(as iPhones do\\) during Pair and came back at usbmuxd DeviceID 2" \
		"via usbmuxd: followed to the daemon's new DeviceID"
	is "$(jget .metrics.reenumerations $T/v.json)" 1 "via usbmuxd: one re-enumeration"
	like "$(cat $T/daemon.log)" "saved record [0-9a-f]{40} \\(DeviceID 2\\)" "via usbmuxd: the record saved once, for the device that came back"
	is "$(grep -c 'saved record' $T/daemon.log | tr -d ' ')" 1 "via usbmuxd: SavePairRecord once"
else
	echo "# $FAKE not built: the --via-usbmuxd case is skipped"
fi
done_testing
