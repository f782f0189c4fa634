#!/bin/sh
# lib.sh - helpers for the lab scenarios (tests/lab/NN-*.sh), which run inside
# the lab VM (tools/lab/lab.sh). Source it. TAP lines go to $LAB_TAP, numbered
# across all scenarios of a run through $LAB_STATE/tapnum; diagnostics go to
# stdout (the scenario's .out file in $LAB_OUT).
#   sh tests/lab/lib.sh cleanup     stop everything a scenario may have left
#
# Every scenario declares its plan on a line of its own, `plan N`, right after
# sourcing this file. guest.sh reads those lines before anything runs and
# prints the run's total plan first; a scenario that reports fewer results
# than it planned (it stopped early) gets `not ok` for each missing one, and
# every scenario gets one more result of its own: it ran to the end, with
# exactly its plan. There is no skip: a feature that is missing is a failure.
: "${LAB_REPO:?}" "${LAB_OUT:?}" "${LAB_TAP:?}" "${LAB_STATE:?}"
LAB_SCENARIO=${LAB_SCENARIO:-manual}
GADGET="$LAB_REPO/tools/gadget/gadget.sh"
export LP_GADGET_BIN="$LAB_BIN/lp_gadget" LP_GADGET_LOGDIR="$LAB_OUT"
# a private home: nothing a scenario runs reads or writes the user's state
export HOME=$LAB_STATE/home XDG_STATE_HOME=$LAB_STATE/home/.local/state \
	XDG_CONFIG_HOME=$LAB_STATE/home/.config XDG_CACHE_HOME=$LAB_STATE/home/.cache
mkdir -p "$XDG_STATE_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME"
# one device key for the whole run: RSA keygen costs seconds under TCG
export LP_GADGET_STATE="$LAB_STATE/simdev.state"

# --- TAP ----------------------------------------------------------------------
_tap_next() {
	n=$(($(cat "$LAB_STATE/tapnum") + 1))
	echo $n >"$LAB_STATE/tapnum"
	echo $n
}
_tap() { echo "$*" >>"$LAB_TAP"; echo "TAP: $*"; }
# every command traced into the .out file (no timestamps in PS4: a fork per
# traced command is expensive under TCG)
set -x
diag() { _tap "# $*"; }
# plan N: the number of results this scenario reports (read statically by
# guest.sh too; the two must agree)
plan() { echo "$1" >"$LAB_STATE/plan.$LAB_SCENARIO"; }
# timestamps without a fork (each fork costs under TCG)
now_s() { read -r _up _ </proc/uptime; echo "${_up%.*}"; }
pass() { _tap "ok $(_tap_next) - $LAB_SCENARIO: $*"; }
fail() { _tap "not ok $(_tap_next) - $LAB_SCENARIO: $*"; }
# check DESC CMD...: ok if CMD succeeds; its output goes to the .out file
check() {
	_cd=$1
	shift
	read -r _up _ </proc/uptime
	echo "[$_up] check: $_cd"
	if "$@"; then pass "$_cd"; return 0; fi
	fail "$_cd"
	return 1
}
# retry SECONDS INTERVAL CMD...: until CMD succeeds or the time is up
retry() {
	read -r _up _ </proc/uptime
	_re=$((${_up%.*} + $1)) _ri=$2
	shift 2
	while :; do
		"$@" && return 0
		read -r _up _ </proc/uptime
		[ "${_up%.*}" -ge "$_re" ] && return 1
		sleep "$_ri"
	done
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# --- the device ---------------------------------------------------------------
gadget() { "$GADGET" "$@"; }
udid() { cat /run/lp-gadget/udid 2>/dev/null; }
# sysfs directory of the enumerated Apple device (host side), "" if none
# (builtins only: these run in polling loops, and a fork costs ~30 ms under TCG)
devdir() {
	for _dd in /sys/bus/usb/devices/*; do
		_v=
		{ read -r _v <"$_dd/idVendor"; } 2>/dev/null
		[ "$_v" = 05ac ] && { echo "$_dd"; return 0; }
	done
	return 1
}
nodev() { ! devdir >/dev/null; }
# wait_dev [SECONDS]: the host has enumerated the gadget; wait_nodev: it is gone
wait_dev() { retry "${1:-10}" 0.1 devdir >/dev/null; }
wait_nodev() { retry "${1:-10}" 0.1 nodev; }

# --- host daemons -------------------------------------------------------------
start_udevd() {
	pidof systemd-udevd >/dev/null && return 0
	/lib/systemd/systemd-udevd --daemon >>"$LAB_OUT/udevd.log" 2>&1 || return 1
	pidof systemd-udevd >"$LAB_STATE/udevd.pid"
}
# start_usbmuxd [EXTRA ARGS]: Debian's usbmuxd, verbose, logging to $LOG
# (tmpfs: -v -v writes a line per transfer, and a log on the 9p share slowed
# the daemon enough under load to miss its own 5 s connect timeouts), copied
# to $LAB_OUT/usbmuxd-<scenario>.log when it stops; waits until it accepts
# clients
LOG=$LAB_STATE/usbmuxd-$LAB_SCENARIO.log
start_usbmuxd() {
	usbmuxd -f -v -v "$@" >>"$LOG" 2>&1 &
	echo $! >"$LAB_STATE/usbmuxd.pid"
	retry 20 0.1 grep -q 'Initialization complete' "$LOG"
}
stop_pid() {
	[ -s "$1" ] || return 0
	p=$(cat "$1")
	kill "$p" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$p" 2>/dev/null || true
	rm -f "$1"
}
stop_usbmuxd() {
	stop_pid "$LAB_STATE/usbmuxd.pid"
	rm -f /run/usbmuxd
	[ -e "$LOG" ] && cp "$LOG" "$LAB_OUT/"
	return 0
}
stop_udevd() { udevadm control --exit 2>/dev/null || stop_pid "$LAB_STATE/udevd.pid"; rm -f "$LAB_STATE/udevd.pid"; }

# --- usbmon capture -------------------------------------------------------------
# capture_start NAME [IFACE [FILTER]]: dumpcap on IFACE (default usbmon0, all
# buses) into $LAB_OUT/NAME.pcap (classic pcap)
capture_start() {
	CAPFILE=$LAB_OUT/$1.pcap
	modprobe usbmon 2>/dev/null || true
	rm -f "$CAPFILE"
	dumpcap -q -P -i "${2:-usbmon0}" ${3:+-f "$3"} -w "$CAPFILE" >"$LAB_OUT/dumpcap-$1.log" 2>&1 &
	echo $! >"$LAB_STATE/dumpcap.pid"
	# dumpcap writes the pcap header once it captures
	retry 20 0.1 test -s "$CAPFILE"
}
# _quiet FILE: FILE did not grow over the last 0.3 s
_quiet() { _s1=$(stat -c %s "$1" 2>/dev/null); sleep 0.3; [ "$(stat -c %s "$1" 2>/dev/null)" = "$_s1" ]; }
capture_stop() {
	[ -s "$LAB_STATE/dumpcap.pid" ] || return 0
	# the last URBs have landed: the capture stopped growing (bounded)
	[ -n "${CAPFILE:-}" ] && retry 10 0 _quiet "$CAPFILE"
	kill -INT "$(cat "$LAB_STATE/dumpcap.pid")" 2>/dev/null || true
	stop_pid "$LAB_STATE/dumpcap.pid"
}

# linkprobe runs that leave their JSON behind: lp NAME ARGS...; jfield NAME FILTER
# (scenarios set LP to the binary and LOG to their usbmuxd log for explain)
lp() {
	_n=$1
	shift
	timeout 200 "$LP" "$@" --json >"$LAB_OUT/linkprobe-$_n.json" 2>"$LAB_OUT/linkprobe-$_n.err"
	echo "linkprobe $* -> rc $?"
	cat "$LAB_OUT/linkprobe-$_n.json"
}
jfield() { jq -r "$2" "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }
# the last lines of the scenario's usbmuxd log, when a real peer said no
explain() {
	diag "usbmuxd log (last lines of $(basename "$LOG")):"
	grep -v 'libusb: debug' "$LOG" 2>/dev/null | tail -n 15 | while IFS= read -r l; do diag "  $l"; done
	_sid=$(muxd_stalled) && diag "usbmuxd never asked device $_sid: its preflight's own client timed out"
	return 0
}

# usbmuxd hides a device for good when its preflight cannot reach lockdownd
# (1.1.1 makes it visible only when the preflight gets through; a user would
# replug). muxd_stalled: that happened to the newest device of the running
# daemon, and usbmuxd had not sent it a SYN when the preflight gave up - its
# preflight's own usbmuxd client (libusbmuxd waits 5 s for the Connect
# result) ran out of time before the daemon's main loop took the request, so
# the guest fell behind, not the device. Judged only on a -v -v log (the SYN
# requests are level 5), only for an error at least 4.5 s after that
# device's "Starting preflight" (an older attachment's error names the same
# serial), and not for a device usbmuxd saw leave. A request the daemon
# reads after the error (the client's queued Connect, once it catches up)
# does not count as asking. Prints the device's usbmuxd ID.
muxd_stalled() {
	awk '
	function secs(l,  t) { split(substr(l, 2, 12), t, ":"); return t[1] * 3600 + t[2] * 60 + t[3] }
	/\]\[3\] usbmuxd v.* starting up/ { v5 = 0; id = "" }
	/\]\[5\]/ { v5 = 1 }
	/Connecting to new device on location .* as ID / { id = $NF; started = ""; asked = 0; failed = 0 }
	/Removed device [0-9]+ on location/ { split($0, w, "Removed device "); split(w[2], x, " "); if (x[1] == id) id = "" }
	/preflight_worker_handle_device_add: Starting preflight on device/ { if (id != "" && started == "") started = secs($0) }
	/requesting connection to device [0-9]+ port 62078/ { if (!failed && $0 ~ ("device " id " port")) asked = 1 }
	/preflight_worker_handle_device_add: ERROR: Could not connect to lockdownd/ {
		if (started != "") { d = secs($0) - started; if (d < 0) d += 86400; if (d >= 4.5) failed = 1 }
	}
	END { if (v5 && id != "" && failed && !asked) { print id; exit 0 } exit 1 }' "$LOG" 2>/dev/null
}
# muxd_unstick: when usbmuxd stalled on the newest device (above), replug the
# gadget, as a user would, and say so in the TAP - once per scenario: a
# guest that starves usbmuxd again is not retried into passing. A preflight
# that asked the device and got no answer is left to fail.
muxd_unstick() {
	_sf=$LAB_STATE/unstuck.$LAB_SCENARIO
	[ -e "$_sf" ] && return 0
	# the cheap test first: this runs in polling loops, and forks cost under TCG
	grep -q 'Could not connect to lockdownd' "$LOG" 2>/dev/null || return 0
	_sid=$(muxd_stalled) || return 0
	echo "$_sid" >"$_sf"
	diag "usbmuxd gave up on its preflight of device $_sid before asking the device (its client's 5 s wait ran out: the guest fell behind); replugging once, as a user would"
	gadget rebind
}
# listed: usbmuxd lists the scenario's device ($U), after unsticking it
listed() {
	idevice_id -l 2>&1 | grep -qx "$U" && return 0
	muxd_unstick
	return 1
}

lab_cleanup() {
	capture_stop
	stop_usbmuxd
	stop_udevd
	# a second phone's gadget too (97-two-phones), whatever stopped it
	for _gd in /sys/kernel/config/usb_gadget/*; do
		[ -e "$_gd" ] && [ "${_gd##*/}" != linkprobe ] && env LP_GADGET_NAME="${_gd##*/}" "$GADGET" down
	done
	[ -e /sys/kernel/config/usb_gadget/linkprobe ] && gadget down
	return 0
}

if [ "${1:-}" = cleanup ]; then
	lab_cleanup
fi
