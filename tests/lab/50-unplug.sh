#!/bin/sh
# 50-unplug.sh - the cable pulled and plugged back during a cable test: while
# `linkprobe --cable-test --duration 4` runs over libusb against the healthy
# gadget, the gadget is unbound from the UDC (the host sees a real disconnect
# through dummy_hcd) and bound again a second later. The verdict must say so:
# FLAKY (errors and a re-enumeration) or DISCONNECTED (the device went away),
# never GOOD. Then the same with the cable left out: DISCONNECTED.
. "$LAB_REPO/tests/lab/lib.sh"
trap lab_cleanup EXIT
LP=$LAB_REPO/linkprobe

if ! [ -x "$LP" ] || ! "$LP" --help 2>&1 | grep -q -- '--cable-test'; then
	skip "cable test across an unplug" "no ./linkprobe with --cable-test"
	exit 0
fi
verdict() { jq -r .verdict "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }
# the evidence, and which stage saw the unplug (round trips = mid-test)
evidence() { jq -r '.evidence + " [failed stage: " + ([.stages[] | select(.status == "fail") | .name] | join(",")) + "]"' "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }

selected() { while IFS= read -r _l; do case $_l in *"selecting configuration"*) return 0 ;; esac; done <"$1"; return 1; }
UDCATTR=/sys/kernel/config/usb_gadget/linkprobe/UDC
# unplug NAME DELAY [REPLUG]: cable test with the gadget unbound DELAY s
# after linkprobe selected the usbmux configuration (it says so with -v),
# bound again 1 s later when REPLUG is set. Forks cost hundreds of ms in a
# busy TCG guest, so this polls with builtins and writes the configfs UDC
# attribute itself (what `gadget.sh unbind/rebind` do) rather than running
# gadget.sh: otherwise the "mid-test" unplug lands after the test.
unplug() {
	_udc=$(cat "$UDCATTR")
	timeout 120 "$LP" --cable-test --duration 4 --json -v >"$LAB_OUT/linkprobe-$1.json" \
		2>"$LAB_OUT/linkprobe-$1.err" &
	lpid=$!
	_i=0
	until selected "$LAB_OUT/linkprobe-$1.err"; do
		_i=$((_i + 1))
		[ $_i -gt 100 ] && { diag "linkprobe did not say it selected a configuration"; break; }
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

check "gadget up (healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device" wait_dev 10 || exit 0
unplug unplug-replug 1.5 replug
v=$(verdict unplug-replug)
diag "unbound 1.5 s in, rebound 1 s later: $v: $(evidence unplug-replug)"
check "cable-test, unplugged and replugged mid-test: FLAKY or DISCONNECTED ($v)" \
	sh -c "[ '$v' = FLAKY ] || [ '$v' = DISCONNECTED ]"
check "the device came back after rebind" wait_dev 10

# a fresh enumeration (configuration 1 again), so linkprobe selects the
# usbmux configuration and says so
gadget unbind
wait_nodev 5
gadget rebind
wait_dev 10
unplug unplug-out 1.5
v=$(verdict unplug-out)
diag "unbound 1.5 s in, left out: $v: $(evidence unplug-out)"
check "cable-test, unplugged for good mid-test: DISCONNECTED ($v)" test "$v" = DISCONNECTED
:
