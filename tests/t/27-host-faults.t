#!/bin/sh
# 27-host-faults.t - faults the evidence places on this host, never on the
# phone, the cable or the port (issue 9, section 1): the pair-record store
# unreadable or unwritable (EACCES, EROFS, ENOSPC, ENOTDIR, EIO, not a
# regular file), a damaged record or SystemConfiguration.plist, no USB host
# controller, a --udid that names no connected device, the usbmux daemon not
# running or not reachable, a replay driven off its recording. Each is walked
# for `trust` and, where the command meets it, `--cable-test` and `list`:
# its verdict, exit code 1, evidence naming the path and the errno, and a
# remedy (JSON and human output) with no cable, port or phone step.
#
# Permission errors need a user the file mode applies to: as root the binary
# runs as uid 65534 through setpriv (a numeric uid: no passwd entry needed).
# A read-only and a full file system are made in a private mount namespace
# (unshare: a user namespace, else root's own).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIM=sim:healthy
chmod 0711 "$T" # uid 65534 walks through to its own directories

if [ "$(id -u)" = 0 ]; then
	AS_USER="setpriv --reuid 65534 --regid 65534 --clear-groups --"
	# the clone may sit where uid 65534 cannot reach: run a copy from $T
	cp "$LP" "$T/linkprobe" && chmod 0755 "$T/linkprobe"
	LP_USER=$T/linkprobe
else
	AS_USER=""
	LP_USER=$LP
fi
# No usbmux daemon unless a test names one: with one running, a directory the
# user may not read is read through it (81-held-usbmuxd.t), not these faults.
export USBMUXD_SOCKET_ADDRESS="UNIX:$T/no-usbmuxd.sock"
# A remedy for the host never sends the user to the cable, a port, the phone.
NOT_HOST='cable|another port|USB port|the port|charge-only|charges|restart the (device|phone)|udev|tap Trust|Reset Location|unlock|DFU'

# check NAME VERDICT EVIDENCE-REGEX: the JSON report $T/NAME.json (exit code
# in $rc) has VERDICT, exit 1, the evidence, and a host remedy
check() {
	is "$rc" 1 "$1: exit 1"
	is "$(jget .verdict "$T/$1.json")" "$2" "$1: $2"
	is "$(jget .exit_code "$T/$1.json")" 1 "$1: exit_code 1 in the JSON"
	like "$(jget .evidence "$T/$1.json")" "$3" "$1: the evidence names it"
	unlike "$(jget .remedy "$T/$1.json")" "$NOT_HOST" "$1: no cable, port or phone remedy"
	like "$(jget .remedy "$T/$1.json")" "." "$1: a remedy is given"
}
# human NAME ARGS...: the same run without --json; the text shows no such remedy
human() {
	_h=$1; shift
	timeout 120 "$@" >"$T/$_h.txt" 2>&1
	unlike "$(grep -A4 -i '^remedy' "$T/$_h.txt")" "$NOT_HOST" "$_h: human remedy is the host's"
}
# lp NAME ARGS...: linkprobe ARGS --json into $T/NAME.json, exit code in $rc
lp() {
	_nm=$1; shift
	run_lp "$T/$_nm.json" "$@" --json; rc=$?
}
# as_user NAME ARGS...: the same as uid 65534 when root
as_user() {
	_nm=$1; shift
	# shellcheck disable=SC2086
	timeout 120 $AS_USER "$LP_USER" "$@" --json >"$T/$_nm.json" 2>"$T/$_nm.err"; rc=$?
}

# A valid record for the simulated iPhone, from a first pairing; the device
# remembers it in its state file, which later runs share where the device's
# memory is not the point (it also saves an RSA key per run); uid 65534
# must read it
PD0=$T/pd0
SIMS="$SIM,state=$T/simdev"
lp pair0 trust --pair --device $SIMS --pair-dir "$PD0"
is "$rc" 0 "setup: trust --pair pairs"
UDID=$(jget .device.udid $T/pair0.json)
like "$UDID" '^[0-9a-f]{40}$' "setup: the device's UDID"
chmod 0644 "$T/simdev"

# --- the pair-record store --------------------------------------------------

# EACCES: /var/lib/lockdown as Debian has it, root's and 0700, read by a user
PD=$T/lockdown-700
mkdir "$PD" && cp "$PD0/$UDID.plist" "$PD0/SystemConfiguration.plist" "$PD/"
if [ -n "$AS_USER" ]; then chmod 0700 "$PD"; else chmod 0000 "$PD"; fi
as_user eacces-read trust --device $SIMS --pair-dir "$PD"
check eacces-read PAIR_RECORD_ACCESS "$PD/$UDID\.plist: Permission denied \(EACCES\)"
like "$(jget .evidence $T/eacces-read.json)" "mode 0[07]00; linkprobe runs as uid" "eacces-read: who may use the directory"
is "$(jget '.stages[-1].name + ":" + .stages[-1].status' $T/eacces-read.json)" "pair record:fail" \
	"eacces-read: the pair record stage fails (not StartSession: the device never saw a record)"
unlike "$(jget .verdict $T/eacces-read.json)" STALE_TRUST "eacces-read: not STALE_TRUST"
# ... and with --pair: refused before the Trust dialog, not ACCESS_DENIED after it
as_user eacces-pair trust --pair --device $SIMS --pair-dir "$PD"
check eacces-pair PAIR_RECORD_ACCESS "Permission denied \(EACCES\)"
is "$(jget '[.stages[].name] | index("Pair")' $T/eacces-pair.json)" null "eacces-pair: no Pair was started"
# a directory the user may read but not write: found before the user taps Trust
PDW=$T/lockdown-555
mkdir "$PDW" && chmod 0555 "$PDW"
as_user eacces-write trust --device $SIMS --pair-dir "$PDW"
check eacces-write PAIR_RECORD_ACCESS "cannot create temporary file in $PDW: Permission denied \(EACCES\)"
is "$(jget '[.stages[].name] | index("Pair")' $T/eacces-write.json)" null "eacces-write: no Pair was started"
# shellcheck disable=SC2086
human eacces-write-h $AS_USER "$LP_USER" trust --device $SIMS --pair-dir "$PDW"

# ENOTDIR: --pair-dir is a file, or below one
printf 'x' >"$T/plainfile"
lp enotdir trust --device $SIMS --pair-dir "$T/plainfile"
check enotdir PAIR_RECORD_ACCESS "plainfile.*Not a directory \(ENOTDIR\)|plainfile is not a directory \(ENOTDIR\)"
lp enotdir2 trust --device $SIMS --pair-dir "$T/plainfile/sub"
check enotdir2 PAIR_RECORD_ACCESS "Not a directory \(ENOTDIR\)"
# a directory that cannot be made at all (/proc takes no new entries)
lp proc trust --device $SIMS --pair-dir /proc/linkprobe-nonexistent
check proc PAIR_RECORD_ACCESS "cannot create directory /proc/linkprobe-nonexistent: .*\(E[A-Z]+\)"

# not a regular file: the record is a directory, or a FIFO
PDN=$T/notreg
mkdir -p "$PDN/$UDID.plist"
lp notreg-dir trust --device $SIMS --pair-dir "$PDN"
check notreg-dir PAIR_RECORD_ACCESS "$UDID\.plist is not a regular file \(a directory\)"
rmdir "$PDN/$UDID.plist" && mkfifo "$PDN/$UDID.plist"
lp notreg-fifo trust --device $SIMS --pair-dir "$PDN"
check notreg-fifo PAIR_RECORD_ACCESS "is not a regular file \(a FIFO\)"
lp notreg-fifo-pair trust --pair --device $SIMS --pair-dir "$PDN"
check notreg-fifo-pair PAIR_RECORD_ACCESS "is not a regular file \(a FIFO\)"
ok "$([ -p "$PDN/$UDID.plist" ]; echo $?)" "notreg: the FIFO is left in place"

# EIO: a record whose reads fail (/proc/self/mem cannot be read at offset 0)
PDE=$T/eio
mkdir "$PDE" && ln -s /proc/self/mem "$PDE/$UDID.plist"
lp eio trust --device $SIMS --pair-dir "$PDE"
check eio PAIR_RECORD_ACCESS "cannot read .*: Input/output error \(EIO\)"

# EROFS and ENOSPC: a read-only bind mount and a full 64 KiB tmpfs, in a
# private mount namespace
in_ns() { # in_ns SCRIPT: sh -c SCRIPT in a new mount namespace
	unshare --user --map-root-user --mount sh -c "$1" 2>>"$T/ns.err" ||
		unshare --mount sh -c "$1" 2>>"$T/ns.err"
}
mkdir -p "$T/ro-src" "$T/ro" "$T/full"
if in_ns "mount --bind -o ro '$T/ro-src' '$T/ro' && ! touch '$T/ro/x' 2>/dev/null"; then
	in_ns "mount --bind -o ro '$T/ro-src' '$T/ro' && '$LP' trust --device $SIMS --pair-dir '$T/ro' --json >'$T/erofs.json' 2>'$T/erofs.err'; echo \$? >'$T/erofs.rc'"
	rc=$(cat "$T/erofs.rc")
	check erofs PAIR_RECORD_ACCESS "$T/ro: Read-only file system \(EROFS\)"
	in_ns "mount -t tmpfs -o size=64k tmpfs '$T/full' && mkdir '$T/full/pd' && { dd if=/dev/zero of='$T/full/fill' bs=4k 2>/dev/null; true; } && '$LP' trust --device $SIMS --pair-dir '$T/full/pd' --json >'$T/enospc.json' 2>'$T/enospc.err'; echo \$? >'$T/enospc.rc'"
	rc=$(cat "$T/enospc.rc")
	check enospc PAIR_RECORD_ACCESS "No space left on device \(ENOSPC\)"
else
	# no mount namespace here: say so rather than pass silently
	echo "ok $((_n = _n + 1)) # SKIP no mount namespace for EROFS/ENOSPC: $(head -c 200 "$T/ns.err")"
fi

# damaged files: the record, its keys, SystemConfiguration.plist
PDC=$T/corrupt
mkdir "$PDC" && cp "$PD0/SystemConfiguration.plist" "$PDC/"
printf 'garbage' >"$PDC/$UDID.plist"
lp corrupt trust --device $SIMS --pair-dir "$PDC"
check corrupt PAIR_RECORD_CORRUPT "$PDC/$UDID\.plist"
unlike "$(jget .verdict $T/corrupt.json)" "PROTOCOL_ERROR|STALE_TRUST" "corrupt: neither PROTOCOL_ERROR nor STALE_TRUST"
is "$(cat "$PDC/$UDID.plist")" garbage "corrupt: the record is left as it is"
plistutil -i "$PD0/$UDID.plist" -f xml -o "$T/rec.xml" >/dev/null 2>&1
sed '/<key>HostID<\/key>/,+1d' "$T/rec.xml" >"$PDC/$UDID.plist"
lp corrupt-key trust --device $SIMS --pair-dir "$PDC"
check corrupt-key PAIR_RECORD_CORRUPT "HostID"
# a HostCertificate that is no certificate: found at TLS, still the record's fault
awk '/<key>HostCertificate<\/key>/ { print; getline; print "<data>bm90IGEgY2VydGlmaWNhdGU=</data>"; skip = 1; next }
	skip && /<\/data>/ { skip = 0; next } !skip' "$T/rec.xml" >"$PDC/$UDID.plist"
lp corrupt-cert trust --device $SIMS --pair-dir "$PDC"
check corrupt-cert PAIR_RECORD_CORRUPT "HostCertificate or HostPrivateKey is not a usable PEM"
is "$(jget '.stages[-1].name' $T/corrupt-cert.json)" TLS "corrupt-cert: found when the session TLS needs it"
rm -f "$PDC/$UDID.plist"
printf '<?xml version="1.0"?><plist><dict><key>Sys' >"$PDC/SystemConfiguration.plist"
lp sysconf trust --pair --device $SIMS --pair-dir "$PDC"
check sysconf PAIR_RECORD_CORRUPT "SystemConfiguration\.plist is not a property list"
unlike "$(jget .remedy $T/sysconf.json)" "Restart the device" "sysconf: not \"restart the device\""
is "$(jget '.stages[-1].name' $T/sysconf.json)" Pair "sysconf: found when the SystemBUID is needed (Pair)"
rm -f "$PDC/SystemConfiguration.plist" && mkdir "$PDC/SystemConfiguration.plist"
lp sysconf-dir trust --pair --device $SIMS --pair-dir "$PDC"
check sysconf-dir PAIR_RECORD_ACCESS "SystemConfiguration\.plist is not a regular file"

# ... told apart from a record the device refuses: a fresh device does not
# know the record's host (InvalidHostID), STALE_TRUST is the device's answer
lp stale trust --device $SIM --pair-dir "$PD0"
is "$(jget .verdict $T/stale.json)" STALE_TRUST "a sound record the device does not know: STALE_TRUST"
like "$(jget .evidence $T/stale.json)" "InvalidHostID" "stale: the device's InvalidHostID is the evidence"

# --- USB: no host controller, a --udid that names nothing --------------------

for cmd in trust --cable-test list; do
	n=nohost-$(echo "$cmd" | tr -dc 'a-z')
	# shellcheck disable=SC2086
	lp $n $cmd --device $SIMS,fault=no-usb-host
	check $n NO_USB_HOST "no USB host controller"
	# shellcheck disable=SC2086
	human $n-h "$LP" $cmd --device $SIMS,fault=no-usb-host
done
# ... and NO_DEVICE (with its charge-only advice) only where a host exists
lp nodev --cable-test --device sim:charge-only
is "$(jget .verdict $T/nodev.json)" NO_DEVICE "charge-only with a host controller: NO_DEVICE"
# the real USB stack: where the system shows no root hub (a container), libusb
# says NO_USB_HOST; where it shows one, never
unset LINKPROBE_SIM_CLOCK
lp libusb list --device libusb
if ls /sys/bus/usb/devices 2>/dev/null | grep -q '^usb[0-9]'; then
	unlike "$(jget .verdict $T/libusb.json)" NO_USB_HOST "libusb with root hubs in sysfs: not NO_USB_HOST"
else
	is "$(jget .verdict $T/libusb.json)" NO_USB_HOST "libusb where sysfs shows no root hub: NO_USB_HOST"
fi
# libusb that will not start at all (no usbfs, no sysfs, no uevent socket: a
# locked-down container; a preloaded libusb_init() fails as it does there):
# the same host verdict with libusb's words - not exit 3, not cable advice
SHIM=$(dirname "$LP")/build/tests/libusb_init_fail.so
for cmd in trust --cable-test list; do
	n=luinit-$(echo "$cmd" | tr -dc 'a-z')
	# shellcheck disable=SC2086
	LD_PRELOAD=$SHIM ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-} \
		timeout 60 "$LP" $cmd --device libusb --json >"$T/$n.json" 2>"$T/$n.err"
	rc=$?
	check $n NO_USB_HOST "libusb_init failed"
	# shellcheck disable=SC2086
	LD_PRELOAD=$SHIM ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-} \
		human $n-h "$LP" $cmd --device libusb
done
export LINKPROBE_SIM_CLOCK=virtual

for cmd in trust --cable-test; do
	n=udid-$(echo "$cmd" | tr -dc 'a-z')
	lp $n $cmd --device $SIMS --udid 0123456789abcdef0123456789abcdef01234567
	check $n UDID_NOT_FOUND "--udid 0123456789abcdef0123456789abcdef01234567 names none of the 1 device"
	like "$(jget .evidence $T/$n.json)" "$UDID \(bus 1 address [0-9]+, normal mode\)" "$n: the connected device is listed"
done

# --- the usbmux daemon ---------------------------------------------------------

# not running: no socket; a socket nobody listens on (ECONNREFUSED); a socket
# the user may not open (EACCES)
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/dead.sock"
mkdir "$T/sockdir" && chmod 0711 "$T/sockdir"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/sockdir/locked.sock"
if [ -n "$AS_USER" ]; then chmod 0600 "$T/sockdir/locked.sock"; else chmod 0000 "$T/sockdir/locked.sock"; fi
for cmd in trust list; do
	c=$(echo "$cmd" | tr -dc 'a-z')
	# shellcheck disable=SC2086
	USBMUXD_SOCKET_ADDRESS=UNIX:$T/missing.sock lp mux-none-$c $cmd --via-usbmuxd
	check mux-none-$c USBMUXD_UNREACHABLE "$T/missing\.sock \(No such file or directory, ENOENT\)"
	like "$(jget .remedy $T/mux-none-$c.json)" "usbmuxd.*Apple Mobile Device Service" "mux-none-$c: the checklist's daemon step"
	# shellcheck disable=SC2086
	USBMUXD_SOCKET_ADDRESS=UNIX:$T/dead.sock lp mux-refused-$c $cmd --via-usbmuxd
	check mux-refused-$c USBMUXD_UNREACHABLE "dead\.sock \(Connection refused, ECONNREFUSED\)"
	# shellcheck disable=SC2086
	USBMUXD_SOCKET_ADDRESS=UNIX:$T/sockdir/locked.sock as_user mux-eacces-$c $cmd --via-usbmuxd
	check mux-eacces-$c USBMUXD_UNREACHABLE "permission denied on the usbmuxd socket .*EACCES"
done
# shellcheck disable=SC2086
USBMUXD_SOCKET_ADDRESS=UNIX:$T/missing.sock human mux-none-h "$LP" trust --via-usbmuxd

# --udid through the daemon: a stand-in usbmuxd lists the simulated iPhone
FAKE=$ROOT/build/tests/fake-usbmuxd
if [ -x "$FAKE" ]; then
	"$FAKE" --socket "$T/fake.sock" --dir "$T/fakedir" 2>"$T/fake.log" &
	FPID=$!
	trap 'kill $FPID 2>/dev/null; wait $FPID 2>/dev/null; rm -rf "$T"' EXIT
	wait_for 10 test -S "$T/fake.sock"
	USBMUXD_SOCKET_ADDRESS=UNIX:$T/fake.sock LINKPROBE_SIM_CLOCK= lp mux-udid trust --via-usbmuxd --udid feedface
	check mux-udid UDID_NOT_FOUND "--udid feedface names none of the 1 device\(s\) listed by usbmuxd"
	like "$(jget .evidence $T/mux-udid.json)" "[0-9a-f]{40} \(usbmuxd device 1, USB\)" "mux-udid: the daemon's devices are listed"
	kill $FPID 2>/dev/null
	wait $FPID 2>/dev/null
else
	echo "not ok $((_n = _n + 1)) - $FAKE is built by make check (make build/tests/fake-usbmuxd)"
	_fail=1
fi

# --- a replay driven off its recording ----------------------------------------
lp replay trust --device "replay:$ROOT/captures/sim-healthy-cable.pcapng"
check replay REPLAY_DIVERGED "replay diverged: host sent GetValue Key=UniqueDeviceID; recording has next: QueryType"
like "$(jget .evidence $T/replay.json)" "^stage device info: " "replay: the stage where the host left the recording"
human replay-h "$LP" trust --device "replay:$ROOT/captures/sim-healthy-cable.pcapng"

# --- analyze: a capture that ends mid-exchange ---------------------------------
# the golden healthy pairing, cut after each of its records: wherever the cut
# falls inside the exchange, analyze says where the capture ends and reports
# no stage the capture does not show as done or skipped
cut_pcap() { # cut_pcap IN N OUT: the first N records of a classic pcap
	python3 - "$@" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if d[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
off, n = 24, 0
while off + 16 <= len(d) and n < int(sys.argv[2]):
    off += 16 + struct.unpack(e + "I", d[off + 8:off + 12])[0]
    n += 1
open(sys.argv[3], "wb").write(d[:off])
PY
}
GOLD=$ROOT/captures/analyze-healthy-pair.pcap
total=$(capinfos -c -M "$GOLD" | awk '/Number of packets/ {print $NF}')
bad=""
during=""
k=30
while [ "$k" -lt "$total" ]; do
	cut_pcap "$GOLD" $k "$T/cut.pcap"
	"$LP" analyze "$T/cut.pcap" --json >"$T/cut.json" 2>/dev/null
	v=$(jget .verdict "$T/cut.json")
	case $v in
	CAPTURE_TRUNCATED)
		st=$(jget '.evidence | capture("during (?<s>[^(]+?)( \\(|$)").s' "$T/cut.json")
		during="$during $st"
		[ "$(jget '.stages[-1].name + ":" + .stages[-1].status' "$T/cut.json")" = "$st:fail" ] ||
			bad="$bad $k:last-stage-not-$st"
		jget .evidence "$T/cut.json" | grep -q "^the capture ends at packet $k, during " ||
			bad="$bad $k:evidence"
		;;
	TRUSTED | GOOD) ;;
	*) bad="$bad $k:$v" ;;
	esac
	if jget '.stages[] | select(.name == "Pair" and .status == "skipped") | .detail' "$T/cut.json" |
		grep -q 'existing pair record' &&
		! jget '.stages[] | select(.name == "StartSession") | .status' "$T/cut.json" | grep -q ok; then
		bad="$bad $k:pair-record-claimed"
	fi
	k=$((k + 3))
done
is "$bad" "" "a capture cut anywhere: CAPTURE_TRUNCATED (or what it shows completed), never another verdict"
for st in QueryType "device info" Pair StartSession TLS; do
	like "$during" "$st" "a capture cut during $st says so"
done
cut_pcap "$GOLD" 999999 "$T/whole.pcap"
run_lp "$T/whole.json" analyze "$T/whole.pcap" --json
is "$(jget .verdict $T/whole.json)" TRUSTED "the whole capture is still TRUSTED"
unlike "$(jget .remedy $T/cut.json)$(jget .remedy $T/whole.json)" "$NOT_HOST" "no cable or phone remedy for a truncated capture"

done_testing
