#!/bin/sh
# check-layers.sh - the layers of doc/HACKING.md, lowest first. A file may
# include headers of its own layer and of the layers below it, never above;
# includes are written from the repository root ("proto/mux.h"). Only src/cli
# prints or exits.
LAYERS="src/base usb proto src/capture src/device src/diag src/fleet src/analyze src/cli"
rc=0
bad() { echo "check-layers: $*" >&2; rc=1; }
rank() { # layer index of a path, or nothing
	i=0
	for l in $LAYERS; do
		case "$1" in "$l"/*) echo $i; return ;; esac
		i=$((i + 1))
	done
}
for l in $LAYERS; do
	for f in "$l"/*.[ch]; do
		[ -e "$f" ] || continue
		me=$(rank "$f")
		# every quoted include must be root-relative and point at a layer <= mine
		grep -oE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[^"]+"' "$f" |
			sed -E 's/.*"([^"]+)"/\1/' | while read -r inc; do
			if [ ! -e "$inc" ]; then
				echo "check-layers: $f includes \"$inc\": not a path from the repository root" >&2
				echo x
				continue
			fi
			r=$(rank "$inc")
			if [ -z "$r" ]; then
				echo "check-layers: $f includes $inc, which belongs to no layer" >&2
				echo x
			elif [ "$r" -gt "$me" ]; then
				echo "check-layers: $f ($l) includes $inc from a layer above it" >&2
				echo x
			fi
		done | grep -q x && rc=1
		if [ "$l" != src/cli ] && [ "${f%.c}" != "$f" ]; then
			grep -nE '\b(printf|puts|putchar|exit|_exit|abort)\s*\(|\bf?printf\s*\(\s*std(out|err)|\bfputs\s*\([^;]*std(out|err)' "$f" |
				grep -vE '^\s*[0-9]+:\s*(//|\*|/\*)' | grep -vE 'snprintf|vsnprintf' >/dev/null &&
				bad "$f prints or exits (only src/cli may)"
		fi
	done
done
# no stray sources outside the layers (everything under src/ is in one)
for f in src/*.[ch]; do [ -e "$f" ] && bad "$f is in no layer (put it in a src/ subfolder)"; done
[ $rc = 0 ] && echo "check-layers: ok"
exit $rc
