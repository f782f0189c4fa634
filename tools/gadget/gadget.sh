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
# A second phone at once: LP_GADGET_NAME (another gadget: its own configfs
# directory, run directory, FunctionFS instances and mounts; default
# linkprobe) with LP_GADGET_UDC naming a second controller, which
# LP_DUMMY_NUM=N (dummy_hcd num=N: N controllers, each its own bus) provides.
set -eu

CFS=/sys/kernel/config/usb_gadget
NAME=${LP_GADGET_NAME:-linkprobe}
G=$CFS/$NAME
RUN=/run/lp-gadget
FFSROOT=/dev/lp-ffs
PFX= # FunctionFS instance names are global: another gadget's are prefixed
if [ "$NAME" != linkprobe ]; then
	RUN=/run/lp-gadget-$NAME FFSROOT=/dev/lp-ffs-$NAME PFX=${NAME}_
fi
# (builtins where a command would fork: a fork costs ~30 ms in the lab's TCG
# guest, and the lab builds and tears down a gadget about 30 times)
case $0 in */*) HERE=${0%/*} ;; *) HERE=. ;; esac
BIN=${LP_GADGET_BIN:-${LAB_BIN:-$HERE/../../build/lab/bin}/lp_gadget}
LOGDIR=${LP_GADGET_LOGDIR:-${LAB_OUT:-$RUN}}
DEFAULT_UDID=a1b2c3d4e5f60718293a4b5c6d7e8f9012345678

say() { echo "gadget: $*" >&2; }
die() { say "$*"; exit 1; }

udc() {
	if [ -n "${LP_GADGET_UDC:-}" ]; then echo "$LP_GADGET_UDC"; return; fi
	for _u in /sys/class/udc/*; do [ -e "$_u" ] && { echo "${_u##*/}"; return 0; }; done
	return 0
}

# value of KEY in lp_gadget's ready file (its first KEY= line)
ready_get() {
	while IFS= read -r _l; do case $_l in "$2="*) echo "${_l#*=}"; return ;; esac; done <"$1"
}

# the FunctionFS mounts under $FFSROOT (one per line)
ffs_mounts() {
	while read -r _dev _mnt _rest; do case $_mnt in "$FFSROOT"/*) echo "$_mnt" ;; esac; done </proc/mounts
}

# Load dummy_hcd at the wanted speed with at least LP_DUMMY_NUM controllers
# (reloaded only when that changes: a reload is a new "port" for the host,
# and costs a root hub under TCG).
load_hcd() {
	want=$1 num=${LP_DUMMY_NUM:-1}
	cur= curnum=1
	[ -e /sys/module/dummy_hcd/parameters/is_high_speed ] &&
		read -r cur </sys/module/dummy_hcd/parameters/is_high_speed
	[ -e /sys/module/dummy_hcd/parameters/num ] && read -r curnum </sys/module/dummy_hcd/parameters/num
	[ -n "$cur" ] && [ "$cur" = "$want" ] && [ "$curnum" -ge "$num" ] && return 0
	[ -n "$cur" ] && { rmmod dummy_hcd || die "cannot unload dummy_hcd (gadget still bound?)"; }
	modprobe dummy_hcd is_high_speed="$want" num="$num" || die "modprobe dummy_hcd failed"
	_i=0
	while [ $_i -lt 50 ]; do [ -n "$(udc)" ] && return 0; sleep 0.1; _i=$((_i + 1)); done
	die "no UDC appeared after loading dummy_hcd"
}

# start_ffs NAME IFACE: mount FunctionFS instance NAME (ffs.NAME, prefixed for
# another gadget), start lp_gadget on it
start_ffs() {
	name=$PFX$1 iface=$2
	[ -d "$FFSROOT/$name" ] || mkdir -p "$FFSROOT/$name"
	mount -t functionfs "$name" "$FFSROOT/$name" || die "mount functionfs $name failed"
	[ ! -e "$RUN/$name.ready" ] || rm -f "$RUN/$name.ready"
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
	_pid=$!
	echo $_pid >"$RUN/$name.pid"
	_i=0
	while [ $_i -lt 200 ]; do
		[ -s "$RUN/$name.ready" ] && return 0
		kill -0 "$_pid" 2>/dev/null || break
		sleep 0.05
		_i=$((_i + 1))
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
	_fl=
	for f in "$@"; do _fl="$_fl $G/functions/${f%%.*}.$PFX${f#*.}"; done
	ln -s $_fl "$G/configs/c.$n/"
}

# Configuration 2's HID function: an iPod-style HID interface (one
# vendor-page input report), after the audio interfaces (ffs.audio).
hid_function() {
	[ -d /sys/module/usb_f_hid ] || modprobe usb_f_hid || die "usb_f_hid missing: no configuration 2"
	h=$G/functions/hid.${PFX}ipod
	mkdir "$h" || die "cannot create the HID function"
	echo 0 >"$h/protocol"
	echo 0 >"$h/subclass"
	echo 8 >"$h/report_length"
	# interrupt IN only, as the phone's (kernels without this attribute add
	# an interrupt OUT endpoint)
	[ -e "$h/no_out_endpoint" ] && echo 1 >"$h/no_out_endpoint"
	# Usage Page 0xFF00, Usage 1, Collection(App), 8 x 8-bit Input, End
	printf '\006\000\377\011\001\241\001\025\000\046\377\000\165\010\225\010\011\001\201\002\300' \
		>"$h/report_desc"
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
	[ -d /sys/module/libcomposite ] && [ -d /sys/module/usb_f_fs ] ||
		{ modprobe libcomposite && modprobe usb_f_fs; } || die "gadget modules missing"
	[ -d "$CFS" ] || mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
	mkdir "$G" "$G/strings/0x409"

	# 1. the model first: it says what the device is
	mkdir "$G/functions/ffs.${PFX}usbmux"
	start_ffs usbmux usbmux
	r=$RUN/${PFX}usbmux.ready
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
		mkdir "$G/functions/ffs.${PFX}ptp" "$G/functions/ffs.${PFX}eth" "$G/functions/ffs.${PFX}audio"
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
		mkdir "$G/functions/ffs.${PFX}ptp"
		start_ffs ptp ptp
		config 1 "PTP" ffs.ptp
		;;
	dfu | recovery)
		mkdir "$G/functions/ffs.${PFX}$mode"
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
	read -r _b <"$G/UDC" || _b=
	[ -z "$_b" ] || echo "" >"$G/UDC"
}

cmd_rebind() {
	[ -e "$G/UDC" ] || die "no gadget"
	u=$(udc)
	[ -n "$u" ] || die "no USB device controller"
	read -r _b <"$G/UDC" || _b=
	[ -z "$_b" ] || echo "" >"$G/UDC"
	echo "$u" >"$G/UDC"
}

cmd_down() {
	_b=
	[ -e "$G/UDC" ] && read -r _b <"$G/UDC"
	[ -z "$_b" ] || echo "" >"$G/UDC"
	# every lp_gadget told to stop first, then waited for (3 s each at most)
	pids=
	for p in "$RUN"/*.pid; do
		[ -e "$p" ] || continue
		pid=
		read -r pid <"$p" || true
		[ -n "$pid" ] || continue
		kill "$pid" 2>/dev/null || true
		pids="$pids $pid"
	done
	for pid in $pids; do
		_i=0
		while [ $_i -lt 60 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; _i=$((_i + 1)); done
		kill -9 "$pid" 2>/dev/null || true
	done
	# gone: no later `down` may signal these numbers again, even if the
	# teardown below stops part-way
	[ -z "$pids" ] || rm -f "$RUN"/*.pid
	if [ -e "$G" ]; then
		# the configurations' links to the functions, then the configurations
		_links= _dirs=
		for c in "$G"/configs/*; do
			[ -e "$c" ] || continue
			for l in "$c"/*; do [ -L "$l" ] && _links="$_links $l"; done
			[ -d "$c/strings/0x409" ] && _dirs="$_dirs $c/strings/0x409"
			_dirs="$_dirs $c"
		done
		[ -z "$_links" ] || rm $_links
		[ -z "$_dirs" ] || rmdir $_dirs
		_m=$(ffs_mounts)
		[ -z "$_m" ] || umount $_m
		_dirs=
		for f in "$G"/functions/*; do [ -e "$f" ] && _dirs="$_dirs $f"; done
		rmdir $_dirs "$G/strings/0x409" "$G"
	fi
	_m=$(ffs_mounts)
	[ -z "$_m" ] || umount $_m
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
