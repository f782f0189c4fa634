#!/bin/sh
# lab.sh - the USB lab (`make lab`): boot Debian's own kernel under QEMU (TCG,
# no KVM needed) with the host's userland shared read-only, put the simulated
# iPhone on a real (virtual) USB controller - dummy_hcd + configfs + FunctionFS
# driven by tools/gadget/lp_gadget - and run the scenarios in tests/lab/ against
# it inside the guest: Debian's usbmuxd + libimobiledevice tools, usbmon, and
# linkprobe itself over libusb.
#
#   tools/lab/lab.sh [SCENARIO...]     all scenarios, or those whose file name
#                                      contains SCENARIO ("interop", "20", ...)
#
# Prints the guest's TAP on stdout (for a human or `prove`); exits 0 when every
# test passed, 1 when one failed, 3 when the lab itself could not run.
# Needs root (qemu's 9p passthrough of /, apt-get download on first use).
#
# Environment:
#   LINKPROBE_LAB_CACHE  kernel package, vmlinux, initramfs (default
#                        /var/cache/linkprobe-lab), reused across runs
#   LAB_OUT              artifacts: console.log, tap.txt, *.pcap, usbmuxd and
#                        gadget logs (default build/lab)
#   LAB_TIMEOUT          bound on the whole VM run in seconds (default 7800:
#                        every scenario's own bound plus boot; a full run
#                        takes 6-15 min under TCG on an idle machine, about an
#                        hour with 8 builds on 2 cores)
#   LAB_SCENARIO_TIMEOUT bound on one scenario in the guest (default 600)
#   LAB_KVER             kernel ABI to use (default: what linux-image-amd64
#                        depends on now; falls back to the newest cached one)
#   LAB_SMP, LAB_MEM     guest CPUs / MiB (default 2 / 1024)
#
# How it is put together (tools/lab/README has the reasons behind each step):
#   cache/kernel-KVER/pkg    the unpacked linux-image .deb, with modules.dep
#   cache/kernel-KVER/vmlinux  ELF kernel cut out of the bzImage (PVH boot)
#   cache/initramfs-KVER-H   busybox + the modules below + tools/lab/init
#   guest: /init mounts / (9p, ro) under a tmpfs overlay, LAB_OUT (9p, rw) at
#   its host path, switch_root, runs tools/lab/guest.sh, powers off.
set -eu

die() { echo "lab: $*" >&2; exit 3; }
note() { echo "# lab: $*"; }

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${LINKPROBE_LAB_CACHE:-/var/cache/linkprobe-lab}
OUT=${LAB_OUT:-$REPO/build/lab}
TIMEOUT=${LAB_TIMEOUT:-7800}
SMP=${LAB_SMP:-2}
MEM=${LAB_MEM:-1024}
# Modules the initramfs loads itself (9p root) plus those the scenarios need.
MODS="virtio_pci 9pnet_virtio 9p overlay configfs libcomposite usb_f_fs usb_f_hid dummy_hcd usbmon"

[ "$(id -u)" = 0 ] || die "must run as root (qemu 9p passthrough of /, apt-get download)"
"$REPO/tools/bootstrap.sh" lab >&2 || die "bootstrap failed"
mkdir -p "$CACHE" "$OUT" || die "cannot create $CACHE or $OUT"
OUT=$(cd "$OUT" && pwd)
case "$OUT$REPO" in *[[:space:]]*) die "paths with spaces are not supported: $OUT $REPO";; esac

# One lab at a time per cache: the kernel/initramfs steps are not atomic.
exec 9>"$CACHE/.lock"
flock -w 600 9 || die "cache $CACHE is locked by another lab run"

# --- 1. kernel package -------------------------------------------------------
resolve_kver() {
	if [ -n "${LAB_KVER:-}" ]; then echo "$LAB_KVER"; return; fi
	k=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -1)
	if [ -z "$k" ]; then
		# offline: newest kernel already in the cache
		k=$(ls -d "$CACHE"/kernel-*/pkg 2>/dev/null | sed 's|.*/kernel-\(.*\)/pkg|\1|' |
			sort -V | tail -1)
	fi
	[ -n "$k" ] || die "cannot resolve the kernel ABI (apt-cache depends linux-image-amd64)"
	echo "$k"
}

fetch_kernel() {
	kd=$CACHE/kernel-$KVER
	[ -e "$kd/pkg/lib/modules/$KVER/modules.dep" ] && [ -e "$kd/vmlinux" ] && return 0
	mkdir -p "$CACHE/debs"
	deb=$(ls "$CACHE/debs/linux-image-${KVER}_"*.deb 2>/dev/null | head -1)
	if [ -z "$deb" ]; then
		note "downloading linux-image-$KVER"
		(cd "$CACHE/debs" && apt-get download -q "linux-image-$KVER" >&2) ||
			die "apt-get download linux-image-$KVER failed (try: apt-get update)"
		deb=$(ls "$CACHE/debs/linux-image-${KVER}_"*.deb | head -1)
	fi
	note "unpacking $deb"
	rm -rf "$kd.tmp" && mkdir -p "$kd.tmp" || die "mkdir $kd.tmp"
	dpkg-deb -x "$deb" "$kd.tmp/pkg" || die "dpkg-deb -x $deb"
	# the package ships no modules.dep: it is generated at install time
	depmod -b "$kd.tmp/pkg" "$KVER" || die "depmod"
	extract_vmlinux "$kd.tmp/pkg/boot/vmlinuz-$KVER" "$kd.tmp/vmlinux"
	rm -rf "$kd" && mv "$kd.tmp" "$kd" || die "mv $kd.tmp $kd"
}

# The bzImage carries the kernel as an xz stream; the ELF inside boots through
# PVH without the BIOS real-mode loader, seconds faster under TCG.
extract_vmlinux() {
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -1 | cut -d: -f1)
	[ -n "$off" ] || die "no xz stream in $1"
	# trailing data after the stream makes xz exit 1: check the result instead
	tail -c +$((off + 1)) "$1" | xz -dc >"$2" 2>/dev/null || true
	[ "$(head -c4 "$2" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "vmlinux extraction failed"
}

# --- 2. initramfs: static busybox + modules + init ---------------------------
build_initramfs() {
	kd=$CACHE/kernel-$KVER
	h=$(cat /bin/busybox "$REPO/tools/lab/init" | sha256sum | cut -c1-12)
	h=$(printf '%s %s %s' "$h" "$MODS" "$KVER" | sha256sum | cut -c1-12)
	INITRD=$CACHE/initramfs-$KVER-$h.cpio.gz
	[ -e "$INITRD" ] && return 0
	note "building $INITRD"
	ird=$CACHE/ird.tmp
	rm -rf "$ird" && mkdir -p "$ird/bin" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/lib/modules/$KVER"
	cp /bin/busybox "$ird/bin/" || die "busybox-static missing"
	for m in $MODS; do
		modprobe -d "$kd/pkg" -S "$KVER" --show-depends "$m" || die "module $m not in kernel $KVER"
	done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r f; do
		rel=${f#*/lib/modules/$KVER/}
		mkdir -p "$ird/lib/modules/$KVER/${rel%/*}"
		cp "$f" "$ird/lib/modules/$KVER/$rel"
	done
	cp "$kd/pkg/lib/modules/$KVER/modules.order" "$kd/pkg/lib/modules/$KVER/modules.builtin" \
		"$ird/lib/modules/$KVER/"
	depmod -b "$ird" "$KVER" 2>/dev/null || die "depmod initramfs"
	cp "$REPO/tools/lab/init" "$ird/init" && chmod 755 "$ird/init"
	echo "$MODS" >"$ird/modules"
	(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp" || die "cpio"
	mv "$INITRD.tmp" "$INITRD" && rm -rf "$ird"
	# keep only this initramfs for this kernel
	for f in "$CACHE"/initramfs-*.cpio.gz; do [ "$f" = "$INITRD" ] || rm -f "$f"; done
}

# --- 3. programs the guest runs (built on the host, run from LAB_OUT) ---------
# The gadget links the simulated iPhone (src/device/simdev.c and what it uses); the
# same command is what `make` would run for it. Without simdev (early in the
# project) it has only its echo model.
build_programs() {
	# the gadget links the project's library: the static archive pulls in
	# only what the simulated iPhone needs (no transport, no host code);
	# `make build/tools/lp_gadget` is the one recipe (make check builds it too)
	make -s -C "$REPO" build/liblinkprobe.a build/tools/lp_gadget >"$OUT/build.log" 2>&1 ||
		{ cat "$OUT/build.log" >&2; die "building the library and the gadget failed (see $OUT/build.log)"; }
	mkdir -p "$OUT/bin"
	cf="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wno-unused-parameter -I$REPO"
	(
		set -x
		cd "$REPO" &&
		cp build/tools/lp_gadget "$OUT/bin/lp_gadget" &&
		cc $cf -o "$OUT/bin/lab_echo" tools/lab/lab_echo.c \
			$(pkg-config --cflags --libs libusb-1.0) &&
		cc $cf -o "$OUT/bin/lab_afc" tools/lab/lab_afc.c \
			$(pkg-config --cflags --libs libimobiledevice-1.0)
	) >>"$OUT/build.log" 2>&1 ||
		{ cat "$OUT/build.log" >&2; die "building the lab programs failed (see $OUT/build.log)"; }
}

# --- 4. run ------------------------------------------------------------------
KVER=$(resolve_kver)
fetch_kernel
build_initramfs
# artifacts of the previous run (logs are appended to by several processes)
(cd "$OUT" && rm -f tap.txt guest_rc guest.env ./*.pcap ./*.log ./*.out ./*.json ./*.err \
	./*.txt ./*.fields ./*.capinfos ./*.lockdown)
build_programs

: >"$OUT/tap.txt"
{
	echo "LAB_REPO=$REPO"
	echo "LAB_OUT=$OUT"
	echo "LAB_KVER=$KVER"
	echo "LAB_ONLY='$*'"
	echo "LAB_SCENARIO_TIMEOUT=${LAB_SCENARIO_TIMEOUT:-600}"
} >"$OUT/guest.env"

start=$(date +%s%N)
# -M pc (not microvm): boots reliably and has HPET, so USB round trips are not
# jiffy-granular. multidevs=remap: / spans several host filesystems.
# no_timer_check: on a host busy with other builds the emulated CPU can be
# too slow for the kernel's IO-APIC timer check, which then panics at boot
# ("IO-APIC + timer doesn't work!"); the timer works, the check is skipped.
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -M pc -accel tcg -cpu max -smp "$SMP" -m "$MEM" \
	-nographic -no-reboot -nic none \
	-kernel "$CACHE/kernel-$KVER/vmlinux" -initrd "$INITRD" \
	-append "console=ttyS0 quiet panic=-1 no_timer_check lp_out=$OUT lp_repo=$REPO" \
	-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
	-fsdev local,id=repo,path="$REPO",security_model=none,multidevs=remap \
	-device virtio-9p-pci,fsdev=repo,mount_tag=labrepo \
	-fsdev local,id=out,path="$OUT",security_model=none \
	-device virtio-9p-pci,fsdev=out,mount_tag=labout \
	</dev/null >"$OUT/console.log" 2>&1 &
qpid=$!
# stream the TAP the guest writes into the shared directory while it runs
tail -n +1 -f --pid=$qpid "$OUT/tap.txt" &
tpid=$!
qrc=0
wait $qpid || qrc=$?
sleep 0.3
kill $tpid 2>/dev/null || true
wait $tpid 2>/dev/null || true
ms=$((($(date +%s%N) - start) / 1000000))
echo "# lab: VM wall time ${ms} ms (kernel $KVER, artifacts in $OUT)"

[ "$qrc" = 124 ] && { echo "not ok - lab timed out after ${TIMEOUT}s (see $OUT/console.log)"; exit 1; }
[ -s "$OUT/guest_rc" ] || { tail -20 "$OUT/console.log" >&2; die "guest did not finish (qemu rc $qrc)"; }

# verdict from the TAP itself: the plan the guest printed before running
# anything, exactly that many results, none failed, none skipped or TODO (a
# missing feature is a failure: the lab never passes without running)
awk '
/^1\.\.[0-9]+/ { if (!seen_plan) plan = substr($1, 4) + 0; seen_plan++ }
/^ok / || /^not ok / { n++ }
/^not ok / { bad++ }
/^(not )?ok .*# *(SKIP|TODO)/ { skipped++ }
END {
	if (!seen_plan) { print "# lab: no TAP plan from the guest"; exit 1 }
	if (seen_plan > 1) { print "# lab: more than one TAP plan"; exit 1 }
	if (plan == 0) { print "# lab: the plan is empty (no scenario selected?)"; exit 1 }
	if (n != plan) { printf "# lab: planned %d tests, ran %d\n", plan, n; exit 1 }
	if (skipped) { printf "# lab: %d skipped or TODO: the lab does not skip\n", skipped; exit 1 }
	if (bad) { printf "# lab: %d of %d failed\n", bad, n; exit 1 }
	printf "# lab: all %d passed\n", n
}' "$OUT/tap.txt"
