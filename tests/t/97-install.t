#!/bin/sh
# 97-install.t - `make install DESTDIR=...` puts the program, the extcap link,
# the Wireshark Lua plugin, the udev rule, the man page, the completions and
# the protocol reference where the directories say; `make uninstall` with the
# same DESTDIR leaves an empty tree. Directories are asked from the Makefile
# (make install-dirs), so this also runs where Wireshark or udev live elsewhere.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$T/dest
mk() { make -s --no-print-directory -C "$ROOT" "$@"; }

mk install-dirs PREFIX=/usr >$T/dirs; ok $? "make install-dirs"
val() { sed -n "s/^$1=//p" $T/dirs; }
for v in BINDIR EXTCAPDIR WIRESHARK_PLUGINDIR UDEVRULESDIR MANDIR BASHCOMPDIR ZSHCOMPDIR DOCDIR; do
	like "$(val $v)" '^/' "$v is an absolute directory ($(val $v))"
done
like "$(val EXTCAPDIR)" 'wireshark/extcap$' "EXTCAPDIR is Wireshark's extcap directory"
like "$(val UDEVRULESDIR)" 'udev/rules\.d$' "UDEVRULESDIR is udev's rules directory"
if command -v tshark >/dev/null; then
	is "$(val EXTCAPDIR)" "$(tshark -G folders 2>/dev/null | sed -n 's/^Extcap path:[[:space:]]*//p')" \
		"EXTCAPDIR is the one Wireshark reports"
fi

mk install PREFIX=/usr DESTDIR=$D >$T/install.log 2>&1; ok $? "make install DESTDIR"
[ -x $D/usr/bin/linkprobe ]; ok $? "the program is installed and executable"
is "$(readlink $D$(val EXTCAPDIR)/linkprobe)" /usr/bin/linkprobe "the extcap entry links to the installed program"
cmp -s $D$(val WIRESHARK_PLUGINDIR)/linkprobe.lua $ROOT/tools/wireshark/linkprobe.lua; ok $? "the Lua plugin is installed"
cmp -s $D$(val UDEVRULESDIR)/39-linkprobe.rules $ROOT/tools/udev/39-linkprobe.rules; ok $? "the udev rule is installed"
cmp -s $D$(val MANDIR)/man1/linkprobe.1 $ROOT/doc/linkprobe.1; ok $? "the man page is installed"
[ -f $D$(val BASHCOMPDIR)/linkprobe ]; ok $? "the bash completion is installed"
[ -f $D$(val ZSHCOMPDIR)/_linkprobe ]; ok $? "the zsh completion is installed"
is "$(stat -c %a $D$(val UDEVRULESDIR)/39-linkprobe.rules)" 644 "the udev rule is mode 0644"
"$D/usr/bin/linkprobe" sim --list >/dev/null; ok $? "the installed program runs"
is "$(find $D -type f | wc -l | tr -d ' ')" 7 "install wrote 7 files"
is "$(find $D -type l | wc -l | tr -d ' ')" 1 "and one symlink"

# overrides win over the detected directories
mk install PREFIX=/opt/lp DESTDIR=$T/d2 EXTCAPDIR=/x/extcap WIRESHARK_PLUGINDIR=/x/plugins UDEVRULESDIR=/x/rules.d >/dev/null 2>&1
ok $? "make install with overridden directories"
[ -L $T/d2/x/extcap/linkprobe ] && [ -f $T/d2/x/plugins/linkprobe.lua ] && [ -f $T/d2/x/rules.d/39-linkprobe.rules ] && [ -x $T/d2/opt/lp/bin/linkprobe ]
ok $? "overridden directories are used"
mk uninstall PREFIX=/opt/lp DESTDIR=$T/d2 EXTCAPDIR=/x/extcap WIRESHARK_PLUGINDIR=/x/plugins UDEVRULESDIR=/x/rules.d >/dev/null 2>&1
ok $? "make uninstall with the same overrides"
[ ! -e $T/d2 ] || [ -z "$(find $T/d2 -mindepth 1)" ]; ok $? "leaves an empty tree"

touch $T/keep; mkdir -p $D/usr/share/man/man1 && cp $T/keep $D/usr/share/man/man1/other.1
mk uninstall PREFIX=/usr DESTDIR=$D >$T/uninstall.log 2>&1; ok $? "make uninstall DESTDIR"
is "$(find $D -mindepth 1 ! -type d | sed "s|^$D||")" "/usr/share/man/man1/other.1" "uninstall removes exactly what install put there"
rm $D/usr/share/man/man1/other.1
mk install PREFIX=/usr DESTDIR=$D >/dev/null 2>&1 && mk uninstall PREFIX=/usr DESTDIR=$D >/dev/null 2>&1
[ ! -e $D ] || [ -z "$(find $D -mindepth 1)" ]; ok $? "install + uninstall leaves an empty tree"
done_testing
