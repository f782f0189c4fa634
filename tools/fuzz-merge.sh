#!/bin/sh
# fuzz-merge.sh [NAME...] - minimise what `make fuzz-run` or `make fuzz-campaign` found into the
# committed corpora: for each harness, libFuzzer's -merge=1 picks, from
# tests/fuzz/corpus/NAME and build/fuzz-new/NAME, a minimal set of inputs with
# the same coverage; it replaces the fuzzer-made inputs (named by SHA-1) of the corpus;
# named files (hand-made seeds, regression inputs) always stay.
set -eu
cd "$(dirname "$0")/.."
# by default every harness that has a build/fuzz-new/NAME directory
names=${*:-$(find build/fuzz-new -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort)}
for n in $names; do
	bin=build/fuzz/fuzz_$n
	[ -x "$bin" ] && [ -d "build/fuzz-new/$n" ] || { echo "fuzz-merge: skip $n"; continue; }
	tmp=$(mktemp -d)
	nice "$bin" -merge=1 "$tmp" "tests/fuzz/corpus/$n" "build/fuzz-new/$n" >"build/fuzz-new/$n.merge.log" 2>&1
	before=$(ls "tests/fuzz/corpus/$n" | wc -l)
	[ -n "$(ls "$tmp")" ] || { echo "fuzz-merge $n: merge produced nothing"; rm -rf "$tmp"; continue; }
	# fuzzer-made inputs are named by their SHA-1; every named file stays
	find "tests/fuzz/corpus/$n" -type f -regextype egrep -regex '.*/[0-9a-f]{40}' -delete
	cp "$tmp"/* "tests/fuzz/corpus/$n/"
	rm -rf "$tmp"
	echo "fuzz-merge $n: $before -> $(ls "tests/fuzz/corpus/$n" | wc -l) inputs"
done
