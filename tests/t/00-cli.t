#!/bin/sh
# 00-cli.t - usage, help, exit codes, option errors.
. "$(dirname "$0")/lib.sh"

run_lp $T/o --help; is $? 0 "--help exits 0"
like "$(cat $T/o)" "cable-test" "--help lists the commands"
run_lp $T/o -h; is $? 0 "-h exits 0"
for c in list cable-test trust sim analyze; do
	run_lp $T/o $c --help; is $? 0 "$c --help exits 0"
	like "$(head -1 $T/o)" "^usage: linkprobe (--)?$c" "$c --help shows $c's usage"
	run_lp $T/o $c -h; is $? 0 "$c -h exits 0"
	like "$(head -1 $T/o)" "^usage: linkprobe (--)?$c" "$c -h shows $c's usage"
	run_lp $T/o help $c; is $? 0 "help $c exits 0"
	like "$(head -1 $T/o)" "^usage: linkprobe (--)?$c" "help $c shows $c's usage"
done
# each command's help lists its own options and not the others'
run_lp $T/o trust --help
like "$(cat $T/o)" "--pair-dir DIR" "trust --help shows --pair-dir"
like "$(cat $T/o)" "--timeout SECONDS" "trust --help shows --timeout"
unlike "$(cat $T/o)" "--duration" "trust --help does not show cable-test's --duration"
unlike "$(cat $T/o)" "--usbmuxd-port" "trust --help does not show analyze's --usbmuxd-port"
run_lp $T/o --cable-test --help; is $? 0 "--cable-test --help exits 0"
like "$(cat $T/o)" "--duration SECONDS" "--cable-test --help shows --duration"
unlike "$(cat $T/o)" "--pair " "--cable-test --help does not show trust's --pair"
run_lp $T/o analyze --help
like "$(cat $T/o)" "--usbmuxd-port N" "analyze --help shows --usbmuxd-port"
unlike "$(cat $T/o)" "--device" "analyze --help does not show --device"
run_lp $T/o sim --help
like "$(cat $T/o)" "--list" "sim --help shows --list"
# the general help still names every option, with the commands that take it
run_lp $T/o --help
for o in device udid via-usbmuxd pair pair-dir timeout duration capture capture-streams tls-keys keylog no-redact list usbmuxd-port json no-color verbose; do
	like "$(cat $T/o)" "--$o" "--help lists --$o"
done
like "$(cat $T/o)" "--duration SECONDS .*\[cable-test,watch\]" "--help says --duration is cable-test's and watch's"

# options a command does not use are rejected, naming the option and the command
run_lp $T/o trust --duration 3 --device sim; is $? 2 "trust --duration is a usage error"
like "$(cat $T/o.err)" "option '--duration' is not used by 'trust'" "the error names the option and the command"
like "$(cat $T/o.err)" "linkprobe trust --help" "the error points at trust --help"
run_lp $T/o --cable-test --pair --device sim; is $? 2 "--cable-test --pair is a usage error"
like "$(cat $T/o.err)" "option '--pair' is not used by 'cable-test'" "cable-test names --pair"
run_lp $T/o analyze x.pcap --device sim; is $? 2 "analyze --device is a usage error"
like "$(cat $T/o.err)" "option '--device' is not used by 'analyze'" "analyze names --device"
run_lp $T/o sim --list --timeout 3; is $? 2 "sim --timeout is a usage error"
run_lp $T/o list --usbmuxd-port 5; is $? 2 "list --usbmuxd-port is a usage error"
run_lp $T/o --cable-test --via-usbmuxd; is $? 2 "--cable-test --via-usbmuxd is a usage error"
like "$(cat $T/o.err)" "'--via-usbmuxd' is not used by 'cable-test'" "--via-usbmuxd names the command"

# usage errors name the option
run_lp $T/o trust --device; is $? 2 "--device without its argument is a usage error"
like "$(cat $T/o.err)" "option '--device' requires an argument" "the missing argument is named"
run_lp $T/o list --json=yes; is $? 2 "--json=yes is a usage error"
like "$(cat $T/o.err)" "option '--json' takes no argument" "a flag given a value is named"
run_lp $T/o list --bogus; is $? 2 "an unknown option is a usage error"
like "$(cat $T/o.err)" "unknown or ambiguous option '--bogus'" "the unknown option is named"
run_lp $T/o list -x; is $? 2 "an unknown short option is a usage error"
like "$(cat $T/o.err)" "unknown option '-x'" "the unknown short option is named"
run_lp $T/o trust --timeout nan --device sim; is $? 2 "--timeout nan is a usage error"
like "$(cat $T/o.err)" "option '--timeout' wants seconds" "the bad number names --timeout"
run_lp $T/o analyze --usbmuxd-port 70000 x; is $? 2 "--usbmuxd-port 70000 is a usage error"
like "$(cat $T/o.err)" "option '--usbmuxd-port'" "the bad port names --usbmuxd-port"
run_lp $T/o help frobnicate; is $? 2 "help for an unknown command is a usage error"

# under --json, every usage error is the same {"error", "exit_code": 2} object on stdout
i=0
while read -r args; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	run_lp $T/j$i --json $args; rc=$?
	is "$rc" 2 "--json $args: exit 2"
	is "$(jq -r '.exit_code' $T/j$i 2>/dev/null)" 2 "--json $args: exit_code 2 in the JSON"
	like "$(jq -r '.error' $T/j$i 2>/dev/null)" "." "--json $args: the error is a sentence"
	is "$(jq -r 'keys | join(",")' $T/j$i 2>/dev/null)" "error,exit_code" "--json $args: only error and exit_code"
done <<'ARGS'
trust --device
list --bogus
frobnicate
trust --duration 3
trust --timeout abc
--cable-test --duration 0
list --device nonsense
list --device sim:nosuchprofile
sim
analyze
analyze a b
trust --tls-keys --device sim
--cable-test trust
ARGS
run_lp $T/o --json; is $? 2 "--json with no command: exit 2"
is "$(jq -r '.exit_code' $T/o)" 2 "--json with no command: JSON error"
run_lp $T/o --version; is $? 0 "--version exits 0"
like "$(cat $T/o)" "^linkprobe [0-9]" "--version prints the version"
run_lp $T/o; is $? 2 "no command is a usage error (2)"
run_lp $T/o frobnicate; is $? 2 "unknown command is a usage error (2)"
like "$(cat $T/o.err)" "unknown command" "unknown command is named"
run_lp $T/o list --bogus; is $? 2 "unknown option is a usage error (2)"
run_lp $T/o trust --timeout abc; is $? 2 "--timeout with a non-number is a usage error"
run_lp $T/o --cable-test --duration 0; is $? 2 "--duration 0 is a usage error"
run_lp $T/o list --device nonsense; is $? 2 "unknown --device is a usage error"
like "$(cat $T/o.err)" "unknown --device" "bad --device is explained"
run_lp $T/o list --device sim:nosuchprofile; is $? 2 "unknown sim profile is a usage error"
run_lp $T/o list --device sim:healthy,frob=1; is $? 2 "unknown sim option is a usage error"
run_lp $T/o list --device sim:healthy,reenum=later; is $? 2 "reenum= with an unknown point is a usage error"
like "$(cat $T/o.err)" "reenum wants trust, pair or session" "reenum= says what it takes"
run_lp $T/o list --device sim:healthy,reenum=pair+5x; is $? 2 "reenum= with a bad delay is a usage error"
run_lp $T/o sim; is $? 2 "sim without --list is a usage error"
run_lp $T/o sim --list; is $? 0 "sim --list exits 0"
is "$(wc -l < $T/o | tr -d ' ')" 19 "sim --list prints one line per profile (19)"
for p in healthy charge-only full-speed flaky camera-only dfu recovery locked deny never-answers forgot-host unplug-during-pair slow-link tls-reject usbc-on-usb2 usbc-superspeed supervised locked-after-restart reenum-after-trust; do
	like "$(cat $T/o)" "^$p " "profile $p is listed"
done
run_lp $T/o sim --list --json; is $? 0 "sim --list --json exits 0"
is "$(jget '.profiles | length' $T/o)" 19 "JSON profile list has 19 entries"
run_lp $T/o trust --tls-keys --device sim; is $? 2 "--tls-keys without a capture is a usage error"
done_testing
