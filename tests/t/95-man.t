#!/bin/sh
# 95-man.t - the man page doc/linkprobe.1 is lint-clean and complete: every
# command and option of `linkprobe --help` and of each command's --help,
# every verdict, simulated profile, environment variable and exit code.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$ROOT/doc/linkprobe.1

command -v mandoc >/dev/null; ok $? "mandoc is installed (tools/bootstrap.sh)"
lint=$(mandoc -T lint -W warning "$MAN" 2>&1); rc=$?
is "$rc:$lint" "0:" "mandoc -T lint: no warnings or errors"
# style level too, except whether the pages in SEE ALSO are installed here
lint=$(mandoc -T lint -W style "$MAN" 2>&1 | grep -vE 'referenced manual not found|mandoc\.db')
is "$lint" "" "mandoc -T lint: no style messages"
mandoc -T ascii "$MAN" 2>/dev/null | col -b >$T/man.txt
like "$(head -3 $T/man.txt)" "LINKPROBE\(1\)" "the page renders as LINKPROBE(1)"
in_man() { grep -qF -- "$1" $T/man.txt; }

run_lp $T/help --help; is $? 0 "--help exits 0"
# commands: the indented words under "commands:" in --help
cmds=$(sed -n '/^commands:/,/^$/p' $T/help | awk 'NR > 1 && NF { print $1 }')
like "$cmds" "trust" "commands found in --help"
helps=$T/help
for c in $cmds; do
	run_lp $T/help-$c $c --help; is $? 0 "$c --help exits 0"
	helps="$helps $T/help-$c"
	in_man "$c"; ok $? "command $c is in the man page"
done
# options: every --long and every -x that starts an option line
opts=$(cat $helps | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
shorts=$(cat $helps | grep -oE -- '^ +-[a-zA-Z]([, ]|$)' | tr -d ' ,' | sort -u)
n=$(printf '%s\n' $opts | wc -l)
ok $([ "$n" -ge 15 ] && echo 0 || echo 1) "at least 15 long options found in the help texts ($n)"
for o in $opts $shorts; do
	in_man "$o"; ok $? "option $o is in the man page"
done
# verdicts: the names in the diagnosis module's verdict table
verdicts=$(grep -rhoE '\{ *(DIAG_)?V_[A-Z_]+, *"[A-Z_]+"' $ROOT/src/diag/ | sed -E 's/.*"([A-Z_]+)"/\1/' | grep -v '^NONE$' | sort -u)
n=$(printf '%s\n' $verdicts | wc -l)
ok $([ "$n" -ge 15 ] && echo 0 || echo 1) "at least 15 verdicts found in src/diag ($n)"
for v in $verdicts; do
	in_man "$v"; ok $? "verdict $v is in the man page"
done
run_lp $T/prof sim --list; is $? 0 "sim --list exits 0"
for p in $(awk '{ print $1 }' $T/prof); do
	in_man "$p"; ok $? "profile $p is in the man page"
done
# environment variables the program reads
envs=$(grep -rhoE 'getenv\("[A-Z_]+"\)|_ENV_[A-Z_]+ +"[A-Z_]+"' $ROOT/src $ROOT/proto $ROOT/usb |
	grep -oE '"[A-Z_]+"' | tr -d '"' | grep -v '^LINKPROBE_TEST_' | sort -u)  # test hooks are not user-facing
for v in $envs; do
	in_man "$v"; ok $? "environment variable $v is in the man page"
done
for code in 0 1 2 3; do
	sed -n '/^EXIT STATUS/,/^[A-Z]/p' $T/man.txt | grep -qE "^ +$code[[:space:]]+[A-Z]"; ok $? "exit status $code is documented"
done
done_testing
