#!/bin/sh
# 10-enumerate.sh - the simulated iPhone enumerates on the lab's USB bus as a
# real iPhone does: 05ac:12a8 at high speed, Apple strings, serial = UDID, a
# PTP-only first configuration and usbmux (ff/fe/02) in the highest one.
. "$LAB_REPO/tests/lab/lib.sh"
trap lab_cleanup EXIT

check "gadget up (profile healthy)" gadget up --profile healthy || exit 0
check "host enumerates the device" wait_dev 10 || exit 0
d=$(devdir)
lsusb -v -d 05ac: >"$LAB_OUT/lsusb-v.txt" 2>&1
diag "$(basename "$d") $(cat "$d/idVendor"):$(cat "$d/idProduct") speed $(cat "$d/speed") configs $(cat "$d/bNumConfigurations")"
check "05ac:12a8" test "$(cat "$d/idVendor"):$(cat "$d/idProduct")" = 05ac:12a8
check "high speed (480 Mb/s)" test "$(cat "$d/speed")" = 480
check "bcdDevice 0804" test "$(cat "$d/bcdDevice")" = 0804
check "manufacturer Apple Inc." test "$(cat "$d/manufacturer")" = "Apple Inc."
check "product iPhone" test "$(cat "$d/product")" = iPhone
check "serial is the UDID ($(udid))" test "$(cat "$d/serial")" = "$(udid)"
n=$(cat "$d/bNumConfigurations")
check "several configurations ($n)" test "$n" -ge 2
# the kernel picks configuration 1: PTP only, no usbmux ("seen as a camera")
check "kernel chose configuration 1" test "$(cat "$d/bConfigurationValue")" = 1
check "configuration 1 is PTP (06/01/01)" grep -qx 06 "$d"/*:1.0/bInterfaceClass
echo "$n" >"$d/bConfigurationValue"
check "highest configuration holds usbmux ff/fe/02" sh -c "grep -l '^ff\$' $d/*:$n.*/bInterfaceClass | sed 's|bInterfaceClass|bInterfaceSubClass|' | xargs grep -qx fe"
