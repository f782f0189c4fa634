#!/bin/sh
# 60-pair-records.sh - pair records are interchangeable between linkprobe and
# libimobiledevice, both ways, over the real USB stack:
#   1. a record written by `idevicepair pair` (through Debian's usbmuxd, into
#      /var/lib/lockdown) lets `linkprobe trust` - direct libusb, usbmuxd
#      stopped because it would hold the interface - start a session:
#      TRUSTED with the Pair stage skipped;
#   2. a record written by `linkprobe trust --pair --pair-dir /var/lib/lockdown`
#      lets usbmuxd's preflight and `ideviceinfo` start a session (the full
#      ideviceinfo reads session-only keys over TLS);
#   3. Debian's layout: /var/lib/lockdown owned by usbmux (and its group), 02775, as
#      usbmuxd --user usbmux leaves it. `linkprobe trust --pair` run as root
#      on the direct path writes a record there owned by usbmux (still 0600);
#      usbmuxd started as Debian's unit starts it (--user usbmux --systemd,
#      reading records as usbmux) lists the device, and ideviceinfo and
#      idevicepair validate work with that record, without a new Trust.
# 20-interop leaves the idevicepair record behind in a full run; alone, this
# scenario pairs with idevicepair first.
. "$LAB_REPO/tests/lab/lib.sh"
plan 28
trap lab_cleanup EXIT
LP=$LAB_REPO/linkprobe
LD=/var/lib/lockdown

stage() { jq -r --arg n "$2" '.stages[] | select(.name == $n) | .status' "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }
hostid() { plistutil -i "$1" -f xml 2>/dev/null | sed -n '/<key>HostID<\/key>/{n;s/.*<string>\(.*\)<\/string>.*/\1/p}'; }

check "gadget up (healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device" wait_dev 10 || exit 0
U=$(udid)
pair() { idevicepair -u "$U" pair || { muxd_unstick; return 1; }; }

# --- 1. idevicepair's record -> linkprobe -----------------------------------
if [ ! -s "$LD/$U.plist" ]; then
	diag "no $LD/$U.plist yet (scenario run alone): pairing with idevicepair first"
	start_udevd
	start_usbmuxd || explain
	retry 120 1 listed || explain
	retry 120 2 pair || { diag "idevicepair pair failed"; explain; }
	retry 60 1 listed
	stop_usbmuxd
fi
check "idevicepair's record is in $LD" test -s "$LD/$U.plist"
H1=$(hostid "$LD/$U.plist")
diag "idevicepair record: HostID $H1"
stop_usbmuxd
wait_dev 15
lp from-idevicepair trust --pair-dir "$LD" --timeout 60
v=$(jfield from-idevicepair .verdict)
check "linkprobe trust with idevicepair's record: TRUSTED ($v)" test "$v" = TRUSTED ||
	diag "evidence: $(jfield from-idevicepair .evidence)"
check "no Pair stage: the stored record was used ($(stage from-idevicepair Pair))" \
	test "$(stage from-idevicepair Pair)" = skipped
check "StartSession and TLS with it" \
	test "$(stage from-idevicepair StartSession)/$(stage from-idevicepair TLS)" = ok/ok
check "the record is unchanged (same HostID)" test "$(hostid "$LD/$U.plist")" = "$H1"

# --- 2. linkprobe's record -> usbmuxd + ideviceinfo ----------------------------
wait_dev 15
lp to-idevice trust --pair --pair-dir "$LD" --timeout 120
v=$(jfield to-idevice .verdict)
check "linkprobe trust --pair --pair-dir $LD: TRUSTED ($v)" test "$v" = TRUSTED ||
	diag "evidence: $(jfield to-idevice .evidence)"
check "Pair stage ran ($(stage to-idevice Pair))" test "$(stage to-idevice Pair)" = ok
H2=$(hostid "$LD/$U.plist")
diag "linkprobe record: HostID $H2"
check "linkprobe wrote a new record (HostID changed)" sh -c "[ -n '$H2' ] && [ '$H2' != '$H1' ]"
cp "$LD/$U.plist" "$LAB_OUT/linkprobe-record.plist" 2>/dev/null
plistutil -i "$LD/$U.plist" -f xml 2>/dev/null | grep '<key>' | tr -d '\t' | tr '\n' ' '
echo
# the phone re-enumerates after pairing; usbmuxd's preflight now validates the
# record (StartSession with linkprobe's HostID) before it lists the device
wait_dev 15
start_udevd
check "usbmuxd started" start_usbmuxd || explain
if check "idevice_id -l lists the UDID (preflight with linkprobe's record)" retry 120 1 listed; then
	name=$(ideviceinfo -u "$U" -k DeviceName 2>&1)
	check "ideviceinfo -k DeviceName ($name)" test -n "$name"
	ideviceinfo -u "$U" >"$LAB_OUT/ideviceinfo-lprecord.txt" 2>&1
	check "full ideviceinfo (session over TLS) with linkprobe's record" \
		grep -q "UniqueDeviceID: $U" "$LAB_OUT/ideviceinfo-lprecord.txt" || explain
	validate() { idevicepair -u "$U" validate 2>&1 | tee "$LAB_STATE/validate.txt" | grep -q SUCCESS; }
	check "idevicepair validate accepts linkprobe's record" retry 20 2 validate ||
		diag "validate said: $(cat "$LAB_STATE/validate.txt")"
	check "the record is still linkprobe's (usbmuxd did not re-pair)" test "$(hostid "$LD/$U.plist")" = "$H2"
else
	explain
fi

# --- 3. linkprobe as root into Debian's usbmux-owned directory -----------------
stop_usbmuxd
# what usbmuxd --user usbmux leaves: the directory and its files the daemon
# made are usbmux's (it creates SystemConfiguration.plist as that user); the
# phone's record is gone, so linkprobe pairs and writes a new one
# (owner usbmux, group its primary group: plugdev on Debian, no usbmux group)
MG=$(id -gn usbmux)
rm -f "$LD/$U.plist"
chown -R "usbmux:$MG" "$LD"
chmod 02775 "$LD"
owner() { stat -c '%U:%G %a' "$1" 2>/dev/null; }
check "$LD as usbmuxd --user usbmux leaves it ($(owner "$LD"))" test "$(owner "$LD")" = "usbmux:$MG 2775"
# the phone plugged in again: udev (running since part 2) applies usbmuxd's
# rule, which makes usbmux the owner of the device node
gadget unbind
wait_nodev 10
gadget rebind
replugged() {
	wait_dev 10 && udevadm settle -t 30 || return 1
	_d=$(devdir)
	_node=/dev/bus/usb/$(printf %03d "$(cat "$_d/busnum")")/$(printf %03d "$(cat "$_d/devnum")")
	diag "device node $_node: $(stat -c '%U:%G %a' "$_node")"
	test "$(stat -c %U "$_node")" = usbmux
}
check "replugged; usbmuxd's udev rule made usbmux the node's owner" replugged
lp as-root trust --pair --pair-dir "$LD" --timeout 120
v=$(jfield as-root .verdict)
check "as root, direct, trust --pair --pair-dir $LD: TRUSTED ($v)" test "$v" = TRUSTED ||
	diag "evidence: $(jfield as-root .evidence)"
check "a new Pair over the direct path ($(jfield as-root '[.stages[] | select(.name == "Pair" or .name == "usbmux") | "\(.name):\(.status)"] | join(",")'))" \
	test "$(jfield as-root '[.stages[] | select(.name == "Pair" or .name == "usbmux" or .name == "usbmuxd connect") | "\(.name):\(.status)"] | join(",")')" = "usbmux:ok,Pair:ok"
H3=$(hostid "$LD/$U.plist")
diag "linkprobe record (as root): HostID $H3, $(owner "$LD/$U.plist")"
check "the record is usbmux's, mode 0600 ($(owner "$LD/$U.plist"))" \
	test "$(owner "$LD/$U.plist")" = "usbmux:$MG 600"
# usbmuxd as Debian's unit starts it; only its log lines from now on count
before=$(wc -l <"$LOG" 2>/dev/null || echo 0)
start_usbmuxd --user usbmux --systemd || explain
MUXPID=$(cat "$LAB_STATE/usbmuxd.pid")
# (it drops root once its USB and socket setup is done)
runs_as() { [ "$(ps -o user= -p "$MUXPID" 2>/dev/null | tr -d ' ')" = "$1" ]; }
check "usbmuxd --user usbmux --systemd runs as usbmux" retry 10 0.2 runs_as usbmux
validate() { idevicepair -u "$U" validate 2>&1 | tee "$LAB_STATE/validate.txt" | grep -q SUCCESS; }
if check "idevice_id -l lists the UDID (usbmuxd, as usbmux, read the record)" retry 120 1 listed; then
	ideviceinfo -u "$U" >"$LAB_OUT/ideviceinfo-asroot.txt" 2>&1
	check "full ideviceinfo (session over TLS) with the record linkprobe wrote as root" \
		grep -q "UniqueDeviceID: $U" "$LAB_OUT/ideviceinfo-asroot.txt" || explain
	check "idevicepair validate accepts it" retry 20 2 validate ||
		diag "validate said: $(cat "$LAB_STATE/validate.txt")"
else
	explain
	fail "full ideviceinfo with the record linkprobe wrote as root: not listed"
	fail "idevicepair validate: not listed"
fi
tail -n +$((before + 1)) "$LOG" >"$LAB_STATE/usbmuxd-asroot.log" 2>/dev/null
grep -F "Failed to read '$LD/" "$LAB_STATE/usbmuxd-asroot.log"
check "usbmuxd never failed to read a record in $LD" sh -c "! grep -qF \"Failed to read '$LD/\" '$LAB_STATE/usbmuxd-asroot.log'"
same_host() { [ -n "$H3" ] && [ "$(hostid "$LD/$U.plist")" = "$H3" ]; }
check "no new Trust: the record is still linkprobe's (same HostID)" same_host
check "... still usbmux's, 0600 ($(owner "$LD/$U.plist"))" test "$(owner "$LD/$U.plist")" = "usbmux:$MG 600"
stop_usbmuxd
:
