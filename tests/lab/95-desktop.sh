#!/bin/sh
# 95-desktop.sh - issue 9 section 2: linkprobe on a desktop as users have it.
# usbmuxd is started the way Debian starts it: its udev rule
# (/lib/udev/rules.d/39-usbmuxd.rules: configuration 0, OWNER usbmux,
# SYSTEMD_WANTS usbmuxd.service) and the unit's command (usbmuxd --user usbmux
# --systemd); there is no systemd in the guest, so the scenario starts what
# the unit would once udev has handled the device. linkprobe's own rule
# (tools/udev/39-linkprobe.rules: group plugdev, 0660) is installed, and
# linkprobe runs as an unprivileged user in plugdev.
#   daemon running: list FOUND (descriptors read on the node); trust TRUSTED
#     through the daemon by itself (the "usbmuxd connect" stage says
#     'usbmuxd (pid N) holds the device: pairing through it', the record comes
#     from the daemon: ReadPairRecord); --cable-test GOOD, control round trips
#     on the node and the usbmux/lockdown round trips through the daemon;
#   daemon stopped: list FOUND; trust does not blame the phone for a record
#     directory the user may not read, and with a record directory of the
#     user's own, trust --pair is TRUSTED directly; --cable-test GOOD directly.
# needs: 20-interop   (its idevicepair record in /var/lib/lockdown)
. "$LAB_REPO/tests/lab/lib.sh"
plan 23
trap 'stop_usbmuxd; lab_cleanup' EXIT
LP=$LAB_REPO/linkprobe
USER_NAME=lpdesk

install -m 0644 "$LAB_REPO/tools/udev/39-linkprobe.rules" /etc/udev/rules.d/
check "systemd-udevd running, usbmuxd's and linkprobe's udev rules installed" \
	sh -c 'test -e /lib/udev/rules.d/39-usbmuxd.rules && test -e /etc/udev/rules.d/39-linkprobe.rules'
start_udevd
udevadm control --reload
id "$USER_NAME" >/dev/null 2>&1 || useradd -M -d /nonexistent -s /bin/sh -G plugdev "$USER_NAME"
UHOME=$LAB_STATE/home-$USER_NAME
mkdir -p "$UHOME" && chown "$USER_NAME" "$UHOME"
check "an unprivileged user in plugdev ($USER_NAME)" sh -c "id -nG $USER_NAME | grep -qw plugdev && test \"\$(id -u $USER_NAME)\" != 0"
check "gadget up (healthy)" gadget up --profile healthy || exit 0
enumerated() { wait_dev 10 && udevadm settle -t 30; }
check "enumerated, udev done" enumerated
d=$(devdir)
NODE=/dev/bus/usb/$(printf %03d "$(cat "$d/busnum")")/$(printf %03d "$(cat "$d/devnum")")
diag "device node $NODE: $(stat -c '%U:%G %a' "$NODE")"
# linkprobe's rule gives group plugdev read-write (MODE 0660: the lab's node
# shows crw-rw----, whatever the later default rules set for other users);
# usbmuxd's rule makes usbmux the owner
check "the device node is owner usbmux (usbmuxd's rule), group plugdev read-write (linkprobe's)" \
	sh -c "stat -c '%U %G %A' $NODE | grep -qx 'usbmux plugdev crw-rw-.*'"
# what systemd would start for SYSTEMD_WANTS=usbmuxd.service
usbmuxd --user usbmux --systemd -v >>"$LOG" 2>&1 &
echo $! >"$LAB_STATE/usbmuxd.pid"
MUXPID=$(cat "$LAB_STATE/usbmuxd.pid")
check "usbmuxd started as the unit starts it (--user usbmux --systemd)" retry 20 0.1 test -S /var/run/usbmuxd
U=$(udid)
check "usbmuxd lists the device (it holds the interface)" retry 120 1 listed || explain

# run NAME ARGS...: linkprobe as the user, its JSON kept; prints the verdict
run() {
	_n=$1
	shift
	su -s /bin/sh "$USER_NAME" -c "HOME=$UHOME XDG_STATE_HOME=$UHOME/.local/state timeout 200 $LP $* --json" \
		>"$LAB_OUT/linkprobe-desk-$_n.json" 2>"$LAB_OUT/linkprobe-desk-$_n.err"
	echo "linkprobe $* (as $USER_NAME) -> rc $?" >&2
	jq -r .verdict "$LAB_OUT/linkprobe-desk-$_n.json" 2>/dev/null
}
dj() { jq -r "$2" "$LAB_OUT/linkprobe-desk-$1.json" 2>/dev/null; }
stage() { dj "$1" ".stages[] | select(.name == \"$2\") | \"\\(.status) \\(.detail)\""; }

# --- the daemon running and holding the device ---------------------------------
v=$(run list list)
check "daemon running: list FOUND ($v)" test "$v" = FOUND
v=$(run trust trust --timeout 60)
diag "trust through the daemon: $v: $(dj trust .evidence)"
check "daemon running: trust TRUSTED through the daemon by itself ($v)" test "$v" = TRUSTED
s=$(stage trust "usbmuxd connect")
diag "usbmuxd connect: $s"
check "the stage says usbmuxd (pid $MUXPID) holds the device and pairing goes through it" \
	sh -c "echo '$s' | grep -q '^ok usbmuxd (pid $MUXPID) holds the device: pairing through it'"
check "the pair record came from the daemon (ReadPairRecord)" \
	sh -c "echo '$(stage trust "pair record")' | grep -q '^ok usbmuxd at /var/run/usbmuxd, PairRecordID'"
check "lockdown went through the daemon's Connect" \
	sh -c "echo '$(stage trust "lockdown connect")' | grep -q 'usbmuxd connection to port 62078'"
v=$(run cable cable-test --duration 3)
diag "cable test through the daemon: $v: $(dj cable '.stages[-1].detail')"
check "daemon running: cable-test GOOD ($v)" test "$v" = GOOD
check "the cable test says what went through the daemon" \
	test "$(dj cable '.metrics.via | "\(.control_rtt),\(.mux_rtt),\(.lockdown_rtt)"')" = "device node,usbmuxd,usbmuxd"
check "control, usbmux and lockdown round trips all measured" \
	test "$(dj cable '[.metrics.control_rtt.count, .metrics.mux_rtt.count, .metrics.lockdown_rtt.count] | map(select(. > 0)) | length')" = 3
check "usbmuxd still lists the device afterwards" listed

# --- the daemon stopped -----------------------------------------------------------
stop_usbmuxd
check "usbmuxd stopped" sh -c "! kill -0 $MUXPID 2>/dev/null"
v=$(run list2 list)
check "daemon stopped: list FOUND ($v)" test "$v" = FOUND
v=$(run trust2 trust --timeout 60)
diag "trust direct, default record directory ($(stat -c '%U:%G %a' /var/lib/lockdown)): $v: $(dj trust2 .evidence)"
check "daemon stopped: trust with the default records is TRUSTED or a host verdict, never the phone's or the cable's ($v)" \
	sh -c "case '$v' in TRUSTED|ACCESS_DENIED|PAIR_RECORD_ACCESS) exit 0 ;; *) exit 1 ;; esac"
v=$(run trust3 trust --pair --pair-dir "$UHOME/lockdown" --timeout 60)
diag "trust --pair direct, the user's own record directory: $v: $(dj trust3 .evidence)"
check "daemon stopped: trust --pair with the user's own records TRUSTED directly ($v)" test "$v" = TRUSTED
check "... over the direct path (usbmux stage ok, no usbmuxd connect)" \
	test "$(dj trust3 '[.stages[] | select(.name == "usbmux" or .name == "usbmuxd connect") | "\(.name):\(.status)"] | join(",")')" = "usbmux:ok"
v=$(run cable2 cable-test --duration 3)
check "daemon stopped: cable-test GOOD directly ($v)" test "$v" = GOOD
check "no linkprobe of the user was left behind" sh -c "! pgrep -u $USER_NAME linkprobe"
