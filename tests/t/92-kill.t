#!/bin/sh
# 92-kill.t - killed at the worst moment (issue 10): `linkprobe trust --pair`
# is SIGKILLed at 100 points while it writes the pair record, and a capture
# 100 times. Afterwards the record is the old one or a complete new one,
# never torn; a temp file left behind is only ever the documented
# ".NAME.XXXXXX" of an interrupted write, removed by a later write; tshark
# reads every complete capture record.
#
# Kill points are deterministic: LINKPROBE_TEST_WRITE_STOP=N:.plist makes
# the Nth step of the atomic writer (each syscall, each 64-byte chunk) of a
# *.plist file stop the process (SIGSTOP); the test then sends SIGKILL. Two
# lanes run side by side (separate directories and simulated devices).
. "$(dirname "$0")/lib.sh"
SIM=sim:healthy,keep  # the device remembers its pairings: a later run reuses the record

state() { awk '{print $3}' /proc/$1/stat 2>/dev/null; }

# stop_at DIR N: run trust --pair until write point N; prints "stopped" (and
# the process was SIGKILLed there), "exited RC", or "timeout"
stop_at() {
	LINKPROBE_TEST_WRITE_STOP=$2:.plist "$LP" trust --pair --device $SIM --pair-dir "$1" \
		>/dev/null 2>&1 &
	pid=$!
	i=0
	while [ $i -lt 3000 ]; do
		s=$(state $pid)
		if [ "$s" = T ]; then
			kill -KILL $pid
			wait $pid 2>/dev/null
			echo "stopped $?"
			return
		fi
		if [ -z "$s" ] || [ "$s" = Z ]; then
			wait $pid
			echo "exited $?"
			return
		fi
		sleep 0.01
		i=$((i + 1))
	done
	kill -KILL $pid; wait $pid 2>/dev/null
	echo timeout
}

KEYS="DeviceCertificate HostCertificate HostPrivateKey RootCertificate RootPrivateKey HostID SystemBUID EscrowBag WiFiMACAddress"
complete() { # complete FILE LANE: parses, and has every key
	plistutil -i "$1" -o $T/rec$2.xml -f xml >/dev/null 2>&1 || return 1
	for key in $KEYS; do grep -q "<key>$key</key>" $T/rec$2.xml || return 1; done
}

# ---- how many write points does one pairing have? ----------------------------
run_lp $T/p.json trust --pair --device $SIM --pair-dir $T/probe --json
is $? 0 "a first pairing (no kill)"
UDID=$(jget .device.udid $T/p.json)
lo=1 hi=1000
while [ $((hi - lo)) -gt 1 ]; do
	mid=$(((lo + hi) / 2))
	case $(stop_at $T/probe $mid) in
	stopped*) lo=$mid ;;
	*) hi=$mid ;;
	esac
done
TOTAL=$lo
ok $([ "$TOTAL" -ge 100 ]; echo $?) "the pair record write has $TOTAL kill points (>= 100)"

# ---- 100 kills, two lanes ------------------------------------------------------
lane() { # lane L: kill points k = L, L+2, ... of 0..99, spread over 1..TOTAL
	d=$T/lane$1
	"$LP" trust --pair --device $SIM --pair-dir $d >/dev/null 2>&1 || { echo "setup failed"; return; }
	cp $d/$UDID.plist $d/prev
	k=$1
	while [ $k -lt 100 ]; do
		n=$((1 + k * (TOTAL - 1) / 99))
		r=$(stop_at $d $n)
		case $r in stopped\ 137) ;; *) echo "$n NOSTOP($r)"; k=$((k + 2)); continue ;; esac
		if cmp -s $d/$UDID.plist $d/prev; then
			res=old
		elif complete $d/$UDID.plist $1; then
			res=new
			cp $d/$UDID.plist $d/prev
		else
			res=TORN
		fi
		plistutil -i $d/SystemConfiguration.plist >/dev/null 2>&1 || res="$res TORN-SystemConfiguration"
		for f in $(ls -A $d); do
			case $f in
			$UDID.plist | SystemConfiguration.plist | .linkprobe-sim-device | prev) ;;
			.$UDID.plist.?????? | .SystemConfiguration.plist.??????) res="$res temp" ;;
			*) res="$res STRAY:$f" ;;
			esac
		done
		echo "$n $res"
		k=$((k + 2))
	done
}
start=$(date +%s)
lane 0 >$T/lane0.out 2>&1 &
l0=$!
lane 1 >$T/lane1.out 2>&1 &
l1=$!
wait $l0 $l1
el=$(($(date +%s) - start))
cat $T/lane0.out $T/lane1.out >$T/kills
is "$(grep -c . $T/kills)" 100 "100 SIGKILLs during the pair record write (${el}s)"
is "$(grep -E 'NOSTOP|TORN|STRAY|setup' $T/kills | head -3)" "" "every kill landed; never a torn record or an unexplained file"
ok $(grep -q ' old' $T/kills; echo $?) "some kills left the old record ($(grep -c ' old' $T/kills))"
ok $(grep -q ' new' $T/kills; echo $?) "some kills left the complete new record ($(grep -c ' new' $T/kills))"
ok $(grep -q 'temp' $T/kills; echo $?) "some kills left the interrupted write's temp file ($(grep -c temp $T/kills))"

# a later write removes stale temp files; the record still works
for f in $T/lane0/.$UDID.plist.* $T/lane0/.SystemConfiguration.plist.*; do
	[ -e "$f" ] && touch -d '2 minutes ago' "$f"
done
echo x >$T/lane0/.$UDID.plist.OLDONE && touch -d '2 minutes ago' $T/lane0/.$UDID.plist.OLDONE
run_lp $T/f.json trust --pair --device $SIM --pair-dir $T/lane0 --json
is "$(jget .verdict $T/f.json)" TRUSTED "after the kills: trust --pair works"
is "$(ls -A $T/lane0 | grep "^\.$UDID\.plist\." | tr '\n' ' ')" "" "... and removed the stale temp files"
run_lp $T/g.json trust --device $SIM --pair-dir $T/lane1 --json
is "$(jget .verdict $T/g.json)" TRUSTED "the record left by the last kill in lane 1 is usable"

# ---- 100 captures killed at spread times --------------------------------------
cap_lane() { # cap_lane L: captures k = L, L+2, ...; killed 0..495 ms after the file appears
	k=$1
	while [ $k -lt 100 ]; do
		"$LP" --cable-test --duration 30 --device $SIM,clock=real --capture $T/cap/k$k.pcapng \
			>/dev/null 2>&1 &
		pid=$!
		# the kill points are measured from when the file exists (a condition,
		# not a guess at start-up time: on a loaded machine starting the
		# process alone can take longer than the spread)
		w=0
		while [ ! -e $T/cap/k$k.pcapng ] && [ $w -lt 200 ] && kill -0 $pid 2>/dev/null; do
			sleep 0.05; w=$((w + 1))
		done
		ms=$((k * 5))
		sleep $(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
		kill -KILL $pid
		wait $pid 2>/dev/null
		echo "$k $?"
		k=$((k + 2))
	done
}
mkdir -p $T/cap
start=$(date +%s)
cap_lane 0 >$T/cap0.out &
l0=$!
cap_lane 1 >$T/cap1.out &
l1=$!
wait $l0 $l1
el=$(($(date +%s) - start))
is "$(cat $T/cap0.out $T/cap1.out | grep -c ' 137$')" 100 "100 captures killed with SIGKILL (${el}s)"
# A SIGKILL can land inside a write(2): Linux checks for a fatal signal
# between the pages it copies, so the file can end in part of a block. That
# last, incomplete record is the only loss allowed: every record before it
# must read (capinfos reads up to it and says "cut short"; tshark reads the
# same number), and no other damage is accepted.
n=0 total=0 empty=0 bad= cut=0 cutbad=
absent=$((100 - $(ls $T/cap/k*.pcapng 2>/dev/null | wc -l)))
for f in $T/cap/k*.pcapng; do
	sz=$(stat -c %s $f)
	if [ "$sz" -lt 28 ]; then empty=$((empty + 1)); continue; fi
	c=$(capinfos -c -M $f 2>&1)
	rc=$?
	pk=$(echo "$c" | sed -n 's/^Number of packets: *//p')
	n=$((n + 1))
	if [ $rc != 0 ]; then
		if echo "$c" | grep -q "cut short in the middle of a packet"; then
			cut=$((cut + 1))
			[ "$(tshark -r $f 2>/dev/null | wc -l)" = "${pk:-x}" ] || cutbad="$cutbad $(basename $f)"
			continue
		fi
		bad="$bad $(basename $f)"
	fi
	total=$((total + ${pk:-0}))
	echo $f >>$T/cap/list
done
is "$bad" "" "capinfos reads every killed capture, damage only ever a cut-short last record"
is "$cutbad" "" "in the $cut captures cut inside their last record, tshark reads every record before it"
ok $([ $n -ge 50 ]; echo $?) "$n of 100 captures had begun (killed before the file existed: $absent, before its header: $empty)"
mergecap -w $T/all.pcapng $(cat $T/cap/list) 2>$T/merge.err
is "$?" 0 "mergecap reads all $((n - cut)) killed captures that end on a record boundary"
unlike "$(cat $T/merge.err)" "cut short|damaged|corrupt" "no cut-short or damaged record"
got=$(tshark -r $T/all.pcapng 2>$T/tshark.err | wc -l)
is "$got" "$total" "tshark reads every complete record ($total in $n captures)"
unlike "$(cat $T/tshark.err)" "cut short|damaged|corrupt" "tshark: no cut-short record"

done_testing
