#!/bin/sh
# 86-terminal.t - linkprobe at a terminal: the Trust countdown and the cable
# test's progress are one line redrawn in place that fits 60 and 80 columns
# (tmux: a real TIOCGWINSZ; script: COLUMNS), redrawing without colour,
# TERM=dumb without escapes, NO_COLOR only when non-empty; prompts on stderr
# under --json; -q; warnings folded; -v/-vv/-vvv; --version.
. "$(dirname "$0")/lib.sh"
PD=$T/pd
ESC=$(printf '\033')
CR=$(printf '\r')

# --- tmux: the countdown at 60 and 80 columns, on the real clock -------------
if command -v tmux >/dev/null 2>&1; then
	tm() { tmux -S "$T/tmux.sock" -f /dev/null "$@"; }
	for cols in 60 80; do
		tm new-session -d -s lp -x "$cols" -y 25 "env -i PATH=/usr/bin:/bin TERM=xterm HOME=$T sh"
		tm send-keys -t lp "'$LP' trust --pair --device sim:never-answers,clock=real --timeout 5 --pair-dir '$PD-$cols'; echo DONE=\$?" Enter
		n=0 # RSA key generation comes first: wait for the countdown
		while ! grep -qE 'left, attempt|^DONE=' "$T/mid-$cols" 2>/dev/null && [ $n -lt 100 ]; do
			sleep 0.3; n=$((n + 1)); tm capture-pane -t lp -p -J | sed 's/ *$//' >"$T/mid-$cols"
		done
		n=0
		while ! grep -q '^DONE=' "$T/end-$cols" 2>/dev/null && [ $n -lt 40 ]; do
			sleep 0.5; n=$((n + 1)); tm capture-pane -t lp -p -J | sed 's/ *$//' >"$T/end-$cols"
		done
		tm kill-server
		is "$(grep -c 'left, attempt' "$T/mid-$cols")" 1 "$cols columns: the countdown is one line mid-wait"
		w=$(grep 'left, attempt' "$T/mid-$cols" | awk '{ print length($0) }')
		ok $([ "${w:-999}" -lt "$cols" ]; echo $?) "$cols columns: the countdown line fits ($w < $cols)"
		like "$(grep 'left, attempt' "$T/mid-$cols")" 'Pair .*\([0-9]+ s left, attempt [0-9]+\)$' \
			"$cols columns: the seconds left survive the cut"
		like "$(grep 'left, attempt' "$T/mid-$cols")" 'tap Trust' \
			"$cols columns: the instruction (tap Trust) survives the cut"
		is "$(grep -c 'left, attempt' "$T/end-$cols")" 0 "$cols columns: the countdown is erased when Pair ends"
		like "$(cat "$T/end-$cols")" 'verdict: TRUST_PENDING' "$cols columns: verdict shown"
		like "$(cat "$T/end-$cols")" 'DONE=1' "$cols columns: exit 1"
	done
else
	echo "# tmux not installed: skipping its part"
fi

# --- script: raw bytes on a pty ------------------------------------------------
pty() { # pty OUT ENV... -- ARGS : runs linkprobe on a pty, raw output in OUT
	out=$1; shift
	envs=
	while [ "$1" != -- ]; do envs="$envs $1"; shift; done
	shift
	timeout 120 script -qec "env $envs '$LP' $*" /dev/null >"$out" 2>&1 </dev/null
}
# segments between \r and \n that carry progress, and their widths
segments() { tr '\r' '\n' <"$1" | sed "s/$ESC\[[0-9;]*[A-Za-z]//g" | grep -E "$2"; }

pty "$T/dumb" TERM=dumb COLUMNS=60 -- trust --pair --device sim:healthy --pair-dir "$PD-dumb"
like "$(cat "$T/dumb")" "verdict: TRUSTED" "TERM=dumb: trust runs on a pty"
is "$(grep -c "$ESC" "$T/dumb")" 0 "TERM=dumb: no escape sequence at all"
like "$(grep -c "$CR.*left, attempt" "$T/dumb")" "^[1-9]" "TERM=dumb: the countdown is still redrawn with \\r"
is "$(segments "$T/dumb" 'left, attempt' | awk 'length($0) > 59' | wc -l | tr -d ' ')" 0 \
	"TERM=dumb COLUMNS=60: every countdown redraw fits 59 columns"

pty "$T/nocolor" TERM=xterm NO_COLOR=1 COLUMNS=80 -- trust --pair --device sim:healthy --pair-dir "$PD-nc"
like "$(cat "$T/nocolor")" "${CR}${ESC}\[K.*left, attempt" "NO_COLOR=1: the countdown is redrawn in place"
is "$(grep -c "$ESC\[[0-9;]*m" "$T/nocolor")" 0 "NO_COLOR=1: no colour"
is "$(segments "$T/nocolor" 'left, attempt' | awk 'length($0) > 79' | wc -l | tr -d ' ')" 0 \
	"COLUMNS=80: every countdown redraw fits 79 columns"

pty "$T/empty" TERM=xterm NO_COLOR= -- trust --device sim:healthy --pair-dir "$PD-nc"
like "$(cat "$T/empty")" "$ESC\[32mok" "NO_COLOR= (empty) does not turn colour off"

pty "$T/cable" TERM=xterm COLUMNS=60 -- --cable-test --device sim:flaky --pair-dir "$PD-cable"
like "$(cat "$T/cable")" "round trips +[0-9.]+ of 2\.0 s, [0-9]+ rounds, [0-9]+ errors so far" \
	"cable test: progress with elapsed of total, rounds and errors"
like "$(segments "$T/cable" 'errors so far' | tail -1)" "[1-9][0-9]* errors so far" "cable test: errors counted as they come"
is "$(segments "$T/cable" 'errors so far' | awk 'length($0) > 59' | wc -l | tr -d ' ')" 0 \
	"cable test: the progress line fits 59 columns"
like "$(sed "s/$ESC\[[0-9;]*[A-Za-z]//g" "$T/cable")" "verdict: FLAKY" "cable test: verdict"

# --- off a terminal --------------------------------------------------------------
run_lp "$T/c.txt" --cable-test --device sim:flaky --pair-dir "$PD-cable"
unlike "$(cat "$T/c.txt")" "errors so far" "cable progress is not printed off a terminal"

run_lp "$T/j.json" trust --pair --device sim:healthy --pair-dir "$PD-json" --json
is $? 0 "--json trust exits 0"
is "$(jget .verdict "$T/j.json")" TRUSTED "--json: stdout is the JSON object alone"
like "$(cat "$T/j.json.err")" "tap Trust.*Trust This Computer" "--json: the tap-Trust prompt reaches stderr"

run_lp "$T/q.txt" -q trust --pair --device sim:deny --pair-dir "$PD-q"
is $? 1 "-q: exit code unchanged"
is "$(wc -l <"$T/q.txt" | tr -d ' ')" 1 "-q: one line on stdout"
like "$(cat "$T/q.txt")" "^verdict: DENIED - stage Pair" "-q: it is the verdict line"
is "$(wc -c <"$T/q.txt.err" | tr -d ' ')" 0 "-q: nothing on stderr off a terminal"

# --- the log ------------------------------------------------------------------------
run_lp "$T/w0.txt" --cable-test --device sim:flaky --pair-dir "$PD-cable"
n0=$(grep -c 'warn: hostlink: OUT transfer [0-9]' "$T/w0.txt.err")
is "$n0" 1 "default: a repeated warning is printed once"
like "$(cat "$T/w0.txt.err")" 'linkprobe: warn: [0-9]+ more like "hostlink: OUT transfer # on ep 0x# ended ERROR"' \
	"default: ... and the repeats are one line with a count"
run_lp "$T/w1.txt" -v --cable-test --device sim:flaky --pair-dir "$PD-cable"
n1=$(grep -c 'warn: hostlink: OUT transfer [0-9]' "$T/w1.txt.err")
ok $([ "$n1" -gt 10 ]; echo $?) "-v: every warning ($n1)"

for v in "" -v -vv -vvv; do
	run_lp "$T/v$v.txt" $v trust --pair --device sim:healthy --pair-dir "$PD-v$v"
done
is "$(grep -c ': info: ' "$T/v.txt.err")" 0 "default: no info lines"
like "$(cat "$T/v-v.txt.err")" 'linkprobe: info: hostlink: selecting configuration' "-v adds protocol milestones"
is "$(grep -c ': debug: ' "$T/v-v.txt.err")" 0 "-v: no debug lines"
like "$(cat "$T/v-vv.txt.err")" 'linkprobe: debug: xfer [0-9]+ ep 0x04 bulk OUT: [0-9]+ of [0-9]+ bytes in' "-vv adds one line per transfer"
is "$(grep -c ': trace: ' "$T/v-vv.txt.err")" 0 "-vv: no hex dumps"
like "$(cat "$T/v-vvv.txt.err")" 'linkprobe: trace:   0000  ([0-9a-f]{2} ){8} ([0-9a-f]{2} ){8} *\|' "-vvv adds payload hex dumps"
like "$(cat "$T/v-vvv.txt.err")" '\|[^|]*REDACTED[^|]*\|' "-vvv: the EscrowBag in the Pair reply is redacted"
unlike "$(cat "$T/v-vvv.txt.err")" 'BEGIN (RSA )?PRIVATE KEY' "-vvv: no private key in the dumps"

# --- versions -----------------------------------------------------------------------
for opt in --version -V; do
	run_lp "$T/ver.txt" $opt
	is $? 0 "$opt exits 0"
	like "$(head -1 "$T/ver.txt")" '^linkprobe [0-9]+\.[0-9]+\.[0-9]+$' "$opt: linkprobe's version"
	like "$(cat "$T/ver.txt")" 'libusb +1\.0\.[0-9]+' "$opt: libusb (run time)"
	like "$(cat "$T/ver.txt")" 'libpcap +libpcap version [0-9]' "$opt: libpcap (run time)"
	like "$(cat "$T/ver.txt")" "libplist +$(pkg-config --modversion libplist-2.0) \\(built against" "$opt: libplist (build time, said so)"
	like "$(cat "$T/ver.txt")" 'OpenSSL +OpenSSL 3\.' "$opt: OpenSSL (run time)"
	like "$(cat "$T/ver.txt")" "json-c +$(pkg-config --modversion json-c)" "$opt: json-c (run time)"
done
done_testing
