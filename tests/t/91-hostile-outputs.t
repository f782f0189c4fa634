#!/bin/sh
# 91-hostile-outputs.t - numbers, output files and planted paths (issue 10):
# non-finite/hex/junk numbers are usage errors, usage errors leave existing
# files alone, `--capture -` keeps the pcapng clean, secret-bearing files are
# 0600, symlinks are refused and FIFOs never hang linkprobe.
. "$(dirname "$0")/lib.sh"
PD=$T/lockdown
SIM=sim:healthy,keep  # the device remembers the pairing: runs without --pair reuse the record

# ---- numbers: one strict parser ------------------------------------------------
for v in nan NaN inf -inf infinity 0x10 0x1p4 1e3 ' 5' '5 ' 5x -1 '' . +3; do
	run_lp $T/o trust --device $SIM --pair-dir "$PD" --timeout "$v"
	is $? 2 "--timeout '$v' is a usage error"
done
for v in nan inf 0x10 1e1; do
	run_lp $T/o --cable-test --device $SIM --duration "$v"
	is $? 2 "--duration '$v' is a usage error"
	run_lp $T/o --extcap-interface linkprobe-sim --capture --fifo $T/never --duration "$v"
	is $? 2 "extcap --duration '$v' is a usage error"
	run_lp $T/o --extcap-interface linkprobe-sim --capture --fifo $T/never --timeout "$v"
	is $? 2 "extcap --timeout '$v' is a usage error"
done
ok $([ ! -e $T/never ]; echo $?) "extcap usage errors create no FIFO/file"
run_lp $T/o analyze --usbmuxd-port 0x6987 /dev/null; is $? 2 "--usbmuxd-port 0x6987 is a usage error"
run_lp $T/o trust --device "$SIM,seed=0x10" --pair-dir "$PD"; is $? 2 "sim seed=0x10 is a usage error"
run_lp $T/o trust --device "$SIM,seed=-1" --pair-dir "$PD"; is $? 2 "sim seed=-1 is a usage error"
run_lp $T/o trust --pair --device $SIM --pair-dir "$PD" --timeout 5.5 --json
is $? 0 "--timeout 5.5 still works"

# ---- usage errors leave output files alone ---------------------------------------
printf 'precious' >$T/existing.pcap
run_lp $T/o trust --device $SIM --pair-dir "$PD" --capture $T/existing.pcap --tls-keys
is $? 2 "--capture x.pcap --tls-keys: usage error"
is "$(cat $T/existing.pcap)" precious "... and the existing file is untouched"
printf 'precious' >$T/existing.pcapng
run_lp $T/o trust --device $SIM --pair-dir "$PD" --capture $T/existing.pcapng --timeout nan
is $? 2 "--timeout nan with --capture: usage error"
is "$(cat $T/existing.pcapng)" precious "... and the capture file is untouched"
run_lp $T/o trust --device "$SIM,bogus=1" --pair-dir "$PD" --capture $T/existing.pcapng
is $? 2 "a bad sim option with --capture: usage error"
is "$(cat $T/existing.pcapng)" precious "... and the capture file is untouched"

# ---- --capture -: the pcapng alone on stdout, the report on stderr --------------
timeout 120 "$LP" trust --device $SIM --pair-dir "$PD" --capture - >$T/stdout.pcapng 2>$T/stdout.err
is $? 0 "trust --capture - exits 0"
n=$(tshark -r $T/stdout.pcapng 2>/dev/null | wc -l)
ok $([ "$n" -gt 50 ]; echo $?) "stdout is a pcapng tshark reads ($n records)"
unlike "$(LC_ALL=C grep -ac 'TRUSTED' $T/stdout.pcapng)" "^[1-9]" "the report is not mixed into the pcapng"
like "$(cat $T/stdout.err)" "TRUSTED" "the report goes to stderr"
run_lp $T/o trust --device $SIM --pair-dir "$PD" --capture - --capture-streams -
is $? 2 "two captures on stdout: usage error"

# ---- secret-bearing captures are 0600 ------------------------------------------
umask 022
run_lp $T/o trust --device $SIM --pair-dir "$PD" --capture $T/keys.pcapng --tls-keys
is $? 0 "capture with --tls-keys"
is "$(stat -c %a $T/keys.pcapng)" 600 "--tls-keys capture created 0600"
run_lp $T/o trust --device $SIM --pair-dir "$PD" --capture-streams $T/nr.pcapng --no-redact
is "$(stat -c %a $T/nr.pcapng)" 600 "--no-redact streams capture created 0600"
: >$T/old.pcapng; chmod 644 $T/old.pcapng
run_lp $T/o trust --device $SIM --pair-dir "$PD" --capture $T/old.pcapng --no-redact
is "$(stat -c %a $T/old.pcapng)" 600 "an existing 0644 file is tightened to 0600 for --no-redact"
run_lp $T/o trust --device $SIM --pair-dir "$PD" --capture $T/plain.pcapng
is "$(stat -c %a $T/plain.pcapng)" 644 "a redacted capture without keys stays 0644"

# ---- planted symlinks and FIFOs ---------------------------------------------------
printf 'victim' >$T/victim
for opt in --capture --capture-streams --keylog; do
	rm -f $T/link; ln -s $T/victim $T/link
	run_lp $T/o trust --device $SIM --pair-dir "$PD" $opt $T/link
	is $? 3 "$opt through a symlink: runtime error"
	is "$(cat $T/victim)" victim "$opt: the symlink's target is untouched"
done
rm -f $T/fifo; mkfifo $T/fifo
start=$(date +%s)
run_lp $T/o trust --device $SIM --pair-dir "$PD" --keylog $T/fifo
is $? 3 "--keylog at a FIFO: refused"
run_lp $T/o trust --device $SIM --pair-dir "$PD" --capture $T/fifo
is $? 3 "--capture at a FIFO without a reader: runtime error"
ok $([ $(($(date +%s) - start)) -lt 30 ]; echo $?) "... and neither hangs"

UDID=$(jget .device.udid $T/o 2>/dev/null || true)
run_lp $T/u.json trust --device $SIM --pair-dir "$PD" --json
UDID=$(jget .device.udid $T/u.json)
mv "$PD/$UDID.plist" $T/saved.plist && mkfifo "$PD/$UDID.plist"
run_lp $T/f.json trust --device $SIM --pair-dir "$PD" --json
is $? 1 "a FIFO as the pair record: exit 1, no hang"
is "$(jget .verdict $T/f.json)" PAIR_RECORD_ACCESS "... PAIR_RECORD_ACCESS (the host cannot read it: not a regular file)"
rm -f "$PD/$UDID.plist"; mv $T/saved.plist "$PD/$UDID.plist"
mv "$PD/SystemConfiguration.plist" $T/sc.plist && mkfifo "$PD/SystemConfiguration.plist"
run_lp $T/f.json trust --pair --device $SIM --pair-dir "$PD" --json
rc=$?
ok $([ $rc -le 3 ]; echo $?) "a FIFO as SystemConfiguration.plist: exit $rc, no hang"
rm -f "$PD/SystemConfiguration.plist"; mv $T/sc.plist "$PD/SystemConfiguration.plist"
mkfifo $T/state.fifo
run_lp $T/f.json trust --pair --device "$SIM,state=$T/state.fifo" --pair-dir "$T/pd3" --json
rc=$?
ok $([ $rc -ge 1 ] && [ $rc -le 3 ]; echo $?) "a FIFO as the simulator state: exit $rc, no hang"

# ---- extcap without HOME: never a shared /tmp directory -------------------------
touch $T/marker
mkfifo $T/xfifo
(timeout 120 cat $T/xfifo >/dev/null &)
env -u HOME -u XDG_STATE_HOME "$LP" --capture --extcap-interface linkprobe-sim --fifo $T/xfifo \
	--command trust --profile healthy >/dev/null 2>&1
new=$(find /tmp/.local/state/linkprobe -newer $T/marker 2>/dev/null | head -1)
is "$new" "" "extcap with HOME unset writes nothing under /tmp/.local"

done_testing
