#!/bin/sh
# 20-interop.sh - faithfulness proof of the simulated iPhone: Debian's own
# usbmuxd and libimobiledevice tools, through the kernel's USB stack, treat it
# as an iPhone. usbmuxd runs its full preflight (no -p): QueryType, pairing
# attempt, the Trust dialog, the notification proxy, re-enumeration. The whole
# exchange is captured on usbmon into interop.pcap (checked by 30-usbmon).
# On failure, usbmuxd's -v -v log is quoted into the TAP as diagnostics.
. "$LAB_REPO/tests/lab/lib.sh"
plan 12
trap lab_cleanup EXIT

check "systemd-udevd running (hotplug for libusb)" start_udevd
check "usbmuxd started (-v -v, with preflight)" start_usbmuxd || { explain; exit 0; }
check "usbmon capture started" capture_start interop
check "gadget up (profile healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device" wait_dev 10 || exit 0
U=$(udid)
diag "UDID $U; waiting for usbmuxd's preflight (Trust after the profile's delay, RSA keygen under TCG)"

t0=$(date +%s)
if check "idevice_id -l lists the UDID" retry 120 1 listed; then
	diag "listed after $(($(date +%s) - t0)) s"
else
	diag "idevice_id -l said: [$(idevice_id -l 2>&1 | tr '\n' ' ')]"
	explain
	exit 0
fi

pair() { idevicepair -u "$U" pair || { muxd_unstick; return 1; }; }
if ! check "idevicepair pair (retried until Trust)" retry 120 2 pair; then
	diag "idevicepair pair said: $(idevicepair -u "$U" pair 2>&1 | tr '\n' ' ')"
	explain
fi
# A phone re-enumerates after it is paired through the Trust dialog; usbmuxd
# lists it again once its preflight (now with a pair record) passes.
check "listed again after pairing" retry 60 1 listed || explain
validate() { idevicepair -u "$U" validate | tee "$LAB_STATE/validate.txt" | grep -q SUCCESS; }
check "idevicepair validate" retry 30 2 validate || { diag "validate said: $(cat "$LAB_STATE/validate.txt")"; explain; }
ver=$(ideviceinfo -u "$U" -k ProductVersion 2>&1)
echo "ProductVersion: $ver"
check "ideviceinfo -k ProductVersion ($ver)" sh -c "echo '$ver' | grep -Eq '^[0-9]+(\.[0-9]+)+$'" || explain
name=$(ideviceinfo -u "$U" -k DeviceName 2>&1)
check "ideviceinfo -k DeviceName ($name)" test -n "$name"
ideviceinfo -u "$U" >"$LAB_OUT/ideviceinfo.txt" 2>&1
check "full ideviceinfo (session over TLS) lists UniqueDeviceID" grep -q "UniqueDeviceID: $U" "$LAB_OUT/ideviceinfo.txt" || explain
capture_stop
