#!/bin/sh
# check-layers.sh - layers depend downward only:
#   src/base <- usb <- proto <- src (diag, commands)
# and only src/ (not src/base) may print or exit.
rc=0
bad() { echo "check-layers: $*" >&2; rc=1; }
for f in src/base/*.[ch]; do
	grep -nE '#include "\.\./\.\./(usb|proto)/|#include "(\.\./)?(usb|proto)/' "$f" >/dev/null && bad "$f includes an upper layer"
done
for f in usb/*.[ch]; do
	grep -nE '#include "(\.\./)?proto/|#include "\.\./src/[a-z_]+\.h"' "$f" >/dev/null && bad "$f includes proto/ or src/"
done
for f in proto/*.[ch]; do
	grep -nE '#include "\.\./src/[a-z_]+\.h"' "$f" >/dev/null && bad "$f includes src/ (not src/base)"
done
for f in src/base/*.c usb/*.c proto/*.c; do
	[ -e "$f" ] || continue
	grep -nE '\b(printf|puts|exit|abort)\s*\(|\bf?printf\s*\(\s*std(out|err)' "$f" | grep -v '^\s*//' | grep -vE 'snprintf|vsnprintf' && bad "$f prints or exits"
done
[ $rc = 0 ] && echo "check-layers: ok"
exit $rc
