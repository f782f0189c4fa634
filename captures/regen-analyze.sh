#!/bin/sh
# regen-analyze.sh - derive the analyzer's extra golden captures from the sim
# captures (regen.sh), synthesize the usbmuxd-relay ones, and check every case
# of TESTLIST against its hand-written verdict and stages.
#   captures/regen-analyze.sh [--update-counts] [LINKPROBE]   (python3, jq)
#
# It never decides what is right: a verdict, an exit code or a stage status
# that differs from TESTLIST (written by hand) or from expected/NAME.json is
# refused - nothing is written and it exits 1. Fix the analyzer, or change
# TESTLIST by hand if the session really deserves another verdict. The
# normalized expected files hold no times and no wording; any other change in
# them (device identity, counts) is shown and refused too unless
# --update-counts is given. An analyze that errors out (exit 2, 3, a signal)
# fails the run. Everything is made in a temporary directory first and moved
# into place only when every case passed.
set -eu
cd "$(dirname "$0")"
UPDATE=
if [ "${1:-}" = --update-counts ]; then UPDATE=1; shift; fi
LP=${1:-../linkprobe}
CONV=../tools/captures/capconv.py
RELAY=../tools/captures/gen_usbmuxd_relay.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/cap" "$tmp/exp"
python3 $CONV sim-healthy-pair.pcapng "$tmp/cap/analyze-healthy-pair.pcap" --to 220
python3 $CONV sim-healthy-pair.pcapng "$tmp/cap/analyze-healthy-pair-189.pcap" --to 189
python3 $CONV sim-healthy-pair.pcapng "$tmp/cap/analyze-healthy-pair-usbpcap.pcap" --to 249
python3 $CONV sim-denied.pcapng "$tmp/cap/analyze-denied-big-endian.pcap" --big-endian
python3 $CONV sim-denied.pcapng "$tmp/second.pcap" --renumber 3.7 --shift 0.5
python3 $CONV merge "$tmp/cap/analyze-two-devices.pcap" "$tmp/cap/analyze-healthy-pair.pcap" "$tmp/second.pcap"
# captures that start mid-session: cut from the lab's usbmuxd capture
editcap -r lab-usbmuxd-usbmon.pcap "$tmp/cap/mid-usbmuxd-usbmon.pcap" 363-100000
editcap -r lab-usbmuxd-usbmon.pcap "$tmp/cap/mid-session-open.pcap" 480-530
editcap -r lab-usbmuxd-usbmon.pcap "$tmp/cap/mid-no-version.pcap" 301-355 363-100000
python3 $CONV "$tmp/cap/mid-usbmuxd-usbmon.pcap" "$tmp/cap/mid-usbmuxd-usbpcap.pcap" --to 249
# as macOS records them (LINKTYPE_USB_DARWIN, 266)
python3 $CONV sim-healthy-pair.pcapng "$tmp/cap/analyze-healthy-pair-darwin.pcap" --to 266
python3 $CONV lab-usbmuxd-usbmon.pcap "$tmp/cap/lab-usbmuxd-darwin.pcap" --to 266
python3 $CONV "$tmp/cap/mid-usbmuxd-usbmon.pcap" "$tmp/cap/mid-usbmuxd-darwin.pcap" --to 266
for s in trusted denied refused restart; do
	python3 $RELAY "$tmp/cap/usbmuxd-relay-$s.pcap" --scenario $s
done

bad=0
grep -v '^#' TESTLIST | { while read -r name file opts verdict stages; do
	[ -n "$name" ] || continue
	[ "$opts" = - ] && opts=
	todo=
	case $stages in *" # TODO "*) todo=${stages#* \# TODO }; stages=${stages%% \# TODO *} ;; esac
	f=$file
	[ -e "$tmp/cap/$file" ] && f=$tmp/cap/$file
	rc=0
	# shellcheck disable=SC2086
	"$LP" analyze "$f" $opts --json >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
		echo "$name: analyze $file failed (exit $rc): $(head -3 "$tmp/$name.err")" >&2
		bad=1
		continue
	fi
	jq -S -f expected/normalize.jq "$tmp/$name.out" >"$tmp/exp/$name.json" || {
		echo "$name: analyze output is not the JSON normalize.jq expects" >&2
		bad=1
		continue
	}
	got_v=$(jq -r .verdict "$tmp/exp/$name.json")
	# stage names carry their spaces as "_" in TESTLIST; the status follows "="
	got_s=$(jq -r '[.stages[]] | map(split(": ") | (.[0] | gsub(" "; "_")) + "=" + .[1]) | join(" ")' "$tmp/exp/$name.json")
	if [ -n "$todo" ] && [ "$got_v" = "$verdict" ]; then
		# known wrong stages: reported, never written into expected/ (the
		# verdict is still held to TESTLIST, below otherwise)
		if [ "$got_s" != "$stages" ]; then
			echo "$name: TODO ($todo) - analyze says [$got_s], TESTLIST [$stages]" >&2
		else
			echo "$name: TODO ($todo) now agrees with TESTLIST: remove the TODO" >&2
		fi
		rm -f "$tmp/exp/$name.json"
		continue
	fi
	if [ "$got_v" != "$verdict" ] || [ "$got_s" != "$stages" ]; then
		echo "$name: REFUSED - analyze says $got_v [$got_s]" >&2
		echo "$name:   TESTLIST (by hand) says $verdict [$stages]" >&2
		bad=1
		continue
	fi
	case $verdict in GOOD | TRUSTED | FOUND) w=0 ;; *) w=1 ;; esac
	if [ "$rc" != "$w" ] || [ "$(jq -r .exit_code "$tmp/exp/$name.json")" != "$w" ]; then
		echo "$name: REFUSED - exit code $rc for verdict $verdict (want $w)" >&2
		bad=1
		continue
	fi
	if [ -e "expected/$name.json" ] && ! cmp -s "expected/$name.json" "$tmp/exp/$name.json"; then
		old_v=$(jq -r '[.verdict, .exit_code, .stages] | tostring' "expected/$name.json")
		new_v=$(jq -r '[.verdict, .exit_code, .stages] | tostring' "$tmp/exp/$name.json")
		if [ "$old_v" != "$new_v" ]; then
			echo "$name: REFUSED - expected/$name.json has another verdict or stages" >&2
			bad=1
		elif [ -z "$UPDATE" ]; then
			echo "$name: counts or device identity changed (rerun with --update-counts to accept):" >&2
			diff -u "expected/$name.json" "$tmp/exp/$name.json" >&2 || true
			bad=1
		fi
	fi
done
[ "$bad" = 0 ]; } || { echo "regen-analyze: nothing written" >&2; exit 1; }

# every case passed: move the derived captures and the expected files in
mv "$tmp"/cap/* .
mv "$tmp"/exp/*.json expected/
ls -l analyze-*.pcap usbmuxd-relay-*.pcap mid-*.pcap lab-*-darwin.pcap
