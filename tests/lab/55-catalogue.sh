#!/bin/sh
# 55-catalogue.sh - issue 9 section 4 on the lab's real kernel (dummy_hcd):
#  1. a device that ends its IN transfers in the middle of usbmux packets
#     (the gadget writes every packet in pieces of N bytes: --insplit N):
#     linkprobe puts them together by the header's length - trust --pair is
#     TRUSTED and the cable test GOOD, at odd sizes and at a multiple of the
#     packet size (then each piece ends with a ZLP);
#  2. a slow host: --timeout counts from the first Pair, not from before key
#     generation; keys the phone refuses (GetProhibited) are named;
#  3. the phone unplugged (the UDC unbound) at many points while the Trust
#     dialog is up: the kernel ends the transfers in flight with an error
#     status before it removes the device; linkprobe must say DISCONNECTED
#     every time, never USB_ERROR ("try another cable");
#  4. a phone that re-enumerates after Trust (profile reenum-after-trust: the
#     gadget unbinds its UDC 300 ms after the tap and binds it again 1 s
#     later, so the kernel enumerates it at a new address): trust --pair
#     follows it and is TRUSTED, a stage naming the re-enumeration, JSON
#     counting it, the record saved once. libusb hears of a device that
#     arrives only through systemd-udevd's events (50-unplug.sh), so udevd
#     runs for this case - the last, so the others run as before without it.
. "$LAB_REPO/tests/lab/lib.sh"
plan 15
trap lab_cleanup EXIT
LP=$LAB_REPO/linkprobe
PAIRDIR=$LAB_STATE/lp-pair-55
UDCATTR=/sys/kernel/config/usb_gadget/linkprobe/UDC

verdict() { jq -r .verdict "$LAB_OUT/linkprobe-$1.json" 2>/dev/null; }
is() { [ "$(verdict "$1")" = "$2" ] || { diag "linkprobe $1: verdict '$(verdict "$1")', want $2: $(jq -r .evidence "$LAB_OUT/linkprobe-$1.json" 2>/dev/null)"; return 1; }; }
up() {
	gadget down 2>/dev/null
	wait_nodev 5
	gadget up --profile "$1" || return 1
	wait_dev 10
}
fresh() { rm -rf "$PAIRDIR"; mkdir -p "$PAIRDIR"; }
refused() { [ "$(jq -r '.device.refused_keys | sort | join(",")' "$LAB_OUT/linkprobe-$1.json" 2>/dev/null)" = "$2" ]; }

for n in 333 4096; do
	export LP_GADGET_INSPLIT=$n
	if ! up healthy; then
		fail "insplit=$n: gadget up"
		fail "insplit=$n: gadget up (cable test)"
		continue
	fi
	fresh
	lp "insplit-$n" trust --pair --timeout 120 --pair-dir "$PAIRDIR"
	check "insplit=$n: trust --pair is TRUSTED" is "insplit-$n" TRUSTED
	lp "insplit-cable-$n" cable-test --duration 3
	check "insplit=$n: cable test is GOOD" is "insplit-cable-$n" GOOD
done
unset LP_GADGET_INSPLIT

# a slow host: 8 s of key generation before the first Pair, --timeout 4. The
# window is the Trust dialog's, counted from the first Pair: the gadget's
# user taps Trust 2 s into it, so this pairs (counted from the start it
# would be TRUST_PENDING before the dialog ever showed)
# The same phone refuses two GetValue keys (GetProhibited): they are named
# in the device-info stage and the JSON, and the run carries on.
export LP_GADGET_PROHIBIT=ProductVersion+DeviceName
if up healthy; then
	fresh
	LINKPROBE_TEST_SLOW_KEYGEN_MS=8000 lp slow-host trust --pair --timeout 4 --pair-dir "$PAIRDIR"
	check "slow host, --timeout 4: the dialog's whole window, TRUSTED" is slow-host TRUSTED
	check "GetProhibited keys named in device.refused_keys" refused slow-host DeviceName,ProductVersion
else
	fail "slow host: gadget up"
	fail "GetProhibited: gadget up"
fi
unset LP_GADGET_PROHIBIT

# unplug DELAY: trust --pair on never-answers, the UDC unbound DELAY s after
# linkprobe printed that the dialog is showing (builtins only while timing:
# forks cost hundreds of ms in a busy TCG guest)
dialog_up() {
	while IFS= read -r _l; do case $_l in *"Trust This Computer?"*) return 0 ;; esac; done <"$1"
	return 1
}
for d in 0 0.5 1.5 2.5; do
	n=unplug-$d
	if ! up never-answers; then
		fail "unplugged $d s into the dialog: gadget up"
		continue
	fi
	fresh
	timeout 300 "$LP" trust --pair --timeout 200 --pair-dir "$PAIRDIR" --json -v \
		>"$LAB_OUT/linkprobe-$n.json" 2>"$LAB_OUT/linkprobe-$n.err" &
	lpid=$!
	_i=0
	until dialog_up "$LAB_OUT/linkprobe-$n.err"; do
		_i=$((_i + 1))
		[ $_i -gt 2000 ] && { diag "the dialog never showed"; break; }
		sleep 0.1
	done
	sleep "$d"
	echo "" >"$UDCATTR"
	echo "unbound at $(uptime_s)"
	wait $lpid
	cat "$LAB_OUT/linkprobe-$n.json"
	check "unplugged $d s into the Trust dialog: DISCONNECTED" is "$n" DISCONNECTED
done

# 4. a phone that re-enumerates after Trust, on a real kernel, with udevd
check "systemd-udevd running (libusb hears of the returning phone through it)" start_udevd
reenum_note() {
	jq -e '[.stages[] | select((.detail // "") | test("re-enumerated after Trust \\(as iPhones do\\) during [A-Za-z]+ and came back at address [0-9]+"))] | length >= 1' \
		"$LAB_OUT/linkprobe-$1.json" >/dev/null
}
if up reenum-after-trust && udevadm settle -t 30; then
	fresh
	lp reenum-trust trust --pair --timeout 120 --pair-dir "$PAIRDIR"
	check "re-enumerated after Trust: trust --pair is TRUSTED" is reenum-trust TRUSTED
	diag "stages: $(jq -c '[.stages[] | "\(.name): \(.status) \(.detail)"]' "$LAB_OUT/linkprobe-reenum-trust.json" 2>/dev/null)"
	check "a stage names the re-enumeration and the address it came back at" reenum_note reenum-trust
	r=$(jfield reenum-trust .metrics.reenumerations)
	check "metrics.reenumerations counts it ($r)" test "${r:-0}" -ge 1
	saved=$(jq '[.stages[] | select((.detail // "") | test("record saved to"))] | length' \
		"$LAB_OUT/linkprobe-reenum-trust.json" 2>/dev/null)
	check "the record is saved once ($saved)" test "$saved" = 1
else
	fail "re-enumerated after Trust: gadget up"
	fail "re-enumerated after Trust: stage"
	fail "re-enumerated after Trust: metrics"
	fail "re-enumerated after Trust: record saved once"
fi
