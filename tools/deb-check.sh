#!/bin/sh
# deb-check.sh - build the Debian package, lint it, install it for real.
#   1. dpkg-buildpackage -us -uc -b in a scratch copy of the tree (the build
#      never touches the working tree; the .deb lands in build/deb/);
#      DEB=file.deb skips this and checks that package
#   2. lintian: no errors (warnings are printed)
#   3. a Debian 12 chroot (debootstrap --variant=minbase, with the package's
#      Depends, cached as build/deb/chroot.tar): dpkg -i the .deb, then inside
#      the chroot `linkprobe sim --list`, a simulated `trust --pair` (TRUSTED,
#      exit 0), the man page, the udev rule in the system rules directory;
#      dpkg --purge leaves none of the package's files behind.
# Usage: tools/deb-check.sh [--build-only]   (--build-only: steps 1 and 2)
# Step 3 needs root (chroot) and Debian's archive (debootstrap, once; then
# cached). `make deb` runs steps 1-2, `make deb-check` all three; .ci/run
# calls `make deb-check` after `make check`.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build/deb
MIRROR=${LINKPROBE_DEB_MIRROR:-http://deb.debian.org/debian}
# the debootstrap'd chroot is kept outside the clone (like the lab's kernel),
# so CI's fresh clones on the same machine reuse it
CACHE=${LINKPROBE_DEB_CACHE:-/var/cache/linkprobe-deb}
fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }
step() { echo "== deb-check: $*"; }
mkdir -p "$OUT"
if [ -n "${DEB:-}" ]; then # DEB=file.deb: test a package built before
	deb=$DEB
else
rm -rf "$OUT/src" "$OUT"/*.deb "$OUT"/*.buildinfo "$OUT"/*.changes "$OUT"/*.ddeb
mkdir -p "$OUT/src"
step "dpkg-buildpackage -us -uc -b"
# a clean copy of what git tracks plus the working tree's changes
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$OUT/src" 2>/dev/null ||
	tar --exclude=./build --exclude=./.git -cf - . | tar -C "$OUT/src" -xf -
(cd "$OUT/src" && dpkg-buildpackage -us -uc -b >"$OUT/build.log" 2>&1) ||
	{ tail -40 "$OUT/build.log"; fail "dpkg-buildpackage"; }
deb=$(ls "$OUT"/linkprobe_*.deb | head -1)
fi
[ -f "$deb" ] || fail "no .deb ($deb)"
echo "built $deb"
dpkg-deb -c "$deb" | awk '{ print $6, $7, $8 }'

step "lintian"
if ! lintian --fail-on error "$deb" >"$OUT/lintian.log" 2>&1; then
	cat "$OUT/lintian.log"; fail "lintian reports errors"
fi
grep -v 'running with root privileges' "$OUT/lintian.log" || true
echo "lintian: no errors"

if [ "${1:-}" = --build-only ]; then
	step "ok: $deb builds and passes lintian (not installed: --build-only)"
	exit 0
fi
step "install in a Debian 12 chroot"
CH=$OUT/chroot
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/[[:space:]]//g' | grep -v '^$' | tr '\n' ',' | sed 's/,$//')
mkdir -p "$CACHE"
cache=$CACHE/chroot-$(printf '%s' "$deps" | md5sum | cut -c1-8).tar
rm -rf "$CH"; mkdir -p "$CH"
if [ -f "$cache" ]; then
	tar -C "$CH" -xf "$cache"
else
	command -v debootstrap >/dev/null || fail "debootstrap missing (tools/bootstrap.sh package)"
	debootstrap --variant=minbase --include="$deps" bookworm "$CH" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 ||
		{ tail -20 "$OUT/debootstrap.log"; fail "debootstrap"; }
	tar -C "$CH" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
fi
cleanup() { for m in proc dev; do umount "$CH/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$CH/proc"
mount --bind /dev "$CH/dev"
cp "$deb" "$CH/tmp/linkprobe.deb"
in_ch() { chroot "$CH" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LINKPROBE_SIM_CLOCK=virtual "$@"; }
in_ch dpkg -i /tmp/linkprobe.deb || fail "dpkg -i"
in_ch linkprobe --version
n=$(in_ch linkprobe sim --list | wc -l)
[ "$n" -ge 12 ] || fail "linkprobe sim --list printed $n profiles"
echo "sim --list: $n profiles"
rc=0
in_ch linkprobe trust --pair --json --device sim:healthy --pair-dir /tmp/pairs >"$OUT/trust.json" || rc=$?
[ "$rc" = 0 ] || { cat "$OUT/trust.json"; fail "simulated trust exited $rc"; }
grep -q '"verdict": *"TRUSTED"' "$OUT/trust.json" || fail "simulated trust: no TRUSTED verdict"
echo "simulated trust: TRUSTED"
[ -f "$CH/tmp/pairs/SystemConfiguration.plist" ] || fail "no SystemConfiguration.plist written"
rule=$(in_ch dpkg -L linkprobe | grep -E '^/(usr/)?lib/udev/rules\.d/[^/]*linkprobe[^/]*\.rules$' || true)
[ -n "$rule" ] && [ -f "$CH$rule" ] || fail "the udev rule is not in the system rules directory"
echo "udev rule: $rule"
for f in /usr/share/man/man1/linkprobe.1.gz /usr/share/bash-completion/completions/linkprobe \
	/usr/share/zsh/vendor-completions/_linkprobe; do
	[ -e "$CH$f" ] || fail "$f not installed"
done
ext=$(in_ch dpkg -L linkprobe | grep '/wireshark/extcap/linkprobe$' || true)
[ -n "$ext" ] && [ "$(in_ch readlink -f "$ext")" = /usr/bin/linkprobe ] || fail "extcap link missing or dangling"
files=$(in_ch dpkg -L linkprobe | while read -r f; do
	if [ -f "$CH$f" ] && [ ! -L "$CH$f" ]; then echo "$f"; fi
done)
in_ch dpkg --purge linkprobe || fail "dpkg --purge"
for f in $files; do [ -e "$CH$f" ] && fail "$f left behind by dpkg --purge"; done
[ -e "$CH$rule" ] && fail "udev rule left behind"
step "ok: $deb builds, passes lintian, installs, runs, purges"
