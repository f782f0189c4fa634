#!/bin/sh
# 55-extcap.t - linkprobe as a Wireshark extcap: the --extcap-interfaces,
# --extcap-dlts and --extcap-config output parses per the extcap grammar, and
# a --capture into a FIFO (what Wireshark's dumpcap reads) gives packets.
# The protocol is driven from here, as Wireshark would drive it.
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.." || exit 1

# every line: keyword then {key=value} groups, values without braces
grammar() { grep -vE '^(extcap|interface|dlt|arg|value) (\{[a-z]+=[^{}]*\})+$'; }

run_lp $T/if.out --extcap-interfaces --extcap-version=4.0
is "$?" 0 "--extcap-interfaces exits 0"
is "$(grammar <$T/if.out)" "" "interfaces output follows the grammar"
like "$(head -1 $T/if.out)" '^extcap \{version=[0-9.]+\}' "first line: extcap version"
is "$(sed -n 's/^interface {value=\([^}]*\)}.*/\1/p' $T/if.out | tr '\n' ' ')" "linkprobe-usb linkprobe-sim " \
	"interfaces linkprobe-usb and linkprobe-sim"

for i in linkprobe-usb linkprobe-sim; do
	run_lp $T/dlt.out --extcap-dlts --extcap-interface $i
	is "$?" 0 "--extcap-dlts $i exits 0"
	like "$(cat $T/dlt.out)" '^dlt \{number=220\}\{name=USB_LINUX_MMAPPED\}\{display=[^{}]+\}$' \
		"$i: one dlt, 220 USB_LINUX_MMAPPED"
	run_lp $T/cfg.out --extcap-config --extcap-interface $i
	is "$?" 0 "--extcap-config $i exits 0"
	is "$(grammar <$T/cfg.out)" "" "$i: config output follows the grammar"
	# every value refers to a declared arg; numbers are 0..n-1 in order
	args=$(sed -n 's/^arg {number=\([0-9]*\)}.*/\1/p' $T/cfg.out | tr '\n' ' ')
	is "$args" "$(seq 0 $(($(echo $args | wc -w) - 1)) | tr '\n' ' ')" "$i: args numbered 0..n-1"
	bad=$(sed -n 's/^value {arg=\([0-9]*\)}.*/\1/p' $T/cfg.out | while read -r a; do
		echo " $args" | grep -q " $a " || echo "$a"; done)
	is "$bad" "" "$i: every value belongs to an arg"
	like "$(grep -c '^arg .*{type=\(selector\|double\|string\|boolflag\)}' $T/cfg.out)" "^[5-9]$" \
		"$i: args have known types"
	like "$(grep '{call=--command}' $T/cfg.out)" "type=selector" "$i: command is a selector"
done
like "$(grep '^value {arg=1}' $T/cfg.out | tr '\n' ' ')" "value=healthy.*default=true.*value=flaky" \
	"sim: profiles offered, healthy by default"

run_lp $T/bad.out --extcap-dlts --extcap-interface nosuch
is "$?" 2 "unknown interface: usage error"
run_lp $T/bad.out --capture --extcap-interface linkprobe-sim
is "$?" 2 "--capture without --fifo: usage error"

# ---- capture into a FIFO -----------------------------------------------------
mkfifo $T/fifo
timeout 120 cat $T/fifo >$T/trust.pcapng &
reader=$!
run_lp $T/cap.out --capture --extcap-interface linkprobe-sim --fifo $T/fifo --command trust \
	--profile healthy --extcap-capture-filter ''
is "$?" 0 "trust capture into the FIFO exits 0"
wait $reader
n=$(tshark -r $T/trust.pcapng 2>/dev/null | wc -l)
ok "$([ "$n" -gt 50 ]; echo $?)" "tshark reads the FIFO capture ($n records)"
like "$(tshark -r $T/trust.pcapng -Y frame.comment -T fields -e frame.comment 2>/dev/null | tr '\n' ' ')" \
	"stage StartSession" "stage comments come through the FIFO"
like "$(cat $T/cap.out.err)" "verdict: TRUSTED" "the report goes to stderr"
ok "$(ls $T/home/.local/state/linkprobe/extcap-pairs/*.plist >/dev/null 2>&1; echo $?)" \
	"sim pair records kept under \$HOME/.local/state/linkprobe"

# tshark reading the FIFO itself, live, while the cable test runs
rm -f $T/fifo && mkfifo $T/fifo
timeout 120 tshark -r $T/fifo -T fields -e usb.urb_status >$T/live.txt 2>/dev/null &
reader=$!
run_lp $T/cap2.out --capture --extcap-interface linkprobe-sim --fifo $T/fifo --command cable-test \
	--profile flaky --duration 1
is "$?" 0 "a problem verdict is still a successful capture (exit 0)"
wait $reader
like "$(sort -u $T/live.txt | tr '\n' ' ')" "-71" "live tshark on the FIFO sees the flaky link's errors"

# Wireshark stops a capture with SIGTERM: the FIFO's data stays readable
rm -f $T/fifo && mkfifo $T/fifo
timeout 120 cat $T/fifo >$T/term.pcapng &
reader=$!
"$LP" --capture --extcap-interface linkprobe-sim --fifo $T/fifo --command cable-test \
	--duration 30 --profile healthy,clock=real >/dev/null 2>&1 &
pid=$!
# Wireshark stops it mid-capture: once data has reached the FIFO's reader
ok "$(wait_for 60 file_over $T/term.pcapng 2000; echo $?)" "capturing into the FIFO (over 2 kB read)"
kill -TERM $pid
wait $pid
is "$?" 143 "capture ended by SIGTERM"
wait $reader
capinfos $T/term.pcapng >/dev/null 2>&1
is "$?" 0 "the stopped capture reads back cleanly"

done_testing
