#!/bin/sh
# 23-catalogue.t - failure-catalogue modes of issue 9 section 3 that the
# simulated iPhone and the transport's faults can provoke, each with the
# verdict, the evidence a user can act on and its own remedy; where a
# capture can show it, `analyze` on the run's capture agrees.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }

# live LABEL VERDICT ARGS...: run with a capture, check verdict, analyze it
live() {
	_l=$1 _v=$2; shift 2
	run_lp "$T/l.json" "$@" --capture "$T/c.pcapng" --json; _rc=$?
	is "$(jget .verdict $T/l.json)" "$_v" "$_l: $_v"
	is "$_rc" 1 "$_l: exit 1"
	run_lp "$T/o.json" analyze "$T/c.pcapng" --json
	is "$(jget .verdict $T/o.json)" "$_v" "$_l: analyze on the capture agrees"
}

# a kernel driver holds an interface: it is named, with its own remedy
run_lp $T/d.json trust --device "sim:healthy,fault=driver-ipheth" --pair-dir $T/pd-d --json
is "$(jget .verdict $T/d.json)" DEVICE_BUSY "kernel driver: DEVICE_BUSY"
like "$(jget .evidence $T/d.json)" "kernel driver ipheth holds interface" "kernel driver: named in the evidence"
like "$(jget .remedy $T/d.json)" "Personal Hotspot.*modprobe -r ipheth" "kernel driver: the remedy is about that driver"
unlike "$(jget .remedy $T/d.json)" "systemctl stop usbmuxd" "kernel driver: not the usbmuxd remedy"
run_lp $T/c.json --cable-test --device "sim:healthy,fault=driver-ipheth" --json
like "$(jget .evidence $T/c.json)" "kernel driver ipheth" "kernel driver: the cable test names it too"

# lockdownd not listening (RST to 62078) or never answering QueryType
live "lockdown=refuse" LOCKDOWN_DOWN trust --device "sim:healthy,lockdown=refuse" --pair-dir $T/pd-r
like "$(jget .evidence $T/l.json)" "stage lockdown connect: the device reset the usbmux connection to port 62078" "lockdown=refuse: the evidence says what happened"
like "$(jget .remedy $T/l.json)" "restart the device \(step 2" "lockdown=refuse: restart the device (step 2)"
live "lockdown=silent" LOCKDOWN_DOWN trust --device "sim:healthy,lockdown=silent" --pair-dir $T/pd-s
like "$(jget .evidence $T/l.json)" "stage QueryType: lockdownd accepted the connection but never answered QueryType" "lockdown=silent: the evidence says what happened"
unlike "$(jget .remedy $T/l.json)" "another cable" "lockdown=silent: no cable remedy after the wait"

# TLS told apart: no protocol/cipher in common (host policy) vs the device
# refusing our certificate (stale record)
live "tls=legacy" TLS_HOST_POLICY trust --pair --device "sim:healthy,tls=legacy" --pair-dir $T/pd-t
like "$(jget .remedy $T/l.json)" "OPENSSL_CONF.*SECLEVEL=0" "tls=legacy: the remedy fixes this host's TLS settings"
unlike "$(jget .remedy $T/l.json)" "Re-pair" "tls=legacy: no re-pairing for a host policy"
live "tls-reject" TLS_FAILED trust --pair --device sim:tls-reject --pair-dir $T/pd-tr
like "$(jget .remedy $T/l.json)" "Re-pair" "tls-reject: the device refused the record: re-pair"
# a device whose trust was reset: StartSession still succeeds, then it closes
# the connection at our TLS hello (SSL error -5 / SSLZeroReturnError): the
# record is stale, not this host's TLS policy
run_lp $T/p.json trust --pair --device "sim:healthy,state=$T/phone-rs" --pair-dir $T/pd-rs --json
is "$(jget .verdict $T/p.json)" TRUSTED "tls=reset: paired first"
live "tls=reset" TLS_FAILED trust --device "sim:healthy,state=$T/phone-rs,tls=reset" --pair-dir $T/pd-rs
like "$(jget .evidence $T/l.json)" "stage TLS: the device closed the connection during the TLS hello, before presenting its certificate" "tls=reset: the evidence says the device closed it"
like "$(jget .remedy $T/l.json)" "Re-pair" "tls=reset: a stale record: re-pair"
unlike "$(jget .remedy $T/l.json)" "OPENSSL_CONF|not at fault" "tls=reset: not blamed on this host's TLS policy"
like "$(jget .evidence $T/o.json)" "the device (closed|reset) the connection during the TLS hello" "tls=reset: analyze says the device closed it"

# a hub between the device and the root port: shown; with a link problem
# the remedy says to plug it straight into the computer
run_lp $T/h.json list --device "sim:healthy,hubs=2" --json
is "$(jget '.devices[0].hubs' $T/h.json)" 2 "hubs=2: list counts 2 hubs"
is "$(jget '.devices[0].port_path' $T/h.json)" 1-1.4.4 "hubs=2: list shows the port path"
live "full speed through a hub" DEGRADED --cable-test --duration 1 --device "sim:full-speed,hubs=1"
like "$(jget '.stages[0].detail' $T/l.json)" "port path 1-1.4 \(through 1 hub\)" "the find-device stage names the hub"
like "$(jget .remedy $T/l.json)" "through 1 hub \(port path 1-1.4\): plug it straight into a port on the computer" "full speed through a hub: plug straight into the computer"
run_lp $T/g.json --cable-test --duration 1 --device "sim:healthy,hubs=1" --json
is "$(jget .verdict $T/g.json)" GOOD "a clean link through a hub is GOOD"
is "$(jget .remedy $T/g.json)" "" "a clean link through a hub: no remedy"

# kernel enumeration errors when nothing enumerates (LINKPROBE_KMSG: a file
# of /dev/kmsg records, read the way /dev/kmsg is)
printf '6,1001,5000000,-;usb 1-2: new high-speed USB device number 9 using xhci_hcd\n SUBSYSTEM=usb\n3,1002,5100000,-;usb 1-2: device descriptor read/64, error -71\n3,1003,5300000,-;usb usb1-port2: unable to enumerate USB device\n' > $T/kmsg-bad
printf '6,1,100,-;usb 3-1: new high-speed USB device number 2 using xhci_hcd\n6,2,200,-;usb 3-1: New USB device found, idVendor=046d\n' > $T/kmsg-quiet
for c in trust --cable-test; do
	LINKPROBE_KMSG=$T/kmsg-bad run_lp $T/k.json $c --device sim:charge-only --pair-dir $T/pd-k --json
	is "$(jget .verdict $T/k.json)" BAD_SIGNAL "$c, kernel log with -71: BAD_SIGNAL"
	like "$(jget .evidence $T/k.json)" "port 1-2: usb usb1-port2: unable to enumerate USB device" "$c: the kernel's words and the port in the evidence"
	unlike "$(jget .remedy $T/k.json)" "likely charge-only" "$c: not the charge-only remedy"
	LINKPROBE_KMSG=$T/kmsg-quiet run_lp $T/q.json $c --device sim:charge-only --pair-dir $T/pd-k --json
	is "$(jget .verdict $T/q.json)" NO_DEVICE "$c, kernel log without a failure: NO_DEVICE"
	like "$(jget .evidence $T/q.json)" "no failed enumeration.*no data connection at all" "$c: no trace at all: no data connection"
	like "$(jget .remedy $T/q.json)" "charge-only" "$c: the charge-only remedy"
done
LINKPROBE_KMSG=$T/no-such-file run_lp $T/u.json trust --device sim:charge-only --json
like "$(jget .evidence $T/u.json)" "could not be read" "an unreadable kernel log is said so"

# a SuperSpeed-capable iPhone (bcdUSB 3.2, BOS) on a USB 2 link, and on a
# 10 Gb/s one
live "usbc-on-usb2 cable test" DEGRADED --cable-test --duration 1 --device sim:usbc-on-usb2
like "$(jget .evidence $T/l.json)" "SuperSpeedPlus .*BOS descriptor.* linked at high speed \(480 Mb/s\): a USB 2 cable or port" "usbc-on-usb2: the evidence"
like "$(jget .remedy $T/l.json)" "USB 3 data cable" "usbc-on-usb2: a USB 3 cable and port"
run_lp $T/s.json --cable-test --duration 1 --device sim:usbc-superspeed --json
is "$(jget .verdict $T/s.json)" GOOD "usbc-superspeed: GOOD"
like "$(jget .evidence $T/s.json)" "SuperSpeedPlus \(10 Gb/s\)" "usbc-superspeed: 10 Gb/s reported as such"
is "$(jget .metrics.speed_mbps $T/s.json)" 10000 "usbc-superspeed: speed_mbps 10000"
run_lp $T/s.json list --device sim:usbc-on-usb2 --json
is "$(jget '.devices[0].superspeed_capable' $T/s.json)" true "list: SuperSpeed-capable"
like "$(jget '.stages[1].detail' $T/s.json)" "SuperSpeed-capable: USB 2 cable or port" "list: says the link is USB 2"

# Apple's USB mode (vendor request 0x45, as usbmuxd asks) in list
run_lp $T/m.json list --device sim:healthy --json
is "$(jget '.devices[0].usb_mode.get_mode' $T/m.json)" 3:3:3:0 "list: GET_MODE answered 3:3:3:0"
is "$(jget '.devices[0].usb_mode.name' $T/m.json)" initial "list: the initial mode (4 configurations)"
like "$(jget '.stages[1].detail' $T/m.json)" "USB mode initial \(GET_MODE 3:3:3:0\)" "list: the mode in the stage"
run_lp $T/m.json list --device sim:dfu --json
is "$(jget '.devices[0].usb_mode' $T/m.json)" null "list: no vendor request to a DFU device"

# --timeout is the window for the Trust dialog: it counts from the first
# Pair request, not from before key generation (a slow host: 20 s of keys)
LINKPROBE_TEST_SLOW_KEYGEN_MS=20000 run_lp $T/w.json trust --pair --timeout 5 --device sim:healthy --pair-dir $T/pd-w --json
is "$(jget .verdict $T/w.json)" TRUSTED "slow host, --timeout 5: the dialog answered after 2 s still pairs"
LINKPROBE_TEST_SLOW_KEYGEN_MS=20000 run_lp $T/w.json trust --pair --timeout 5 --device sim:never-answers --pair-dir $T/pd-w2 --json
is "$(jget .verdict $T/w.json)" TRUST_PENDING "slow host, nobody answers: TRUST_PENDING"
like "$(jget .evidence $T/w.json)" "unanswered for 5 s" "slow host: the user had the whole 5 s"
done_testing
