#!/bin/sh
# 98-lab-helpers.t - the lab's judgement of a real peer's log (tests/lab/lib.sh):
# usbmuxd 1.1.1 hides a device for good when its preflight cannot reach
# lockdownd. When the daemon never even sent the device a SYN (its own client's
# 5 s wait ran out first: a starved guest), the lab replugs once, as a user
# would; when it asked and the device stayed silent, that is the device's
# fault and nothing is retried. tests/data/lab: usbmuxd-stalled.log is the
# tail of usbmuxd's -v -v log that the failing CI run printed (main 2b40162,
# 20-interop); the other stall shapes are made from it, a line or two added
# or moved, each named for what it adds; usbmuxd-reenum-ok.log is cut from a
# passing lab run's log.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$ROOT/tests/data/lab
plan 16

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

judged() { helper "$D/usbmuxd-$1.log" muxd_stalled; }
is "$(judged stalled)" 2 "stalled: the daemon gave up on device 2's preflight before asking the device"
is "$(judged late-catchup)" 2 \
	"stalled, and the daemon read the queued Connect after the error: still its own stall"
is "$(judged stalled-twice)" 3 "stalled again after a replug: device 3 is judged on its own"
for c in "device-silent:a SYN was sent and never answered: the device's fault" \
	"reenum-ok:a healthy re-enumeration" \
	"v1:a -v log (no SYN lines) is not judged" \
	"replugged:after the replug, device 3's preflight is judged afresh" \
	"stale-error:an error logged before device 2's preflight started is an older attachment's" \
	"early-error:an error 1 s into the preflight is not the 5 s client wait" \
	"removed:a device usbmuxd saw leave is not replugged" \
	"restart:a restarted daemon's log is judged from its start"; do
	judged "${c%%:*}" >/dev/null
	is $? 1 "${c%%:*}: ${c#*:}"
done

rm -f "$T/gadget.calls" "$T/tap"
helper $D/usbmuxd-stalled.log muxd_unstick >/dev/null
is "$(cat "$T/gadget.calls" 2>/dev/null)" "gadget rebind" "unstick replugs the gadget"
like "$(cat "$T/tap" 2>/dev/null)" "^# usbmuxd gave up on its preflight of device 2 before asking the device" \
	"and says so in the TAP"
helper $D/usbmuxd-stalled-twice.log muxd_unstick >/dev/null
is "$(wc -l <"$T/gadget.calls" | tr -d ' ')" 1 "once per scenario: a second stall is not replugged into passing"
rm -rf "$T/gadget.calls" "$T/state"
helper $D/usbmuxd-device-silent.log muxd_unstick >/dev/null
[ ! -e "$T/gadget.calls" ]; ok $? "a silent device is not replugged: its failure stands"
helper $D/usbmuxd-late-catchup.log explain | grep -q "usbmuxd never asked device 2"
ok $? "explain names the daemon's own stall"
