#!/bin/sh
# 70-usbmuxd.sh - linkprobe next to a running usbmuxd that holds the device:
#   - direct libusb only (`linkprobe trust --direct --json`) cannot claim the
#     usbmux interface and says who holds it: DEVICE_BUSY, evidence naming
#     usbmuxd and its pid (without --direct linkprobe would go through the
#     daemon by itself: 95-desktop);
#   - `linkprobe trust --pair --via-usbmuxd --json` pairs through the real
#     daemon (its client protocol, its pair records): TRUSTED.
. "$LAB_REPO/tests/lab/lib.sh"
plan 13
trap lab_cleanup EXIT
LP=$LAB_REPO/linkprobe


check "systemd-udevd running" start_udevd
check "usbmuxd started" start_usbmuxd || { explain; exit 0; }
MUXPID=$(cat "$LAB_STATE/usbmuxd.pid")
check "gadget up (healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device" wait_dev 10 || exit 0
U=$(udid)
# usbmuxd claims the interface once it has configured the device; its
# preflight (with or without a record) ends in the device being listed
check "usbmuxd lists the device (it holds the interface)" retry 120 1 listed || explain

lp busy trust --direct --pair-dir "$LAB_STATE/lp-busy" --timeout 10
v=$(jfield busy .verdict) ev=$(jfield busy .evidence)
diag "direct libusb next to usbmuxd (pid $MUXPID): $v: $ev"
check "trust --direct while usbmuxd holds the device: DEVICE_BUSY ($v)" test "$v" = DEVICE_BUSY
why=$(jq -r '.evidence, .remedy, (.stages[]?.detail // empty)' "$LAB_OUT/linkprobe-busy.json" 2>/dev/null)
has() { case $1 in $2) return 0 ;; esac; return 1; }
check "evidence names usbmuxd" has "$why" "*usbmuxd*"
check "evidence names usbmuxd's pid ($MUXPID)" has "$why" "*pid $MUXPID[!0-9]*"
check "usbmuxd still lists the device afterwards" listed

lp via trust --pair --via-usbmuxd --timeout 120
v=$(jfield via .verdict)
diag "via usbmuxd: $v: $(jfield via .evidence)"
check "trust --pair --via-usbmuxd through the real daemon: TRUSTED ($v)" test "$v" = TRUSTED || explain
ps=$(jq -r '.stages[] | select(.name == "Pair") | .status' "$LAB_OUT/linkprobe-via.json" 2>/dev/null)
check "the Pair stage ran through the daemon ($ps)" test "$ps" = ok
# the daemon stored the new record (SavePairRecord) where libimobiledevice
# finds it: ideviceinfo starts a session with it
check "usbmuxd lists the device again after pairing" retry 60 1 listed
ideviceinfo -u "$U" >"$LAB_OUT/ideviceinfo-via.txt" 2>&1
check "ideviceinfo (session) with the record linkprobe saved through usbmuxd" \
	grep -q "UniqueDeviceID: $U" "$LAB_OUT/ideviceinfo-via.txt"
:
