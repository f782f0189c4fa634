#!/bin/sh
# 00-cli.t - usage, help, exit codes, option errors.
. "$(dirname "$0")/lib.sh"

run_lp $T/o --help; is $? 0 "--help exits 0"
like "$(cat $T/o)" "cable-test" "--help lists the commands"
run_lp $T/o -h; is $? 0 "-h exits 0"
for c in list cable-test trust sim; do
	run_lp $T/o $c --help; is $? 0 "$c --help exits 0"
done
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
run_lp $T/o sim; is $? 2 "sim without --list is a usage error"
run_lp $T/o sim --list; is $? 0 "sim --list exits 0"
is "$(wc -l < $T/o | tr -d ' ')" 13 "sim --list prints one line per profile (13)"
for p in healthy charge-only full-speed flaky camera-only dfu recovery locked deny never-answers forgot-host unplug-during-pair tls-reject; do
	like "$(cat $T/o)" "^$p " "profile $p is listed"
done
run_lp $T/o sim --list --json; is $? 0 "sim --list --json exits 0"
is "$(jget '.profiles | length' $T/o)" 13 "JSON profile list has 13 entries"
run_lp $T/o trust --tls-keys --device sim; is $? 2 "--tls-keys without a capture is a usage error"
done_testing
