#!/bin/sh
# 35-fleet.t - many simulated devices in one process: `--device
# sim:PROFILE*N+...`, `list` on them, `--cable-test --all` (every device at
# once on one event loop), and the spec's usage errors.
. "$(dirname "$0")/lib.sh"

D=$T/pd
run_lp $T/l.json list --device 'sim:healthy*3+full-speed' --pair-dir $D --json
is $? 0 "list on four simulated devices exits 0"
is "$(jget '.devices | length' $T/l.json)" 4 "four devices listed"
is "$(jget '[.devices[].udid] | unique | length' $T/l.json)" 4 "each with its own UDID"
is "$(jget '[.devices[].address] | unique | length' $T/l.json)" 4 "each at its own address"
is "$(jget '[.devices[].port_path] | join(" ")' $T/l.json)" "1-1.1 1-1.2 1-1.3 1-1.4" "each on its own port"
is "$(jget '[.devices[].speed_mbps] | join(" ")' $T/l.json)" "480 480 480 12" "the full-speed one at 12 Mb/s"
run_lp $T/l1.json list --device 'sim:healthy' --pair-dir $D --json
is "$(jget '.devices[0].udid' $T/l1.json)" "$(jget '.devices[0].udid' $T/l.json)" \
	"device 0 of a fleet is the single device (same seed, same UDID)"
is "$(jget '.devices[0].port_path' $T/l1.json)" "1-1" "a single device sits on root port 1-1"
run_lp $T/l.txt list --device 'sim:healthy*2' --pair-dir $D
like "$(cat $T/l.txt)" "address 3 \(port 1-1.2\)" "human list names the port"

# the cable test on every device at once
run_lp $T/c.json --cable-test --all --device 'sim:healthy*3+flaky+full-speed+camera-only' --pair-dir $D --json
is $? 1 "--all with problems exits 1"
is "$(jget '.device_count' $T/c.json)" 6 "six devices tested"
is "$(jget '[.devices[].verdict] | join(" ")' $T/c.json)" "GOOD GOOD GOOD FLAKY DEGRADED CAMERA_ONLY" \
	"every device gets its own verdict"
is "$(jget '.verdict' $T/c.json)" FLAKY "overall: the first device that is not GOOD"
like "$(jget '.evidence' $T/c.json)" "^3 of 6 device\(s\) not GOOD; first: port 1-1.4 FLAKY" "evidence counts them"
is "$(jget '.devices[3].metrics.reenumerations' $T/c.json)" 1 "the flaky one came back once and was followed on its port"
is "$(jget '[.devices[0,1,2].metrics.errors] | add' $T/c.json)" 0 "no errors on the healthy ones"
ok "$(jq -e '[.devices[0,1,2,3,4] | .elapsed_s < 2.5] | all' $T/c.json >/dev/null; echo $?)" \
	"all ran concurrently: each test took about --duration (2 s virtual)"
# the same verdicts as one device at a time
for p in healthy flaky full-speed; do
	run_lp $T/one.json --cable-test --device sim:$p --pair-dir $D --json
	eval "v_$(echo $p | tr - _)=$(jget .verdict $T/one.json)"
done
is "$v_healthy $v_flaky $v_full_speed" "GOOD FLAKY DEGRADED" "alone, the same profiles give the same verdicts"

run_lp $T/c.txt --cable-test --all --device 'sim:healthy*2' --pair-dir $D
is $? 0 "--all on healthy devices exits 0"
like "$(cat $T/c.txt)" "1-1.2 +3 +[0-9a-f]{40} +480 " "one line per device: port, address, UDID, speed"
like "$(tail -1 $T/c.txt)" "^verdict: GOOD - all 2 device\(s\) GOOD" "one verdict for the fleet"
# several phones and no --udid: the run says it took one of them
# (a camera-only phone has the same PID as a working one: its descriptors
# tell them apart; a DFU device is passed over by its PID)
run_lp $T/p.json trust --device 'sim:dfu+camera-only+healthy*2' --pair-dir $T/pd-p --json
like "$(jget '.stages[0].detail' $T/p.json)" "address 4, .*; one of 3 phones on USB \(the first that offers usbmux\): --udid picks another" \
	"no --udid among 4 devices: the first phone with usbmux, and the find stage says it is one of 3 phones"
run_lp $T/p2.json trust --device 'sim:dfu+camera-only' --pair-dir $T/pd-p --json
unlike "$(jget '.stages[0].detail' $T/p2.json)" "one of" "one phone and a DFU device: nothing to say"
run_lp $T/p3.json trust --device 'sim:camera-only*2' --pair-dir $T/pd-p --json
like "$(jget '.stages[0].detail' $T/p3.json)" "one of 2 phones on USB, none of which offers usbmux" \
	"two camera-only phones: says none offers usbmux"
# a cable test without --udid follows the phone it started on through its
# re-enumeration, not whichever phone is listed first afterwards
run_lp $T/lst.json list --device 'sim:flaky+healthy' --json
run_lp $T/fl.json --cable-test --device 'sim:flaky+healthy,seed=1' --duration 3 --pair-dir $D --json
# (the healthy phone stays at address 3; the flaky one comes back at 4)
is "$(jget .device.udid $T/fl.json) $(jget .device.address $T/fl.json)" "$(jget '.devices[0].udid' $T/lst.json) 4" \
	"cable test, no --udid, flaky phone first: still the flaky phone after it re-enumerated (address 4)"
is "$(jget .metrics.reenumerations $T/fl.json)" 1 "... its re-enumeration followed"
u2=$(jget .device.udid $T/p.json)
run_lp $T/p1.json trust --device 'sim:dfu+camera-only+healthy*2' --udid "$u2" --pair-dir $T/pd-p --json
is "$(jget .device.udid $T/p1.json)" "$u2" "--udid picks that phone"
unlike "$(jget '.stages[0].detail' $T/p1.json)" "one of" "... and then there is nothing to say"
run_lp $T/c.json --cable-test --all --device 'sim:charge-only' --pair-dir $D --json
is "$(jget .verdict $T/c.json)" NO_DEVICE "--all with nothing on the bus: NO_DEVICE"

# a rack of more than 16 phones: the ones past the 16th are found by --udid
# and followed like the others (one list limit everywhere: 128)
run_lp $T/r.json list --device 'sim:healthy*19+flaky' --pair-dir $D --json
is "$(jget '.devices | length' $T/r.json)" 20 "20 devices listed"
u19=$(jget '.devices[18].udid' $T/r.json); uf=$(jget '.devices[19].udid' $T/r.json)
run_lp $T/r1.json trust --pair --device 'sim:healthy*19+flaky,clock=virtual' --udid "$u19" --pair-dir $T/pd-r --json; rc=$?
is "$(jget .verdict $T/r1.json)" TRUSTED "--udid finds the 19th device: TRUSTED (was UDID_NOT_FOUND)"
is "$rc" 0 "--udid past the 16th device: exit 0"
run_lp $T/r2.json --cable-test --device 'sim:healthy*19+flaky' --udid "$uf" --pair-dir $D --json
is "$(jget .verdict $T/r2.json)" FLAKY "the 20th device, flaky: FLAKY, followed through its errors (not DISCONNECTED)"
is "$(jget .metrics.reenumerations $T/r2.json)" 1 "the 20th device: its re-enumeration followed"
# transfers to the 20th device start failing (fault=submit-N; the probes of
# the 19 before it use the first ~250): it is still listed, so the link is
# blamed (USB_ERROR), not a removal (DISCONNECTED)
run_lp $T/r3.json trust --pair --device "sim:healthy*19+flaky,clock=virtual,fault=submit-300" --udid "$u19" --pair-dir $T/pd-r3 --json
is "$(jget .verdict $T/r3.json)" USB_ERROR "the 19th device failing transfers: USB_ERROR, still on the bus (not DISCONNECTED)"

# the spec
run_lp $T/e.json list --device 'sim:healthy*0' --json; is $? 2 "PROFILE*0 is a usage error"
like "$(jget .error $T/e.json)" "N in PROFILE\*N is 1 to 120" "and says the range"
run_lp $T/e.json list --device 'sim:healthy*121' --json; is $? 2 "more than one bus carries: usage error"
run_lp $T/e.json list --device 'sim:healthy*100+flaky*21' --json; is $? 2 "the total counts"
like "$(jget .error $T/e.json)" "121 devices" "and is named"
run_lp $T/e.json list --device 'sim:healthy*2+nope' --json; is $? 2 "unknown profile in a term"
like "$(jget .error $T/e.json)" "unknown sim profile 'nope'" "named"
run_lp $T/e.json list --device 'sim:healthy*2,churn=1/2' --json; is $? 2 "churn gap longer than the period"
run_lp $T/e.json list --all --json; is $? 2 "--all is the cable test's option"
done_testing
