#!/bin/sh
# 30-usbmon.sh - the usbmon capture of 20-interop (interop.pcap, kept as an
# artifact) is a real Linux usbmon capture of the simulated iPhone: LINKTYPE
# 220 (usbmon, mmapped header), Wireshark decodes the Apple descriptors, the
# SET_CONFIGURATION to the usbmux configuration, and the usbmux/lockdown bulk
# traffic (QueryType and Pair requests in the clear, before session TLS).
# needs: 20-interop
. "$LAB_REPO/tests/lab/lib.sh"
plan 8
P=$LAB_OUT/interop.pcap
check "20-interop left its usbmon capture ($P)" test -s "$P" || exit 0
capinfos "$P" >"$LAB_OUT/interop.capinfos" 2>&1
# one decoding pass (tshark starts slowly under TCG): the fields we check
F=$LAB_OUT/interop.fields
tshark -r "$P" -T fields -E separator=, -E occurrence=f \
	-e usb.transfer_type -e usb.endpoint_address.direction -e usb.data_len \
	-e usb.idVendor -e usb.idProduct -e usb.setup.bRequest -e usb.bConfigurationValue \
	>"$F" 2>/dev/null
n=$(wc -l <"$F")
diag "interop.pcap: $n packets, $(stat -c %s "$P") bytes"
check "pcap is readable and not empty ($n packets)" test "$n" -gt 100
check "link type is USB with Linux mmapped header (220)" grep -q "USB packets with Linux header and padding" "$LAB_OUT/interop.capinfos"
check "device descriptor 05ac:12a8 decoded" grep -q "0x05ac,0x12a8" "$F"
check "SET_CONFIGURATION to the highest configuration (4), where usbmuxd looks for usbmux" awk -F, '$1 == "0x02" && $6 == 9 && $7 == 4 { f = 1 } END { exit !f }' "$F"
check "usbmux bulk OUT traffic" awk -F, '$1 == "0x03" && $2 == 0 && $3 > 0 { f = 1 } END { exit !f }' "$F"
check "usbmux bulk IN traffic" awk -F, '$1 == "0x03" && $2 == 1 && $3 > 0 { f = 1 } END { exit !f }' "$F"
# lockdown before session TLS is plain XML plists inside the usbmux packets
tshark -r "$P" -Y 'usb.transfer_type == 3 && (frame contains "QueryType" || frame contains "<string>Pair</string>")' \
	-T fields -e frame.number -e usb.endpoint_address.direction >"$LAB_OUT/interop.lockdown" 2>/dev/null
check "lockdown requests (QueryType, Pair) in the bulk data" test -s "$LAB_OUT/interop.lockdown"
