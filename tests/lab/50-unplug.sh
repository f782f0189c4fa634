#!/bin/sh
# 50-unplug.sh - the cable pulled and plugged back during a cable test: while
# `linkprobe --cable-test --duration 12` runs over libusb against the healthy
# gadget, the gadget is unbound from the UDC (the host sees a real disconnect
# through dummy_hcd) and bound again a second later. linkprobe must follow the
# device across the re-enumeration and say FLAKY with one re-enumeration
# counted; with the cable left out it must say DISCONNECTED.
#
# The host is set up as a desktop is: systemd-udevd runs, with Debian's rules
# (usbmuxd's puts every iPhone that arrives in configuration 0), and Debian's
# libusb hears of a device that arrives or leaves only through udevd's events.
# Before linkprobe starts, `udevadm settle` waits for udev to have handled the
# device - otherwise udev's "configuration 0" can land after linkprobe chose
# the usbmux configuration and pull the interface from under it (what made an
# earlier attempt with udevd flaky). The re-plugged device is announced to
# libusb only after udev's rules ran, so that race cannot happen mid-test.
. "$LAB_REPO/tests/lab/lib.sh"
plan 10
trap lab_cleanup EXIT
LP=$LAB_REPO/linkprobe

verdict() { jq -r .verdict "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }
metric() { jq -r ".metrics.$2" "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }
# the evidence, and which stage saw the unplug (round trips = mid-test)
evidence() { jq -r '.evidence + " [failed stage: " + ([.stages[] | select(.status == "fail") | .name] | join(",")) + "]"' "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }

selected() { while IFS= read -r _l; do case $_l in *"selecting configuration"*) return 0 ;; esac; done <"$1"; return 1; }
UDCATTR=/sys/kernel/config/usb_gadget/linkprobe/UDC
# A long test: on a loaded host each fork in this guest can take a second or
# more, so "1.5 s after linkprobe chose the configuration" may really be 4 s;
# the unplug must still land mid-test, and the re-plug in time to be seen.
DURATION=12
# unplug NAME DELAY [REPLUG]: cable test with the gadget unbound DELAY s
# after linkprobe selected the usbmux configuration (it says so with -v),
# bound again 1 s later when REPLUG is set. Forks cost hundreds of ms in a
# busy TCG guest, so this polls with builtins and writes the configfs UDC
# attribute itself (what `gadget.sh unbind/rebind` do) rather than running
# gadget.sh: otherwise the "mid-test" unplug lands after the test.
unplug() {
	_udc=$(cat "$UDCATTR")
	timeout 120 "$LP" --cable-test --duration "$DURATION" --json -v >"$LAB_OUT/linkprobe-$1.json" \
		2>"$LAB_OUT/linkprobe-$1.err" &
	lpid=$!
	_i=0
	until selected "$LAB_OUT/linkprobe-$1.err"; do
		_i=$((_i + 1))
		[ $_i -gt 300 ] && { diag "linkprobe did not say it selected a configuration"; break; }
		sleep 0.1
	done
	sleep "$2"
	echo "" >"$UDCATTR"
	echo "unbound at $(uptime_s)"
	if [ -n "${3:-}" ]; then
		sleep 1
		echo "$_udc" >"$UDCATTR"
		echo "rebound at $(uptime_s)"
	fi
	wait $lpid
	echo "linkprobe --cable-test ($1) -> rc $?"
	cat "$LAB_OUT/linkprobe-$1.json"
	tail -5 "$LAB_OUT/linkprobe-$1.err"
}
# the host enumerated the device and udev is done with it (configuration 0)
settled() { wait_dev 10 && udevadm settle -t 30 && test "$(cat "$(devdir)/bConfigurationValue")" = ""; }

check "systemd-udevd running (libusb hears of hotplug through it)" start_udevd
check "gadget up (healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device; udev left it unconfigured" settled || exit 0

unplug unplug-replug 1.5 replug
v=$(verdict unplug-replug)
diag "unbound 1.5 s in, rebound 1 s later: $v: $(evidence unplug-replug)"
check "cable-test, unplugged and replugged mid-test: FLAKY ($v)" test "$v" = FLAKY
r=$(metric unplug-replug reenumerations)
check "the re-enumeration was seen ($r)" test "$r" = 1
n=$(metric unplug-replug lockdown_rtt.count)
check "round trips measured across it ($n lockdown round trips)" test "${n:-0}" -gt 0
back() { wait_dev 10 && udevadm settle -t 30; }
check "the device came back after rebind" back

# a fresh enumeration, so linkprobe selects the usbmux configuration again
# and says so
gadget unbind
wait_nodev 10
gadget rebind
check "a fresh enumeration after unbind/rebind" settled
unplug unplug-out 1.5
v=$(verdict unplug-out)
diag "unbound 1.5 s in, left out: $v: $(evidence unplug-out)"
check "cable-test, unplugged for good mid-test: DISCONNECTED ($v)" test "$v" = DISCONNECTED
check "the round-trip stage failed, with the time it waited for the device" \
	sh -c "jq -r '.stages[] | select(.name == \"round trips\") | .status + \" \" + .detail' '$LAB_OUT/linkprobe-unplug-out.json' | grep -q '^fail .*did not come back'"
