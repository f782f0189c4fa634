#!/bin/sh
# 25-relay.sh - the usbmuxd socket relayed over TCP, as people debug it: socat
# relays 127.0.0.1:27015 to Debian's usbmuxd (/run/usbmuxd), dumpcap records
# the loopback interface, and libimobiledevice's ideviceinfo talks to the
# simulated iPhone through the relay (USBMUXD_SOCKET_ADDRESS). The capture,
# relay.pcap, is the golden capture captures/lab-usbmuxd-relay.pcap: the real
# daemon and the real client, no code of ours on the wire but the device.
# The pair record comes from 20-interop's idevicepair (same simulated iPhone,
# same state file), so the session starts without a Trust dialog.
# needs: 20-interop
. "$LAB_REPO/tests/lab/lib.sh"
plan 9
trap 'stop_pid "$LAB_STATE/socat.pid"; lab_cleanup' EXIT
PORT=27015

check "systemd-udevd running" start_udevd
check "usbmuxd started" start_usbmuxd || { explain; exit 0; }
check "gadget up (profile healthy)" gadget up --profile healthy || exit 0
check "host enumerated the device" wait_dev 10 || exit 0
U=$(udid)
check "usbmuxd lists the device (preflight with 20-interop's record)" retry 120 1 listed || { explain; exit 0; }

ip link set lo up 2>/dev/null || busybox ifconfig lo 127.0.0.1 up
socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" UNIX-CONNECT:/run/usbmuxd \
	>"$LAB_OUT/socat.log" 2>&1 &
echo $! >"$LAB_STATE/socat.pid"
listening() { grep -qi " 0100007F:$(printf %04X "$PORT") 00000000:0000 0A " /proc/net/tcp; }
check "socat relays 127.0.0.1:$PORT to usbmuxd's socket" retry 20 0.1 listening || exit 0
capture_start relay lo "tcp port $PORT" || diag "dumpcap on lo did not start"

USBMUXD_SOCKET_ADDRESS=127.0.0.1:$PORT ideviceinfo -u "$U" >"$LAB_OUT/ideviceinfo-relay.txt" 2>&1
echo "ideviceinfo through the relay -> rc $?"
check "ideviceinfo through the relay: a session over TLS (UniqueDeviceID listed)" \
	grep -q "UniqueDeviceID: $U" "$LAB_OUT/ideviceinfo-relay.txt" || explain
capture_stop
n=$(tshark -r "$LAB_OUT/relay.pcap" -Y "tcp.port == $PORT && tcp.len > 0" 2>/dev/null | wc -l)
diag "relay.pcap: $n TCP segments with data, $(stat -c %s "$LAB_OUT/relay.pcap" 2>/dev/null) bytes"
check "the loopback capture holds the relayed session ($n data segments)" test "$n" -gt 20
lp=$LAB_REPO/linkprobe
"$lp" analyze "$LAB_OUT/relay.pcap" --json >"$LAB_OUT/linkprobe-analyze-relay.json" 2>&1
v=$(jq -r .verdict "$LAB_OUT/linkprobe-analyze-relay.json" 2>/dev/null)
check "linkprobe analyze of the relayed session: TRUSTED ($v)" test "$v" = TRUSTED
