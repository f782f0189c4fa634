#!/bin/sh
# 98-lab-helpers.t - the lab's judgement of a real peer's log (tests/lab/lib.sh):
# usbmuxd 1.1.1 hides a device for good when its preflight cannot reach
# lockdownd. When the daemon never even sent the device a SYN (its own client's
# 5 s wait ran out first: a starved guest), the lab replugs once, as a user
# would; when it asked and the device stayed silent, that is the device's
# fault and nothing is retried. The logs in tests/data/lab are usbmuxd -v -v
# output from lab runs (usbmuxd-stalled.log: the CI run that failed on it).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$ROOT/tests/data/lab
plan 9

# run a lib.sh helper against LOG in a fresh lab state; prints its output
helper() { # helper LOGFILE CMD...
	_log=$1
	shift
	mkdir -p "$T/state" "$T/out"
	(
		LAB_REPO=$ROOT LAB_BIN=$T/bin LAB_OUT=$T/out LAB_TAP=$T/tap LAB_STATE=$T/state LAB_SCENARIO=t98
		. "$ROOT/tests/lab/lib.sh"
		set +x
		LOG=$_log
		echo 0 >"$LAB_STATE/tapnum"
		gadget() { echo "gadget $*" >>"$T/gadget.calls"; }
		"$@"
	) 2>/dev/null
}

is "$(helper $D/usbmuxd-stalled.log muxd_stalled)" 2 \
	"stalled: the daemon gave up on device 2's preflight before asking the device"
helper $D/usbmuxd-device-silent.log muxd_stalled >/dev/null
is $? 1 "device silent: a SYN was sent and never answered, so it is not the daemon's stall"
helper $D/usbmuxd-reenum-ok.log muxd_stalled >/dev/null
is $? 1 "healthy re-enumeration: nothing to unstick"
helper $D/usbmuxd-v1.log muxd_stalled >/dev/null
is $? 1 "a -v log (no SYN lines) is not judged"
helper $D/usbmuxd-replugged.log muxd_stalled >/dev/null
is $? 1 "after the replug, device 3's preflight is judged afresh"

rm -f "$T/gadget.calls" "$T/tap"
helper $D/usbmuxd-stalled.log muxd_unstick >/dev/null
is "$(cat "$T/gadget.calls" 2>/dev/null)" "gadget rebind" "unstick replugs the gadget once"
like "$(cat "$T/tap" 2>/dev/null)" "^# usbmuxd gave up on its preflight of device 2 before asking the device" \
	"and says so in the TAP"
helper $D/usbmuxd-stalled.log muxd_unstick >/dev/null
is "$(wc -l <"$T/gadget.calls" | tr -d ' ')" 1 "never twice for the same device"
rm -f "$T/gadget.calls"
helper $D/usbmuxd-device-silent.log muxd_unstick >/dev/null
[ ! -e "$T/gadget.calls" ]; ok $? "a silent device is not replugged: its failure stands"
