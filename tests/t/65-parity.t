#!/bin/sh
# 65-parity.t - one stage vocabulary, one set of rules: every simulated
# profile is run live with --capture (trust --pair, the cable test, and for
# forgot-host and healthy a trust that uses the stored record), then
# `linkprobe analyze` reads that capture. Both must give the same verdict, the
# same stage names and the same stage statuses. The one allowed difference is
# a stage no capture can show (reading the local pair record): it may be
# `skipped` offline.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }

# stages NAME.json: one "name:status" per line
stages() { jq -r '.stages[] | "\(.name):\(.status)"' "$1"; }

# compare LABEL LIVE.json OFFLINE.json
compare() {
	_l=$1 _live=$2 _off=$3
	like "$(jget .verdict "$_live")" "^[A-Z_]+$" "$_l: the live run reached a verdict"
	is "$(jget .verdict "$_off")" "$(jget .verdict "$_live")" "$_l: same verdict ($(jget .verdict "$_live"))"
	stages "$_live" > "$T/sl"
	# the pair record is read from this host's disk: no capture shows it
	stages "$_off" | sed 's/^pair record:skipped$/pair record:*/' > "$T/so"
	sed 's/^pair record:.*$/pair record:*/' "$T/sl" > "$T/sl2"
	if diff "$T/sl2" "$T/so" > "$T/sd"; then
		ok 0 "$_l: same stages and statuses ($(tr '\n' ' ' < "$T/sl"))"
	else
		ok 1 "$_l: same stages and statuses"
		sed 's/^/#   /' "$T/sd"
	fi
}

# live LABEL ARGS... : run live with a capture, then analyze it
live() {
	_l=$1; shift
	run_lp "$T/$_l.live" "$@" --capture "$T/$_l.pcapng" --json
	run_lp "$T/$_l.off" analyze "$T/$_l.pcapng" --json
	compare "$_l" "$T/$_l.live" "$T/$_l.off"
}

for p in $("$LP" sim --list | awk '{print $1}'); do
	PD=$T/pd-$p
	mkdir -p "$PD"
	live "$p trust --pair" trust --pair --timeout 5 --device "sim:$p" --pair-dir "$PD"
	live "$p cable-test" --cable-test --duration 1 --device "sim:$p" --pair-dir "$PD"
done

# records made in an earlier run: forgot-host refuses it (STALE_TRUST),
# locked-after-restart refuses the session (LOCKED_AFTER_RESTART), healthy uses it
for p in forgot-host locked-after-restart healthy; do
	PD=$T/rec-$p
	mkdir -p "$PD"
	run_lp "$T/rec-$p.json" trust --pair --device "sim:healthy,keep" --pair-dir "$PD" --json
	live "$p trust (stored record)" trust --timeout 5 --device "sim:$p,keep" --pair-dir "$PD"
done
is "$(jget .verdict "$T/forgot-host trust (stored record).live")" STALE_TRUST "forgot-host with a stored record is STALE_TRUST live"
is "$(jget .verdict "$T/locked-after-restart trust (stored record).live")" LOCKED_AFTER_RESTART "locked-after-restart with a stored record is LOCKED_AFTER_RESTART live"
is "$(jget .verdict "$T/healthy trust (stored record).live")" TRUSTED "healthy (keep) with its stored record is TRUSTED live"
done_testing
