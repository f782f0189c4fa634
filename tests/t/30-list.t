#!/bin/sh
# 30-list.t - `linkprobe list` on the simulated devices.
. "$(dirname "$0")/lib.sh"

run_lp $T/l.json list --device sim:healthy --json; is $? 0 "list exits 0 with a device"
is "$(jget .verdict $T/l.json)" FOUND "verdict FOUND"
is "$(jget '.devices | length' $T/l.json)" 1 "one device"
is "$(jget '.devices[0].mode' $T/l.json)" normal "normal mode"
is "$(jget '.devices[0].speed_mbps' $T/l.json)" 480 "480 Mb/s"
is "$(jget '.devices[0].has_usbmux' $T/l.json)" true "usbmux interface present"
is "$(jget '.devices[0].configurations | length' $T/l.json)" 4 "four configurations like a real iPhone"
is "$(jget '[.devices[0].configurations[] | .interfaces[] | select(.class=="ff/fe/02")] | length' $T/l.json)" 2 "usbmux in configurations 3 and 4"
is "$(jget '.devices[0].configurations[0].interfaces[0].kind' $T/l.json)" ptp "configuration 1 is PTP"
like "$(jget '.devices[0].udid' $T/l.json)" "^[0-9a-f]{40}$" "UDID from the serial string"
is "$(jget '.devices[0].manufacturer' $T/l.json)" "Apple Inc." "manufacturer string"
is "$(jget '.devices[0].product' $T/l.json)" "iPhone" "product string"
like "$(jget '.devices[0].descriptor_ms' $T/l.json)" "^[0-9.]+$" "descriptor time measured"

run_lp $T/l.json list --device sim:charge-only --json; is $? 1 "charge-only: exit 1"
is "$(jget .verdict $T/l.json)" NO_DEVICE "charge-only: NO_DEVICE"
is "$(jget .device $T/l.json)" null "charge-only: device null"

run_lp $T/l.json list --device sim:dfu --json
is "$(jget '.devices[0].mode' $T/l.json)" dfu "dfu profile listed in DFU mode"
is "$(jget '.devices[0].has_usbmux' $T/l.json)" false "DFU: no usbmux"
run_lp $T/l.json list --device sim:recovery --json
is "$(jget '.devices[0].mode' $T/l.json)" recovery "recovery profile listed in recovery mode"
run_lp $T/l.json list --device sim:full-speed --json
is "$(jget '.devices[0].speed_mbps' $T/l.json)" 12 "full-speed: 12 Mb/s"
run_lp $T/l.json list --device sim:camera-only --json
is "$(jget '.devices[0].has_usbmux' $T/l.json)" false "camera-only: no usbmux"
run_lp $T/l.txt list --device sim:camera-only
like "$(cat $T/l.txt)" "usbmux NO \(camera only\)" "camera-only said in human output"
done_testing
