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
# userspace <-> kernel latency under TCG, not clock drift. Each transfer's gap
# is measured against the median offset of all of them (aligning on the first
# transfer alone would shift every gap by that one's latency). A wrong clock,
# drift or stamps taken at the wrong moment move the bulk of the gaps; one
# late reap moves one. So: at most 1 % of the transfers (at least one) more
# than the tolerance off (LAB_XCHECK_TOL_MS, default 50 ms), none more than
# four times it. A reap 52.9 ms late once failed the old per-transfer cap on
# a loaded 2-core host with a median gap of 0.38 ms. The report gives the
# median, the 99th percentile and the maximum.
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
# insertion sort of a[1..n] (a few hundred transfers)
function isort(a, n,   i, j, v) {
	for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
}
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
	# Order is compared per endpoint: within one endpoint both observers see
	# the transfers in bus order. Across endpoints the two observers can
	# disagree on which of two near-simultaneous events came first (an OUT
	# submitted while an IN completes): such swaps are reported and must be
	# within the tolerance of each other, they are not a mismatch.
	for (i = 1; i <= nl; i++) { e = lep[i]; lseq[e, ++lcnt[e]] = i; eps_all[e] = 1 }
	for (i = 1; i <= nk; i++) { e = kep[i]; kseq[e, ++kcnt[e]] = i; eps_all[e] = 1 }
	fe = fl = fd = 0; eps = ""
	for (e in eps_all) {
		eps = eps sprintf("%s%s %s x%d/%d", eps == "" ? "" : ", ", dir(e), e, lcnt[e], kcnt[e])
		if (lcnt[e] != kcnt[e] && !fe) { fe = 1; fe_msg = sprintf("%s %s: linkprobe %d transfers, kernel %d", dir(e), e, lcnt[e], kcnt[e]) }
		m = lcnt[e] < kcnt[e] ? lcnt[e] : kcnt[e]
		for (j = 1; j <= m; j++) {
			a = lseq[e, j]; b = kseq[e, j]
			if (!fl && llen[a] != klen[b]) { fl = 1; fl_msg = sprintf("%s %s transfer %d: linkprobe %d bytes, kernel %d", dir(e), e, j, llen[a], klen[b]) }
			if (!fd && ldat[a] != kdat[b]) { fd = 1; fd_msg = sprintf("%s %s transfer %d (%d bytes)", dir(e), e, j, llen[a]) }
		}
	}
	printf "# endpoints (linkprobe/kernel): %s\n", eps
	if (fe) printf "# %s\n", fe_msg
	okk(n > 0 && !fe, "same endpoints (direction + address), same number of transfers on each")
	if (fl) printf "# first length mismatch: %s\n", fl_msg
	okk(n > 0 && !fl, "same lengths in the same order on every endpoint")
	if (fd) printf "# first payload mismatch: %s\n", fd_msg
	okk(n > 0 && !fd, "same payload bytes in the same order on every endpoint")
	# global interleaving: where the sequences differ, the swapped transfers
	# must be close in time (a race between the two observers, not a reorder)
	swaps = 0; wide = 0
	for (i = 1; i <= n; i++) if (lep[i] != kep[i] || llen[i] != klen[i]) {
		swaps++
		if (i < n && (lt[i + 1] - lt[i]) * 1000 > tol) wide++
	}
	printf "# cross-endpoint order: %d position(s) differ between the two observers\n", swaps
	okk(!fe && wide == 0, sprintf("across endpoints the order agrees except near-simultaneous swaps (%d, none over %s ms apart)", swaps, tol))
	# each transfer as both observers saw it: offset linkprobe - kernel
	ng = 0
	for (e in eps_all) {
		m = lcnt[e] < kcnt[e] ? lcnt[e] : kcnt[e]
		for (j = 1; j <= m; j++) {
			a = lseq[e, j]; b = kseq[e, j]
			off[++ng] = (lt[a] - kt[b]) * 1000; offi[ng] = a
		}
	}
	n = ng
	for (i = 1; i <= n; i++) srt[i] = off[i]
	isort(srt, n)
	mo = n ? srt[int((n + 1) / 2)] : 0   # the median offset
	over = 0; maxd = 0; maxi = 1
	for (i = 1; i <= n; i++) {
		d = off[i] - mo; if (d < 0) d = -d
		gap[i] = d
		if (d > maxd) { maxd = d; maxi = offi[i] }
		if (d > tol) over++
	}
	isort(gap, n)
	med = n ? gap[int((n + 1) / 2)] : 0
	p99 = n ? gap[int(n * 0.99) > 0 ? int(n * 0.99) : 1] : 0
	allow = int(n / 100); if (allow < 1) allow = 1
	printf "# median offset linkprobe - kernel %.3f ms over %d transfers\n", mo, n
	printf "# gap to it: median %.3f ms, 99th percentile %.3f ms, max %.3f ms (transfer %d, %s %s), %d over %s ms (%d allowed)\n", med, p99, maxd, maxi, dir(lep[maxi]), lep[maxi], over, tol, allow
	okk(n > 0 && over <= allow && maxd <= 4 * tol, sprintf("timestamps track the kernel'"'"'s: %d of %d transfers over %s ms off the median offset (at most %d), max %.3f ms (at most %g)", over, n, tol, allow, maxd, 4 * tol))
	printf "1..%d\n", t
	exit bad ? 1 : 0
}'
