#!/bin/sh
# 28-insplit.t - a device that ends its IN transfers in the middle of usbmux
# packets (sim option insplit=N: every packet longer than N bytes goes out in
# transfers of N bytes, each ending the host's transfer): linkprobe puts the
# packets together by their headers' lengths, live and in `analyze`, with no
# anomaly and no cable verdict. The lab runs the same on a real kernel
# (tests/lab/55-catalogue.sh, lp_gadget --insplit).
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }

for n in 1 7 100 511 512 700 4096; do
	run_lp $T/t.json trust --pair --device "sim:healthy,insplit=$n" --pair-dir "$T/pd-$n" --capture $T/c.pcapng --json; rc=$?
	is "$(jget .verdict $T/t.json)" TRUSTED "insplit=$n: trust --pair is TRUSTED"
	is "$rc" 0 "insplit=$n: exit 0"
	run_lp $T/o.json analyze $T/c.pcapng --json
	is "$(jget .verdict $T/o.json)" TRUSTED "insplit=$n: analyze on the capture: TRUSTED"
	is "$(jget .metrics.anomalies $T/o.json)" 0 "insplit=$n: analyze reassembles without anomalies"
	run_lp $T/c.json --cable-test --duration 1 --device "sim:healthy,insplit=$n" --json
	is "$(jget .verdict $T/c.json)" GOOD "insplit=$n: cable test GOOD"
	is "$(jget .metrics.errors $T/c.json)" 0 "insplit=$n: no errors counted"
done
run_lp $T/bad.json trust --device "sim:healthy,insplit=0" --json
is "$?" 2 "insplit=0 is a usage error"
done_testing
