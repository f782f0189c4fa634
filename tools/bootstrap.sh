#!/bin/sh
# bootstrap.sh - install the Debian 12 packages linkprobe's build and tests need.
# Fast when everything is there (one dpkg-query). As root it runs apt-get;
# otherwise it prints the exact command and exits 1. (prometheus is there for
# promtool, which checks watch's metrics file and the example alert rules; the
# package also brings a Prometheus server, started on systemd hosts.)
#   tools/bootstrap.sh          build + unit/CLI tests (make, make check, make demo)
#   tools/bootstrap.sh lab      + the QEMU USB lab (make lab)
#   tools/bootstrap.sh package  + the Debian package build and its chroot test (make deb)
set -eu
BUILD="build-essential pkg-config clang clang-format libclang-rt-14-dev libusb-1.0-0-dev libpcap-dev libplist-dev
libplist-utils libssl-dev openssl libjson-c-dev libcmocka-dev tshark perl jq python3 time
chromium fonts-dejavu-core
mandoc bash-completion zsh prometheus"
LAB="qemu-system-x86 busybox-static usbmuxd libimobiledevice-utils libimobiledevice-dev libusbmuxd-tools udev kmod cpio xz-utils usbutils socat iproute2"
PACKAGE="dpkg-dev debhelper fakeroot lintian debootstrap"
want=$BUILD
[ "${1:-}" = lab ] && want="$BUILD $LAB"
[ "${1:-}" = package ] && want="$BUILD $PACKAGE"
missing=
for p in $want; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
	echo "linkprobe needs these Debian packages:$missing" >&2
	echo "run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "bootstrap: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -q >&2
apt-get install -y -q --no-install-recommends $missing >&2
