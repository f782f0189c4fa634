#!/bin/sh
# 10-enumerate.sh - the simulated iPhone enumerates on the lab's USB bus as a
# real iPhone does (doc/protocol.md section 0): 05ac:12a8 at high speed, Apple
# strings, serial = UDID, four configurations - 1 PTP, 2 iPod audio + HID,
# 3 PTP + usbmux, 4 PTP + usbmux + Apple USB Ethernet (tools/gadget/gadget.sh
# says what differs from a phone's, as far as dummy_hcd allows) - and the kernel alone
# picks configuration 1 ("seen as a camera"). Each configuration is selected
# through sysfs and its interfaces read back as the host's kernel sees them.
. "$LAB_REPO/tests/lab/lib.sh"
plan 16
trap lab_cleanup EXIT

check "gadget up (profile healthy)" gadget up --profile healthy || exit 0
check "host enumerates the device" wait_dev 10 || exit 0
d=$(devdir)
b=$(basename "$d")
lsusb -v -d 05ac: >"$LAB_OUT/lsusb-v.txt" 2>&1
diag "$b $(cat "$d/idVendor"):$(cat "$d/idProduct") speed $(cat "$d/speed") configs $(cat "$d/bNumConfigurations")"
check "05ac:12a8" test "$(cat "$d/idVendor"):$(cat "$d/idProduct")" = 05ac:12a8
check "high speed (480 Mb/s)" test "$(cat "$d/speed")" = 480
check "bcdDevice 0804" test "$(cat "$d/bcdDevice")" = 0804
check "manufacturer Apple Inc." test "$(cat "$d/manufacturer")" = "Apple Inc."
check "product iPhone" test "$(cat "$d/product")" = iPhone
check "serial is the UDID ($(udid))" test "$(cat "$d/serial")" = "$(udid)"
check "four configurations ($(cat "$d/bNumConfigurations"))" test "$(cat "$d/bNumConfigurations")" = 4
# the kernel picks configuration 1: PTP only, no usbmux ("seen as a camera")
check "kernel chose configuration 1" test "$(cat "$d/bConfigurationValue")" = 1

# ifaces N: select configuration N, print its interfaces in order as
# class/subclass/protocol (the current alternate setting's)
ifaces() {
	echo "$1" >"$d/bConfigurationValue" || return 1
	_l=
	for _i in 0 1 2 3 4 5; do
		_f=$d/$b:$1.$_i
		[ -e "$_f/bInterfaceClass" ] || continue
		_l="$_l $(cat "$_f/bInterfaceClass")/$(cat "$_f/bInterfaceSubClass")/$(cat "$_f/bInterfaceProtocol")"
	done
	echo "${_l# }"
}
is_cfg() {
	_got=$(ifaces "$1")
	echo "configuration $1: $_got"
	[ "$_got" = "$2" ] || { diag "configuration $1 has [$_got], want [$2]"; return 1; }
}
check "configuration 1: PTP (06/01/01)" is_cfg 1 "06/01/01"
check "configuration 2: audio control, audio streaming, HID" is_cfg 2 "01/01/00 01/02/00 03/00/00"
# the phone's iso IN audio stream (alt 1) cannot be had on dummy_hcd
hid_ep() { for _e in "$d/$b:2.2"/ep_*; do echo "$(cat "$_e/type") $(cat "$_e/direction")"; done | tr '\n' ,; }
check "configuration 2's HID: one interrupt IN endpoint ($(hid_ep))" test "$(hid_ep)" = "Interrupt in,"
check "configuration 3: PTP + usbmux (ff/fe/02)" is_cfg 3 "06/01/01 ff/fe/02"
check "configuration 4: PTP + usbmux + Apple USB Ethernet (ff/fd/01)" is_cfg 4 "06/01/01 ff/fe/02 ff/fd/01"
# usbmux: one bulk IN and one bulk OUT, read from the descriptors (the
# addresses differ from a phone's 0x85/0x04 on dummy_hcd)
eps() { for _e in "$d/$b:4.1"/ep_*; do echo "$(cat "$_e/type") $(cat "$_e/direction")"; done | sort | tr '\n' ,; }
check "usbmux interface of configuration 4: bulk in + bulk out ($(eps))" test "$(eps)" = "Bulk in,Bulk out,"
