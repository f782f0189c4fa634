#!/bin/sh
# demo.sh - what `make demo` shows: pairing with the simulated iPhone over
# usbmux + lockdown + TLS, stage by stage with timestamps, then a cable test
# on a healthy and on a full-speed (bad cable) link. Real-time clock, so the
# timings and the Trust countdown are what a user would see.
set -u
LP=${LP:-./linkprobe}
dir=$(mktemp -d "${TMPDIR:-/tmp}/linkprobe-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
run() { echo; echo "\$ $*"; "$@"; echo "(exit code $?)"; }
run $LP trust --pair --device sim:healthy --pair-dir "$dir"
run $LP trust --device sim:healthy --pair-dir "$dir"
run $LP --cable-test --device sim:healthy
run $LP --cable-test --device sim:full-speed
run $LP trust --pair --device sim:deny --pair-dir "$dir"
exit 0
