#!/bin/sh
# 81-held-usbmuxd.t - the desktop arrangement in-process: usbmuxd holds the
# iPhone's usbmux interface (the simulated iPhone's fault=claim-ebusy), and a
# stand-in daemon (tests/fake_usbmuxd.c) serves the same simulated phone (one
# state file) on its socket. `trust` and `--cable-test` go through the daemon
# by themselves and say who holds the device; `--direct` does not and says
# how to stop it; a daemon that does not serve the device it holds is
# USBMUXD_ERROR, never a phone or cable verdict; no daemon at all leaves
# DEVICE_BUSY naming the holder.
. "$(dirname "$0")/lib.sh"
FAKE=${FAKE_USBMUXD:-$(cd "$(dirname "$0")/../.." && pwd)/build/tests/fake-usbmuxd}
if [ ! -x "$FAKE" ]; then
	echo "1..0 # SKIP $FAKE not built (make build/tests/fake-usbmuxd)"
	exit 0
fi
unset LINKPROBE_SIM_CLOCK
SOCK=$T/usbmuxd.sock
export USBMUXD_SOCKET_ADDRESS="UNIX:$SOCK"
FPID=
stop_fake() { [ -n "$FPID" ] && kill "$FPID" 2>/dev/null && wait "$FPID" 2>/dev/null; FPID=; }
# start_fake NAME [fake options]: a daemon with its own record dir $T/NAME
start_fake() {
	stop_fake
	D=$T/$1
	shift
	mkdir -p "$D"
	rm -f "$SOCK"
	"$FAKE" --socket "$SOCK" --dir "$D" --trust-delay-ms 300 "$@" 2>"$D.log" &
	FPID=$!
	for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
	# the held phone: the daemon's own simulated iPhone, its interface claimed
	DEV="sim:healthy,state=$D/.sim-device,fault=claim-ebusy"
}
trap 'stop_fake; rm -rf "$T"' EXIT
stage() { jq -r --arg n "$2" '.stages[] | select(.name==$n) | "\(.status) \(.detail)"' "$1" 2>/dev/null; }

# -- usbmuxd holds the device: trust pairs through it ------------------------
start_fake good
run_lp $T/t.json trust --pair --device "$DEV" --pair-dir $T/pd --json; rc=$?
is "$(jget .verdict $T/t.json)" TRUSTED "held by usbmuxd: trust --pair TRUSTED through the daemon"
is "$rc" 0 "held by usbmuxd: exit 0"
is "$(jget '[.stages[].name] | join(",")' $T/t.json)" \
	"find device,descriptors,usbmux,usbmuxd connect,lockdown connect,QueryType,device info,pair record,Pair,StartSession,TLS,StartService,StopSession" \
	"held: the USB stages, then usbmuxd connect, then lockdown through the daemon"
like "$(stage $T/t.json usbmux)" "^skipped the usbmux interface is held: .*busy" "held: the usbmux stage says the interface is held"
like "$(stage $T/t.json 'usbmuxd connect')" "^ok fake-usbmuxd \(pid $FPID\) holds the device: pairing through it" \
	"held: the stage names the daemon and its pid (SO_PEERCRED) and says pairing goes through it"
like "$(stage $T/t.json 'lockdown connect')" "usbmuxd connection to port 62078" "held: lockdown through the daemon's Connect"
like "$(stage $T/t.json Pair)" "SavePairRecord" "held: the record saved through the daemon"
U=$(jget .device.udid $T/t.json)
ok $([ -f "$T/good/$U.plist" ]; echo $?) "held: the record is in the daemon's store, not --pair-dir"
ok $([ ! -e "$T/pd/$U.plist" ]; echo $?) "held: nothing written to --pair-dir"

# a second run: the record comes from the daemon (ReadPairRecord), no Pair
run_lp $T/t2.json trust --device "$DEV" --pair-dir $T/pd --json
is "$(jget .verdict $T/t2.json)" TRUSTED "held: second trust TRUSTED with the daemon's record"
like "$(stage $T/t2.json 'pair record')" "^ok usbmuxd at $SOCK, PairRecordID $U" "held: pair record read from the daemon"
is "$(jget '.stages[] | select(.name=="Pair") | .status' $T/t2.json)" skipped "held: no Pair the second time"

# --cable-test: control on the node, mux and lockdown through the daemon
run_lp $T/c.json --cable-test --duration 1 --device "$DEV" --json; rc=$?
is "$(jget .verdict $T/c.json)" GOOD "held: cable test GOOD"
is "$rc" 0 "held: cable test exit 0"
like "$(stage $T/c.json 'usbmuxd connect')" "^ok fake-usbmuxd \(pid $FPID\) holds the device: measuring through it" "held: cable test says it measures through the daemon"
like "$(stage $T/c.json 'round trips')" "control round trips on the device node; usbmux and lockdown round trips through fake-usbmuxd \(pid $FPID\)" \
	"held: the round trips say which went where"
like "$(jget .metrics.control_rtt.count $T/c.json)" "^[1-9]" "held: control round trips measured"
like "$(jget .metrics.mux_rtt.count $T/c.json)" "^[1-9]" "held: usbmux round trips measured (Connect to a closed port, refused)"
like "$(jget .metrics.lockdown_rtt.count $T/c.json)" "^[1-9]" "held: lockdown round trips measured"
is "$(jget '.metrics.via | "\(.control_rtt),\(.mux_rtt),\(.lockdown_rtt)"' $T/c.json)" "device node,usbmuxd,usbmuxd" "held: metrics.via says which path each probe took"

# --direct: the direct path only, and how to stop the daemon
run_lp $T/d.json trust --direct --device "$DEV" --pair-dir $T/pd --json
is "$(jget .verdict $T/d.json)" DEVICE_BUSY "--direct: DEVICE_BUSY"
like "$(jget .remedy $T/d.json)" "systemctl stop usbmuxd" "--direct: the remedy says how to stop the daemon"
run_lp $T/d2.json --cable-test --direct --duration 1 --device "$DEV" --json
is "$(jget .verdict $T/d2.json)" DEVICE_BUSY "--direct cable test: DEVICE_BUSY"
run_lp $T/d3.out trust --direct --via-usbmuxd
is "$?" 2 "--direct with --via-usbmuxd is a usage error"

# -- a daemon that holds the device but does not serve it: USBMUXD_ERROR ------
start_fake hide --hide
run_lp $T/h.json trust --device "$DEV" --pair-dir $T/pd --json; rc=$?
is "$(jget .verdict $T/h.json)" USBMUXD_ERROR "daemon does not list the device it holds: USBMUXD_ERROR"
is "$rc" 1 "USBMUXD_ERROR exits 1"
like "$(jget .evidence $T/h.json)" "fake-usbmuxd \(pid $FPID\) holds the device but does not list the device on bus 1 address 2 \(UDID $U\)" \
	"the evidence names the daemon, its pid and the device it does not list"
unlike "$(jget .remedy $T/h.json)" "cable|[Rr]estart the device|another port" "no cable, port or phone remedy for the daemon's fault"
like "$(jget .remedy $T/h.json)" "systemctl restart usbmuxd" "the remedy restarts the daemon"

start_fake badlist --list-result 1
run_lp $T/l.json trust --device "$DEV" --pair-dir $T/pd --json
is "$(jget .verdict $T/l.json)" USBMUXD_ERROR "daemon answers ListDevices with an error code: USBMUXD_ERROR"
like "$(jget .evidence $T/l.json)" "ListDevices.*result 1 BADCOMMAND" "the evidence carries the daemon's error code"

start_fake badconn --connect-result 1
run_lp $T/k.json trust --device "$DEV" --pair-dir $T/pd --json
is "$(jget .verdict $T/k.json)" USBMUXD_ERROR "daemon lists the device but lockdown through it fails: USBMUXD_ERROR"
like "$(stage $T/k.json 'lockdown connect')" "^fail fake-usbmuxd \(pid $FPID\): lists the device, but lockdown \(port 62078\) through it failed" \
	"the lockdown connect stage says the daemon's Connect failed"
run_lp $T/k2.json trust --via-usbmuxd --json
is "$(jget .verdict $T/k2.json)" USBMUXD_ERROR "--via-usbmuxd, Connect answered with an error: USBMUXD_ERROR (not PROTOCOL_ERROR)"

# -- not held, but the record directory is not this user's (root's 0700, as
# /var/lib/lockdown on a desktop): the record comes from the daemon
# (ReadPairRecord) while the USB path stays linkprobe's own. Run as nobody
# (the tests run as root, whom no directory refuses; setpriv is util-linux).
start_fake good
chmod 0755 "$T"
chmod 0666 "$SOCK"
NB=$T/nobody
mkdir -p "$NB" "$T/rootonly"
cp "$T/good/.sim-device" "$NB/state" # the same phone, which knows the daemon's pairing
chown -R 65534:65534 "$NB"
chmod 0700 "$T/rootonly"
setpriv --reuid=65534 --regid=65534 --clear-groups "$LP" trust \
	--device "sim:healthy,state=$NB/state" --pair-dir "$T/rootonly" --json \
	>$T/nb.json 2>$T/nb.err
is "$(jget .verdict $T/nb.json)" TRUSTED "record directory not readable, usbmuxd running: TRUSTED with the daemon's record"
like "$(stage $T/nb.json 'pair record')" "^ok usbmuxd at $SOCK, PairRecordID $U \($T/rootonly is not this user's to read\)" \
	"the pair record stage says the record came from the daemon, and why"
like "$(stage $T/nb.json usbmux)" "^ok usbmux v" "... while the USB path is linkprobe's own"
stop_fake
rm -f "$SOCK"
setpriv --reuid=65534 --regid=65534 --clear-groups "$LP" trust \
	--device "sim:healthy,state=$NB/state" --pair-dir "$T/rootonly" --json \
	>$T/nb2.json 2>$T/nb2.err
unlike "$(jget .verdict $T/nb2.json)" "^(TRUSTED|NO_DEVICE|USB_ERROR|PROTOCOL_ERROR|DISCONNECTED)$" \
	"no daemon either: not TRUSTED, and no phone or cable verdict"
like "$(jget '.stages[] | select(.name=="pair record") | .detail' $T/nb2.json)" "ermission denied" \
	"no daemon either: the pair record stage names the refusal"

# -- nobody to go through: the holder is someone else ------------------------
stop_fake
rm -f "$SOCK"
run_lp $T/n.json trust --device "$DEV" --pair-dir $T/pd --json
is "$(jget .verdict $T/n.json)" DEVICE_BUSY "held, no usbmuxd answering: DEVICE_BUSY"
like "$(jget .evidence $T/n.json)" "busy.*no usbmuxd to go through \(usbmuxd is not running at $SOCK" \
	"the evidence says who holds it and that no daemon answers"
done_testing
