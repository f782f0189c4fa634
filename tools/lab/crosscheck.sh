#!/bin/sh
# crosscheck.sh - does linkprobe's own capture show what the kernel saw?
# Compares the bulk transfers that carry data in linkprobe's --capture file
# with those in a usbmon capture of the same run (dumpcap -i usbmonN): the
# same transfers on the same endpoints (direction + address, as each capture
# records them), with the same lengths and payload bytes, in the same order,
# and timestamps that agree within a tolerance once both sequences are
# aligned on their first bulk transfer. Prints TAP; exits 1 on a mismatch.
#
#   tools/lab/crosscheck.sh LP_CAPTURE KERNEL_CAPTURE [TOLERANCE_MS]
#
# "Carries data" = usbmon's view: an OUT transfer at submission ('S'), an IN
# transfer at completion ('C'), data_len > 0; so error completions and
# cancelled IN URBs drop out of both sides alike. Payload bytes are compared
# in full (usb.capdata, as hex). linkprobe must run with --no-redact for the
# payloads to match: by default it blanks the EscrowBag in its capture.
#
# Timestamps: linkprobe stamps a transfer when it submits it (OUT) or reaps
# its completion (IN); usbmon when the host controller driver gets or gives
# back the URB. Both read the guest's (emulated) clock, so the gap is
# userspace <-> kernel latency under TCG, not clock drift: default tolerance
# 50 ms per transfer (LAB_XCHECK_TOL_MS), after subtracting the offset of the
# first transfer. The report gives the median and maximum gap.
set -u
LPCAP=${1:?usage: crosscheck.sh LP_CAPTURE KERNEL_CAPTURE [TOLERANCE_MS]}
KCAP=${2:?usage: crosscheck.sh LP_CAPTURE KERNEL_CAPTURE [TOLERANCE_MS]}
TOL=${3:-${LAB_XCHECK_TOL_MS:-50}}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/crosscheck.XXXXXX") || exit 3
trap 'rm -rf "$TMP"' EXIT

# one line per data-carrying bulk transfer: epoch time, endpoint address
# (0x80 bit = IN), length, payload hex
bulk() {
	tshark -r "$1" -Y 'usb.transfer_type == 0x03 && usb.data_len > 0' -T fields \
		-E separator=' ' -E occurrence=f \
		-e frame.time_epoch -e usb.endpoint_address -e usb.data_len -e usb.capdata \
		2>"$TMP/tshark.err"
}
bulk "$LPCAP" >"$TMP/lp" || { echo "Bail out! tshark cannot read $LPCAP: $(head -1 "$TMP/tshark.err")"; exit 3; }
bulk "$KCAP" >"$TMP/k" || { echo "Bail out! tshark cannot read $KCAP: $(head -1 "$TMP/tshark.err")"; exit 3; }

awk -v tol="$TOL" -v lpf="$TMP/lp" -v kf="$TMP/k" '
function load(f, t, ep, len, dat,   n, a) {
	n = 0
	while ((getline line < f) > 0) {
		split(line, a, " ")
		n++
		t[n] = a[1]; ep[n] = a[2]; len[n] = a[3]; dat[n] = a[4]
	}
	close(f)
	return n
}
# endpoint addresses come as 0xNN: bit 7 (the high digit >= 8) is IN
function dir(e) { return (index("89abcdef", tolower(substr(e, 3, 1))) > 0) ? "IN" : "OUT" }
function okk(c, what) {
	t++
	if (c) printf "ok %d - %s\n", t, what
	else { printf "not ok %d - %s\n", t, what; bad++ }
}
BEGIN {
	nl = load(lpf, lt, lep, llen, ldat)
	nk = load(kf, kt, kep, klen, kdat)
	printf "# linkprobe capture: %d bulk data transfers, kernel usbmon: %d\n", nl, nk
	okk(nl > 0 && nk > 0, sprintf("both captures hold bulk data transfers (%d, %d)", nl, nk))
	okk(nl == nk, sprintf("same number of bulk data transfers (%d vs %d)", nl, nk))
	n = nl < nk ? nl : nk
	fe = fl = fd = 0
	for (i = 1; i <= n; i++) {
		if (!fe && lep[i] != kep[i]) fe = i
		if (!fl && llen[i] != klen[i]) fl = i
		if (!fd && ldat[i] != kdat[i]) fd = i
		seen[dir(lep[i]) " " lep[i]]++
	}
	eps = ""
	for (k in seen) eps = eps sprintf("%s%s x%d", eps == "" ? "" : ", ", k, seen[k])
	printf "# endpoints: %s\n", eps
	if (fe) printf "# first endpoint mismatch at transfer %d: linkprobe %s %s, kernel %s %s\n", fe, dir(lep[fe]), lep[fe], dir(kep[fe]), kep[fe]
	okk(n > 0 && !fe, "same endpoints (direction + address) in the same order")
	if (fl) printf "# first length mismatch at transfer %d (%s %s): linkprobe %d, kernel %d\n", fl, dir(lep[fl]), lep[fl], llen[fl], klen[fl]
	okk(n > 0 && !fl, "same lengths in the same order")
	if (fd) {
		for (j = 1; j <= length(ldat[fd]) && substr(ldat[fd], j, 2) == substr(kdat[fd], j, 2); j += 2);
		printf "# first payload mismatch at transfer %d (%s %s, %d bytes): byte %d differs (%s vs %s)\n", fd, dir(lep[fd]), lep[fd], llen[fd], (j - 1) / 2, substr(ldat[fd], j, 16), substr(kdat[fd], j, 16)
	}
	okk(n > 0 && !fd, "same payload bytes in the same order")
	# timestamps relative to each capture'"'"'s first bulk transfer
	over = 0; maxd = 0; maxi = 1
	for (i = 1; i <= n; i++) {
		d = ((lt[i] - lt[1]) - (kt[i] - kt[1])) * 1000
		if (d < 0) d = -d
		gap[i] = d
		if (d > maxd) { maxd = d; maxi = i }
		if (d > tol) over++
	}
	# median by insertion sort (a few hundred transfers)
	for (i = 2; i <= n; i++) { v = gap[i]; for (j = i - 1; j >= 1 && gap[j] > v; j--) gap[j + 1] = gap[j]; gap[j + 1] = v }
	med = n ? gap[int((n + 1) / 2)] : 0
	printf "# first transfer: linkprobe %.6f, kernel %.6f (offset %.3f ms)\n", lt[1], kt[1], (lt[1] - kt[1]) * 1000
	printf "# timestamp gap after alignment: median %.3f ms, max %.3f ms (transfer %d, %s %s), %d over %s ms\n", med, maxd, maxi, dir(lep[maxi]), lep[maxi], over, tol
	okk(n > 0 && over == 0, sprintf("timestamps within %s ms of the kernel'"'"'s, aligned on the first bulk transfer (max %.3f ms)", tol, maxd))
	printf "1..%d\n", t
	exit bad ? 1 : 0
}'
