#!/bin/sh
# 15-echo.sh - transfer mechanics of lp_gadget over a real UDC: with the echo
# model, libusb transfers of every awkward size (one byte, mps-1, mps, mps+1,
# multiples of 512 that need a ZLP, more than one FunctionFS read, usbmuxd's
# largest 49152) come back byte-exact and correctly terminated, at high and
# at full speed (where the gadget terminates for 64-byte packets itself).
. "$LAB_REPO/tests/lab/lib.sh"
plan 6
trap lab_cleanup EXIT
SIZES="1 63 64 65 511 512 513 1000 1024 4096 16383 16384 16385 32768 49152 65536 100000"

for prof in normal full-speed; do
	check "echo gadget up ($prof)" gadget up --profile $prof --model echo || continue
	check "enumerated ($prof)" wait_dev 10 || { gadget down; continue; }
	sp=$(cat "$(devdir)/speed")
	diag "speed $sp"
	check "echo of $(echo $SIZES | wc -w) transfer sizes at $sp Mb/s" "$LAB_BIN/lab_echo" $SIZES
	gadget down
	wait_nodev 5
done
