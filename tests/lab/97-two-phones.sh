#!/bin/sh
# 97-two-phones.sh - two phones at once on real USB. dummy_hcd is loaded with
# two controllers (num=2: two host controllers, two buses) and the simulated
# iPhone is presented on each (gadget.sh: a second gadget by LP_GADGET_NAME,
# on the second controller by LP_GADGET_UDC, with its own UDID). linkprobe
# must tell them apart over libusb: `list` shows both, `--cable-test --all`
# tests both concurrently with a verdict each, and `trust --udid` pairs the
# second one and leaves the first alone. The in-process tests do this with up
# to 64 simulated phones (35-fleet.t); this is the same through the kernel.
. "$LAB_REPO/tests/lab/lib.sh"
plan 10
LP=$LAB_REPO/linkprobe
U2=b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2
PAIRDIR=$LAB_STATE/lp-pair-97
mkdir -p "$PAIRDIR"
two_down() {
	LP_GADGET_NAME=phone2 gadget down 2>/dev/null
	lab_cleanup
}
trap two_down EXIT
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

check "first phone up on the first of two controllers" gadget up --profile healthy || exit 0
U1=$(udid)
# the second one remembers what the first does (its key: no second RSA keygen
# under TCG) under its own UDID
[ -e "$LP_GADGET_STATE" ] && cp "$LP_GADGET_STATE" "$LAB_STATE/simdev2.state"
check "second phone up on the second controller" env LP_GADGET_NAME=phone2 LP_GADGET_UDC=dummy_udc.1 \
	LP_GADGET_STATE="$LAB_STATE/simdev2.state" "$GADGET" up --profile healthy --udid "$U2" || exit 0
check "the host enumerated both" retry 20 0.2 both || exit 0

lp list list
check "list shows two phones, both UDIDs ($U1, $U2)" sh -c "
	test \"\$(jq -r '.devices | length' '$LAB_OUT/linkprobe-list.json')\" = 2 &&
	jq -r '.devices[].udid' '$LAB_OUT/linkprobe-list.json' | grep -qx '$U1' &&
	jq -r '.devices[].udid' '$LAB_OUT/linkprobe-list.json' | grep -qx '$U2'"
buses=$(jq -r '[.devices[].bus] | unique | length' "$LAB_OUT/linkprobe-list.json" 2>/dev/null)
check "... each on its own bus (two controllers)" test "$buses" = 2

# no --udid: one of them, and the run says so
lp cable1 --cable-test --duration 1
check "no --udid: the find stage says it took one of 2" \
	sh -c "jq -r '.stages[0].detail' '$LAB_OUT/linkprobe-cable1.json' | grep -q 'one of 2 Apple devices on USB'"

lp cable --cable-test --all --duration 3
v=$(jfield cable '[.devices[].verdict] | join(" ")')
diag "cable test --all: $v; $(jfield cable .evidence)"
check "--cable-test --all tested both, each GOOD ($v)" test "$v" = "GOOD GOOD"
check "... one verdict for the two: GOOD" test "$(jfield cable .verdict)" = GOOD

lp trust2 trust --udid "$U2" --pair --pair-dir "$PAIRDIR" --timeout 120
diag "trust --udid $U2: $(jfield trust2 .verdict): $(jfield trust2 .evidence)"
check "trust --udid pairs the second phone: TRUSTED" test "$(jfield trust2 .verdict)" = TRUSTED
check "... that one, not the first (a record for $U2 only)" \
	sh -c "test '$(jfield trust2 .device.udid)' = '$U2' && test -s '$PAIRDIR/$U2.plist' && ! test -e '$PAIRDIR/$U1.plist'"
