#!/bin/sh
# 97-two-phones.sh - two phones at once on real USB. dummy_hcd is loaded with
# two controllers (num=2: two host controllers, two buses) and the simulated
# iPhone is presented on each (gadget.sh: a second gadget by LP_GADGET_NAME,
# on the second controller by LP_GADGET_UDC, with its own UDID): on the first
# bus one in camera-only mode (the same PID as a working phone, no usbmux),
# on the second a healthy one. linkprobe must tell them apart over libusb:
# `list` shows both; without --udid it takes the one that offers usbmux and
# says it is one of two; `--cable-test --all` tests both concurrently with a
# verdict each; `trust` pairs the healthy one and no other. The in-process
# tests do this with up to 64 simulated phones (35-fleet.t); this is the
# same through the kernel.
. "$LAB_REPO/tests/lab/lib.sh"
plan 11
LP=$LAB_REPO/linkprobe
U2=b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2
PAIRDIR=$LAB_STATE/lp-pair-97
mkdir -p "$PAIRDIR"
trap lab_cleanup EXIT
trap 'exit 1' INT TERM
export LP_DUMMY_NUM=2

# Apple devices the host enumerated
ndev() {
	_n=0
	for _dd in /sys/bus/usb/devices/*; do
		_v=
		{ read -r _v <"$_dd/idVendor"; } 2>/dev/null
		[ "$_v" = 05ac ] && _n=$((_n + 1))
	done
	echo $_n
}
both() { [ "$(ndev)" = 2 ]; }

check "camera-only phone up on the first of two controllers" gadget up --profile camera-only || exit 0
U1=$(udid)
# the second one remembers what the first does (its key: no second RSA keygen
# under TCG) under its own UDID
[ -e "$LP_GADGET_STATE" ] && cp "$LP_GADGET_STATE" "$LAB_STATE/simdev2.state"
check "healthy phone up on the second controller" env LP_GADGET_NAME=phone2 LP_GADGET_UDC=dummy_udc.1 \
	LP_GADGET_STATE="$LAB_STATE/simdev2.state" "$GADGET" up --profile healthy --udid "$U2" || exit 0
check "the host enumerated both" retry 20 0.2 both || exit 0

lp list list
check "list shows two phones, both UDIDs ($U1, $U2)" sh -c "
	test \"\$(jq -r '.devices | length' '$LAB_OUT/linkprobe-list.json')\" = 2 &&
	jq -r '.devices[].udid' '$LAB_OUT/linkprobe-list.json' | grep -qx '$U1' &&
	jq -r '.devices[].udid' '$LAB_OUT/linkprobe-list.json' | grep -qx '$U2'"
check "... each on its own bus (two controllers)" test "$(jfield list '[.devices[].bus] | unique | length')" = 2

# no --udid: the phone that offers usbmux, not the first on the bus, and the
# run says it is one of two
lp cable1 --cable-test --duration 1
diag "no --udid: $(jfield cable1 .device.udid): $(jfield cable1 '.stages[0].detail')"
check "no --udid: the cable test takes the phone with usbmux ($U2)" test "$(jfield cable1 .device.udid)" = "$U2"
check "... and its find stage says it is one of 2 phones" \
	sh -c "jq -r '.stages[0].detail' '$LAB_OUT/linkprobe-cable1.json' | grep -q 'one of 2 phones on USB (the first that offers usbmux)'"

lp cable --cable-test --all --duration 3
v=$(jfield cable '[.devices[] | .device.udid + "=" + .verdict] | sort | join(" ")')
diag "cable test --all: $v; $(jfield cable .evidence)"
check "--cable-test --all tested each phone once (two UDIDs)" \
	test "$(jfield cable '[.devices[].device.udid] | unique | length')" = 2
check "... with its own verdict: CAMERA_ONLY and GOOD ($v)" \
	test "$v" = "$(printf '%s\n' "$U1=CAMERA_ONLY" "$U2=GOOD" | sort | tr '\n' ' ' | sed 's/ $//')"

lp trust2 trust --pair --pair-dir "$PAIRDIR" --timeout 120
diag "trust: $(jfield trust2 .verdict): $(jfield trust2 .evidence)"
check "trust (no --udid) pairs the healthy phone: TRUSTED" test "$(jfield trust2 .verdict)" = TRUSTED
check "... that one, not the camera-only one (a record for $U2 only)" \
	sh -c "test '$(jfield trust2 .device.udid)' = '$U2' && test -s '$PAIRDIR/$U2.plist' && ! test -e '$PAIRDIR/$U1.plist'"
