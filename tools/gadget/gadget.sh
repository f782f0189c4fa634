#!/bin/sh
# gadget.sh - present the simulated iPhone on a USB device controller: a
# configfs composite gadget whose functions are FunctionFS instances served by
# lp_gadget (tools/gadget/lp_gadget.c). Made for the lab VM (dummy_hcd), works
# on any UDC. Needs root, configfs, libcomposite, usb_f_fs.
#
#   gadget.sh up [--profile NAME] [--udid UDID] [--model simdev|echo] [--no-bind]
#                [--hostile MODE]   (the simulated iPhone misbehaves: sim_hostile.h)
#   gadget.sh down       unbind, stop lp_gadget, remove the gadget
#   gadget.sh unbind     detach from the bus (cable pulled)
#   gadget.sh rebind     attach again (cable plugged back)
#   gadget.sh status
#
# lp_gadget starts first, on the usbmux FunctionFS instance: its ready file
# says what the model is (VID/PID, bcdDevice, strings, serial = UDID, number of
# configurations, attached, speed), and configfs is built to match:
#   model                    configfs (doc/protocol.md section 0: a real iPhone)
#   iPhone, 4 configurations c.1 "PTP": ffs.ptp (06/01/01: bulk IN, OUT, intr IN)
#                            c.2 "iPod USB Interface": ffs.audio (audio control
#                                01/01/00 + audio streaming 01/02/00) + hid.ipod
#                                (usb_f_hid: 03/00/00, interrupt IN)
#                            c.3 "PTP + Apple Mobile Device": ffs.ptp + ffs.usbmux
#                            c.4 "PTP + Apple Mobile Device + Apple USB Ethernet":
#                                ffs.ptp + ffs.usbmux + ffs.eth (ff/fd/01)
#   One FunctionFS instance is linked into several configurations (FunctionFS
#   binds once and serves whichever is selected): the same PTP function in
#   c.1/c.3/c.4, the same usbmux function in c.3/c.4, as on the phone. The
#   model is told SET_CONFIGURATION(4) when FunctionFS enables usbmux (it
#   cannot tell 3 from 4: FunctionFS only says "enabled").
#   What differs from a real iPhone (what configfs/dummy_hcd allow):
#   endpoint addresses (dummy_hcd's fixed endpoints, assigned per
#   configuration: read them from the descriptors); the Ethernet interface has
#   its bulk endpoints in alternate setting 0 (a real one in alt 1); the
#   audio streaming interface has no alternate setting 1 with its
#   isochronous IN endpoint (dummy_hcd offers no isochronous endpoints: Linux's
#   own UAC1 function fails to bind on it, -ENODEV), and the audio interfaces
#   carry no class-specific descriptors; the HID report descriptor is a
#   generic vendor one;
#   configuration strings and bMaxPower (500 mA) are ours; every interface
#   besides usbmux is inert (requests stalled, no data).
#   1 configuration          camera-only: c.1 PTP only, no usbmux
#   PID 1227 / 128x          DFU / recovery: c.1 with one inert interface
# and the profile is put on the bus physically:
#   speed=full               dummy_hcd reloaded with is_high_speed=0
#   attached=0 (charge-only) the gadget is built but never bound
#   the model drops off      lp_gadget unbinds/rebinds the UDC itself
#   (re-enumeration after pairing, the flaky profile's scheduled drop)
# A transfer error rate (flaky) has no physical equivalent on dummy_hcd.
#
# Environment: LP_GADGET_BIN (lp_gadget binary), LP_GADGET_LOGDIR (logs),
# LP_GADGET_UDC (controller; default the first in /sys/class/udc),
# LP_GADGET_STATE (simdev key + pairings file, kept across `up`s),
# LP_GADGET_VERBOSE (non-empty: lp_gadget -v), LP_GADGET_INSPLIT (N: usbmux IN
# packets in transfers of N bytes, lp_gadget --insplit), LP_GADGET_PROHIBIT
# (KEY+KEY: GetValue answers GetProhibited for them, lp_gadget --prohibit).
set -eu

CFS=/sys/kernel/config/usb_gadget
G=$CFS/linkprobe
RUN=/run/lp-gadget
FFSROOT=/dev/lp-ffs
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${LP_GADGET_BIN:-${LAB_BIN:-$HERE/../../build/lab/bin}/lp_gadget}
LOGDIR=${LP_GADGET_LOGDIR:-${LAB_OUT:-$RUN}}
DEFAULT_UDID=a1b2c3d4e5f60718293a4b5c6d7e8f9012345678

say() { echo "gadget: $*" >&2; }
die() { say "$*"; exit 1; }

udc() {
	if [ -n "${LP_GADGET_UDC:-}" ]; then echo "$LP_GADGET_UDC"; return; fi
	ls /sys/class/udc 2>/dev/null | head -1
}

# value of KEY in lp_gadget's ready file
ready_get() { sed -n "s/^$2=//p" "$1" | head -1; }

# Load dummy_hcd at the wanted speed; reloading it is a new "port" for the host.
load_hcd() {
	want=$1
	cur=
	[ -e /sys/module/dummy_hcd/parameters/is_high_speed ] &&
		cur=$(cat /sys/module/dummy_hcd/parameters/is_high_speed)
	if [ -n "$cur" ] && { [ "$want" = Y ] && [ "$cur" = Y ] || [ "$want" = N ] && [ "$cur" = N ]; }; then
		return 0
	fi
	[ -n "$cur" ] && { rmmod dummy_hcd || die "cannot unload dummy_hcd (gadget still bound?)"; }
	modprobe dummy_hcd is_high_speed="$want" || die "modprobe dummy_hcd failed"
	for _ in $(seq 50); do [ -n "$(udc)" ] && return 0; sleep 0.1; done
	die "no UDC appeared after loading dummy_hcd"
}

# start_ffs NAME IFACE: mount FunctionFS instance NAME, start lp_gadget on it
start_ffs() {
	name=$1 iface=$2
	mkdir -p "$FFSROOT/$name"
	mount -t functionfs "$name" "$FFSROOT/$name" || die "mount functionfs $name failed"
	rm -f "$RUN/$name.ready"
	set -- --ffs "$FFSROOT/$name" --iface "$iface" --ready "$RUN/$name.ready"
	if [ "$iface" = usbmux ]; then
		set -- "$@" --profile "$PROFILE"
		[ -n "$MODEL" ] && set -- "$@" --model "$MODEL"
		[ -n "$UDID" ] && set -- "$@" --udid "$UDID"
		[ -n "$HOSTILE" ] && set -- "$@" --hostile "$HOSTILE"
		set -- "$@" --udc-attr "$G/UDC"
		[ -n "${LP_GADGET_STATE:-}" ] && set -- "$@" --state "$LP_GADGET_STATE"
		[ -n "${LP_GADGET_INSPLIT:-}" ] && set -- "$@" --insplit "$LP_GADGET_INSPLIT"
		[ -n "${LP_GADGET_PROHIBIT:-}" ] && set -- "$@" --prohibit "$LP_GADGET_PROHIBIT"
		[ -n "${LP_GADGET_VERBOSE:-}" ] && set -- "$@" -v
	fi
	"$BIN" "$@" >>"$LOGDIR/lp_gadget-$name.log" 2>&1 &
	echo $! >"$RUN/$name.pid"
	for _ in $(seq 100); do
		[ -s "$RUN/$name.ready" ] && return 0
		kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null || break
		sleep 0.1
	done
	tail -5 "$LOGDIR/lp_gadget-$name.log" >&2 || true
	die "lp_gadget on $name did not become ready (log: $LOGDIR/lp_gadget-$name.log)"
}

# config N LABEL FUNCTION...
config() {
	n=$1 label=$2
	shift 2
	mkdir -p "$G/configs/c.$n/strings/0x409"
	echo "$label" >"$G/configs/c.$n/strings/0x409/configuration"
	echo 500 >"$G/configs/c.$n/MaxPower"
	for f in "$@"; do ln -s "$G/functions/$f" "$G/configs/c.$n/"; done
}

# Configuration 2's HID function: an iPod-style HID interface (one
# vendor-page input report), after the audio interfaces (ffs.audio).
hid_function() {
	modprobe usb_f_hid || die "usb_f_hid missing: no configuration 2"
	mkdir "$G/functions/hid.ipod" || die "cannot create the HID function"
	echo 0 >"$G/functions/hid.ipod/protocol"
	echo 0 >"$G/functions/hid.ipod/subclass"
	echo 8 >"$G/functions/hid.ipod/report_length"
	# interrupt IN only, as the phone's (kernels without this attribute add
	# an interrupt OUT endpoint)
	[ -e "$G/functions/hid.ipod/no_out_endpoint" ] && echo 1 >"$G/functions/hid.ipod/no_out_endpoint"
	# Usage Page 0xFF00, Usage 1, Collection(App), 8 x 8-bit Input, End
	printf '\006\000\377\011\001\241\001\025\000\046\377\000\165\010\225\010\011\001\201\002\300' \
		>"$G/functions/hid.ipod/report_desc"
}

cmd_up() {
	PROFILE=healthy UDID= MODEL= NOBIND= HOSTILE=
	while [ $# -gt 0 ]; do
		case $1 in
		--profile) PROFILE=$2; shift ;;
		--hostile) HOSTILE=$2; shift ;;
		--udid) UDID=$2; shift ;;
		--model) MODEL=$2; shift ;;
		--no-bind) NOBIND=1 ;;
		*) die "unknown option $1" ;;
		esac
		shift
	done
	[ -x "$BIN" ] || die "lp_gadget not found at $BIN (set LP_GADGET_BIN)"
	[ -e "$G" ] && die "gadget already up (gadget.sh down first)"

	mkdir -p "$RUN" "$LOGDIR"
	echo "$PROFILE" >"$RUN/profile"
	modprobe libcomposite && modprobe usb_f_fs || die "gadget modules missing"
	mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
	mkdir "$G" "$G/strings/0x409"

	# 1. the model first: it says what the device is
	mkdir "$G/functions/ffs.usbmux"
	start_ffs usbmux usbmux
	r=$RUN/usbmux.ready
	vid=$(ready_get "$r" vid) pid=$(ready_get "$r" pid) bcd=$(ready_get "$r" bcd)
	serial=$(ready_get "$r" serial) product=$(ready_get "$r" product)
	manuf=$(ready_get "$r" manufacturer) configs=$(ready_get "$r" configs)
	[ "$bcd" = 0000 ] && bcd=0804
	: "${serial:=${UDID:-$DEFAULT_UDID}}" "${product:=iPhone}" "${manuf:=Apple Inc.}"
	bind=1
	[ "$(ready_get "$r" attached)" = 0 ] && bind=
	[ -n "$NOBIND" ] && bind=
	case $pid in
	1227) mode=dfu ;;
	128[0-3]) mode=recovery ;;
	*) mode=normal ;;
	esac
	[ $mode = normal ] && [ "${configs:-4}" -le 1 ] && mode=camera
	case $PROFILE in camera-only) mode=camera ;; esac

	# 2. the bus at the model's speed
	speed=Y
	[ "$(ready_get "$r" speed)" = full ] && speed=N
	case $PROFILE in full-speed) speed=N ;; esac
	load_hcd $speed

	# 3. identity and configurations
	echo 0x0200 >"$G/bcdUSB"
	echo 64 >"$G/bMaxPacketSize0"
	echo "0x$vid" >"$G/idVendor"
	echo "0x$pid" >"$G/idProduct"
	echo "0x$bcd" >"$G/bcdDevice"
	echo "$manuf" >"$G/strings/0x409/manufacturer"
	echo "$product" >"$G/strings/0x409/product"
	echo "$serial" >"$G/strings/0x409/serialnumber"
	echo "$serial" >"$RUN/udid"
	case $mode in
	normal)
		mkdir "$G/functions/ffs.ptp" "$G/functions/ffs.eth" "$G/functions/ffs.audio"
		start_ffs ptp ptp
		start_ffs eth ethernet
		start_ffs audio audio
		hid_function
		config 1 "PTP" ffs.ptp
		config 2 "iPod USB Interface" ffs.audio hid.ipod
		config 3 "PTP + Apple Mobile Device" ffs.ptp ffs.usbmux
		config 4 "PTP + Apple Mobile Device + Apple USB Ethernet" ffs.ptp ffs.usbmux ffs.eth
		;;
	camera)
		mkdir "$G/functions/ffs.ptp"
		start_ffs ptp ptp
		config 1 "PTP" ffs.ptp
		;;
	dfu | recovery)
		mkdir "$G/functions/ffs.$mode"
		start_ffs "$mode" "$mode"
		config 1 "$product" "ffs.$mode"
		;;
	esac

	if [ -n "$bind" ]; then
		cmd_rebind 2>"$RUN/bind.err" ||
			die "binding to the UDC failed: $(cat "$RUN/bind.err"); kernel: $(dmesg 2>/dev/null | tail -8 | tr '\n' '|')"
	else
		say "profile $PROFILE: gadget built, not bound (no device on the bus)"
	fi
	say "up: $vid:$pid $mode serial $serial profile $PROFILE speed $([ $speed = Y ] && echo high || echo full)${bind:+ bound}"
}

cmd_unbind() {
	[ -e "$G/UDC" ] || die "no gadget"
	[ -z "$(cat "$G/UDC")" ] || echo "" >"$G/UDC"
}

cmd_rebind() {
	[ -e "$G/UDC" ] || die "no gadget"
	u=$(udc)
	[ -n "$u" ] || die "no USB device controller"
	[ -z "$(cat "$G/UDC")" ] || echo "" >"$G/UDC"
	echo "$u" >"$G/UDC"
}

cmd_down() {
	[ -e "$G/UDC" ] && [ -n "$(cat "$G/UDC")" ] && echo "" >"$G/UDC"
	for p in "$RUN"/*.pid; do
		[ -e "$p" ] || continue
		pid=$(cat "$p")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$p"
	done
	if [ -e "$G" ]; then
		for c in "$G"/configs/*; do
			[ -e "$c" ] || continue
			find "$c" -maxdepth 1 -type l -exec rm {} \;
			rmdir "$c/strings/0x409" 2>/dev/null || true
			rmdir "$c"
		done
		for m in "$FFSROOT"/*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
		for f in "$G"/functions/*; do [ -e "$f" ] && rmdir "$f"; done
		rmdir "$G/strings/0x409"
		rmdir "$G"
	fi
	for m in "$FFSROOT"/*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
	rm -rf "$RUN"
}

cmd_status() {
	[ -e "$G" ] || { echo "down"; return 0; }
	echo "profile $(cat "$RUN/profile" 2>/dev/null) udc '$(cat "$G/UDC")' $(cat "$G/idVendor"):$(cat "$G/idProduct")"
}

[ $# -ge 1 ] || die "usage: gadget.sh up|down|unbind|rebind|status"
cmd=$1
shift
case $cmd in
up) cmd_up "$@" ;;
down) cmd_down ;;
unbind) cmd_unbind ;;
rebind) cmd_rebind ;;
status) cmd_status ;;
*) die "unknown command $cmd" ;;
esac
