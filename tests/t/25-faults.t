#!/bin/sh
# 25-faults.t - host-side failures through the transport core's fault plan
# (--device sim:PROFILE,fault=F): no permission to open the device, the
# usbmux interface held by another program, USB transfers failing. Each must
# give its own verdict with the stage and the evidence, never a phone or
# cable verdict for the host's state.
. "$(dirname "$0")/lib.sh"
PD=$T/pd
mkdir -p "$PD"
# never this machine's own usbmuxd: a socket nobody listens on
export USBMUXD_SOCKET_ADDRESS="UNIX:$T/no-usbmuxd"

# verdict_of NAME CMD... : run with --json, keep the report in $T/NAME.json
run() {
	_name=$1; shift
	run_lp "$T/$_name.json" "$@" --pair-dir "$PD" --json
}

for cmd in "trust --pair" --cable-test; do
	n=$(echo "$cmd" | tr -dc 'a-z')
	# shellcheck disable=SC2086
	run "acc-$n" $cmd --device sim:healthy,fault=open-eacces; rc=$?
	is "$rc" 1 "$cmd, open fails EACCES: exit 1"
	is "$(jget .verdict $T/acc-$n.json)" ACCESS_DENIED "$cmd, open fails EACCES: ACCESS_DENIED"
	is "$(jget '.stages[-1].name + ":" + .stages[-1].status' $T/acc-$n.json)" "descriptors:fail" \
		"$cmd: the descriptors stage (the first to open the device) fails"
	like "$(jget .evidence $T/acc-$n.json)" "permission denied" "$cmd: the evidence names the refusal"
	like "$(jget .remedy $T/acc-$n.json)" "udev rule" "$cmd: the remedy is the udev rule, not the cable"

	# held, and no usbmuxd to go through (81-held-usbmuxd.t has one): the
	# usbmux stage says it is held, "usbmuxd connect" finds nobody
	# shellcheck disable=SC2086
	run "busy-$n" $cmd --device sim:healthy,fault=claim-ebusy; rc=$?
	is "$rc" 1 "$cmd, interface held: exit 1"
	is "$(jget .verdict $T/busy-$n.json)" DEVICE_BUSY "$cmd, interface held: DEVICE_BUSY"
	is "$(jget '[.stages[-2,-1] | .name + ":" + .status] | join(",")' $T/busy-$n.json)" \
		"usbmux:skipped,usbmuxd connect:fail" \
		"$cmd: the interface is held, and no usbmuxd answers to go through"
	like "$(jget .remedy $T/busy-$n.json)" "usbmuxd" "$cmd: the remedy names usbmuxd"
	# --direct: the usbmux stage (claiming the interface) fails
	# shellcheck disable=SC2086
	run "dbusy-$n" $cmd --direct --device sim:healthy,fault=claim-ebusy
	is "$(jget .verdict $T/dbusy-$n.json)" DEVICE_BUSY "$cmd --direct, interface held: DEVICE_BUSY"
	is "$(jget '.stages[-1].name + ":" + .stages[-1].status' $T/dbusy-$n.json)" "usbmux:fail" \
		"$cmd --direct: the usbmux stage (claiming the interface) fails"

	# shellcheck disable=SC2086
	run "obusy-$n" $cmd --device sim:healthy,fault=open-ebusy
	is "$(jget .verdict $T/obusy-$n.json)" DEVICE_BUSY "$cmd, open fails EBUSY: DEVICE_BUSY"

	# the first control transfer fails: a live USB error in the descriptors stage
	# shellcheck disable=SC2086
	run "usb-$n" $cmd --device sim:healthy,fault=submit-1; rc=$?
	is "$rc" 1 "$cmd, transfers fail: exit 1"
	is "$(jget .verdict $T/usb-$n.json)" USB_ERROR "$cmd, transfers fail from the first: USB_ERROR"
	like "$(jget .evidence $T/usb-$n.json)" "stage descriptors: .*USB transfer error" "$cmd: evidence names the stage and the error"
done

# transfers fail once lockdown is under way: USB_ERROR in the stage that was running
run usb-late trust --pair --device sim:healthy,fault=submit-40
is "$(jget .verdict $T/usb-late.json)" USB_ERROR "trust, transfers fail mid-lockdown: USB_ERROR"
is "$(jget '.stages[-1].status' $T/usb-late.json)" fail "the last stage run is the failing one"
like "$(jget .evidence $T/usb-late.json)" "^stage (device info|QueryType|lockdown connect|Pair|StartSession)" \
	"the evidence names the lockdown stage"
# ... and the cable test, which expects errors, calls the same failures FLAKY
run usb-cable --cable-test --device sim:healthy,fault=submit-40 --duration 0.5
is "$(jget .verdict $T/usb-cable.json)" FLAKY "cable test, transfers fail after usbmux is up: FLAKY"
is "$(jget '.stages[-1].name + ":" + .stages[-1].status' $T/usb-cable.json)" "round trips:fail" "round trips fail"

# list: the device that could not be opened is named, with the right verdict
run list-acc list --device sim:healthy,fault=open-eacces; rc=$?
is "$rc" 1 "list, open fails EACCES: exit 1"
is "$(jget .verdict $T/list-acc.json)" ACCESS_DENIED "list, open fails EACCES: ACCESS_DENIED (not USB_ERROR)"
like "$(jget '.devices[0].error' $T/list-acc.json)" "permission denied" "list: the device's error is in devices[]"

# a configuration descriptor that cannot be read is a USB error, not a camera
run cfg trust --pair --device sim:healthy,fault=submit-5
is "$(jget .verdict $T/cfg.json)" USB_ERROR "unreadable configurations: USB_ERROR, not CAMERA_ONLY"

# an unknown fault is a usage error
run bad trust --device sim:healthy,fault=frob; rc=$?
is "$rc" 2 "unknown fault: usage error"
like "$(jget .error $T/bad.json)" "unknown sim fault 'frob'" "unknown fault is named"
done_testing
