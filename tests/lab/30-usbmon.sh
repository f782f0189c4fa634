#!/bin/sh
# 30-usbmon.sh - the usbmon capture of 20-interop (interop.pcap, kept as an
# artifact) is a real Linux usbmon capture of the simulated iPhone: LINKTYPE
# 220 (usbmon, mmapped header), Wireshark decodes the Apple descriptors, the
# SET_CONFIGURATION to the usbmux configuration, and the usbmux/lockdown bulk
# traffic (QueryType and Pair requests in the clear, before session TLS).
. "$LAB_REPO/tests/lab/lib.sh"
P=$LAB_OUT/interop.pcap
if [ ! -s "$P" ]; then
	skip "interop capture" "no $P (run 20-interop first)"
	exit 0
fi
capinfos "$P" >"$LAB_OUT/interop.capinfos" 2>&1
n=$(tshark -r "$P" 2>/dev/null | wc -l)
diag "interop.pcap: $n packets, $(stat -c %s "$P") bytes"
check "pcap is readable and not empty ($n packets)" test "$n" -gt 100
check "link type is USB with Linux mmapped header (220)" grep -q "USB packets with Linux header and padding" "$LAB_OUT/interop.capinfos"
has() { test "$(tshark -r "$P" -Y "$1" 2>/dev/null | wc -l)" -gt 0; }
check "device descriptor 05ac:12a8 decoded" has "usb.idVendor == 0x05ac && usb.idProduct == 0x12a8"
check "SET_CONFIGURATION to the usbmux configuration" has "usb.setup.bRequest == 9 && usb.setup.wValue > 1"
check "usbmux bulk OUT and IN traffic" sh -c "tshark -r '$P' -Y 'usb.transfer_type == 3 && usb.endpoint_address.direction == 1 && usb.data_len > 0' 2>/dev/null | grep -q . && tshark -r '$P' -Y 'usb.transfer_type == 3 && usb.endpoint_address.direction == 0 && usb.data_len > 0' 2>/dev/null | grep -q ."
check "lockdown QueryType in the bulk data" has 'usb.transfer_type == 3 && frame contains "QueryType"'
check "lockdown Pair request in the bulk data" has 'usb.transfer_type == 3 && frame contains "<string>Pair</string>"'
