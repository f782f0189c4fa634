#!/bin/sh
# 80-via-usbmuxd.t - `list` and `trust --via-usbmuxd` through a stand-in
# usbmuxd (tests/fake_usbmuxd.c: the daemon's plist protocol on a UNIX socket,
# Connect relayed to the simulated iPhone, records kept in its own dir).
# Real clock: the simulated Trust tap comes 300 ms after the dialog.
. "$(dirname "$0")/lib.sh"
FAKE=${FAKE_USBMUXD:-$(cd "$(dirname "$0")/../.." && pwd)/build/tests/fake-usbmuxd}
if [ ! -x "$FAKE" ]; then
	echo "1..0 # SKIP $FAKE not built (make build/tests/fake-usbmuxd)"
	exit 0
fi
unset LINKPROBE_SIM_CLOCK
D=$T/daemon
SOCK=$T/usbmuxd.sock
"$FAKE" --socket "$SOCK" --dir "$D" --trust-delay-ms 300 2>$T/daemon.log &
FPID=$!
trap 'kill $FPID 2>/dev/null; wait $FPID 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
export USBMUXD_SOCKET_ADDRESS="UNIX:$SOCK"

# list
run_lp $T/l.json list --via-usbmuxd --json
is $? 0 "list --via-usbmuxd exits 0"
is "$(jget .verdict $T/l.json)" FOUND "list: FOUND"
is "$(jget '.devices | length' $T/l.json)" 1 "one device listed by the daemon"
UDID=$(jget '.devices[0].udid' $T/l.json)
like "$UDID" "^[0-9a-f]{40}$" "list: UDID from SerialNumber"
is "$(jget '.devices[0].device_id' $T/l.json)" 1 "list: DeviceID"
is "$(jget '.devices[0].pid' $T/l.json)" 4776 "list: ProductID 0x12a8"
is "$(jget '.devices[0].speed_mbps' $T/l.json)" 480 "list: ConnectionSpeed"
is "$(jget '.devices[0].connection_type' $T/l.json)" USB "list: ConnectionType"

# trust --pair: paired through the daemon, record saved by SavePairRecord
run_lp $T/a.json trust --pair --via-usbmuxd --json
is $? 0 "trust --pair --via-usbmuxd exits 0"
is "$(jget .verdict $T/a.json)" TRUSTED "verdict TRUSTED"
is "$(jget '[.stages[].name] | join(",")' $T/a.json)" \
	"find device,usbmuxd connect,lockdown connect,QueryType,device info,pair record,Pair,StartSession,TLS,StartService,StopSession" \
	"stages: usbmuxd connect instead of descriptors and usbmux"
is "$(jget '[.stages[].status] | map(select(. != "ok")) | length' $T/a.json)" 0 "every stage ok"
like "$(jget '.stages[] | select(.name=="lockdown connect") | .detail' $T/a.json)" "usbmuxd connection to port 62078" "lockdown reached through usbmuxd Connect"
like "$(jget '.stages[] | select(.name=="usbmuxd connect") | .detail' $T/a.json)" "SystemBUID [0-9A-F-]{36}" "usbmuxd connect reads the BUID"
like "$(jget '.stages[] | select(.name=="Pair") | .detail' $T/a.json)" "SavePairRecord" "Pair saved the record through the daemon"
is "$(jget .device.udid $T/a.json)" "$UDID" "same UDID as list"
ok $([ -f "$D/$UDID.plist" ]; echo $?) "record stored in the daemon's dir"
like "$(cat $T/daemon.log)" "saved record $UDID \(DeviceID 1\)" "SavePairRecord carried the DeviceID"
BUID=$(plistutil -i "$D/SystemConfiguration.plist" -f xml 2>/dev/null | tr -d '\n\t ' | sed -n 's/.*<key>SystemBUID<\/key><string>\([^<]*\)<.*/\1/p')
like "$(plistutil -i "$D/$UDID.plist" -f xml 2>/dev/null | tr -d '\n\t ')" "<key>SystemBUID</key><string>$BUID</string>" "record carries the daemon's SystemBUID"

# second run uses the daemon's record: no Pair
run_lp $T/b.json trust --via-usbmuxd --json
is $? 0 "second run exits 0"
is "$(jget .verdict $T/b.json)" TRUSTED "second run TRUSTED from the daemon's record"
is "$(jget '.stages[] | select(.name=="Pair") | .status' $T/b.json)" skipped "second run: Pair skipped"

# --udid that the daemon does not list
run_lp $T/u.json trust --via-usbmuxd --udid 0000000000000000000000000000000000000000 --json
is $? 1 "unknown --udid exits 1"
is "$(jget .verdict $T/u.json)" UDID_NOT_FOUND "unknown --udid: UDID_NOT_FOUND (the daemon's devices listed)"

# usage: only list and trust; nothing to capture
run_lp $T/c.out --cable-test --via-usbmuxd
is $? 2 "--cable-test --via-usbmuxd is a usage error"
run_lp $T/c.out trust --via-usbmuxd --capture $T/x.pcapng
is $? 2 "--capture with --via-usbmuxd is a usage error"

# the daemon is gone: a clear message, not a hang
kill $FPID; wait $FPID 2>/dev/null
run_lp $T/g.json trust --via-usbmuxd --json
is $? 1 "no daemon: exits 1"
like "$(jget .evidence $T/g.json)" "usbmuxd is not running at $SOCK" "no daemon: says usbmuxd is not running"
like "$(jget .remedy $T/g.json)" "systemctl restart usbmuxd" "no daemon: remedy says how to (re)start it"
is "$(jget .verdict $T/g.json)" USBMUXD_UNREACHABLE "no daemon: USBMUXD_UNREACHABLE, not NO_DEVICE"
USBMUXD_SOCKET_ADDRESS=127.0.0.1:1 run_lp $T/h.json list --via-usbmuxd --json
is $? 1 "TCP address with nobody listening: exits 1"
like "$(jget .evidence $T/h.json)" "usbmuxd is not running at 127.0.0.1:1" "TCP address: same clear message"
done_testing
