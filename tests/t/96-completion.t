#!/bin/sh
# 96-completion.t - shell completion (tools/completion/): the bash function
# _linkprobe is driven through COMP_WORDS/COMP_CWORD as bash would call it
# (with bash-completion's helpers loaded, words split at ':' like bash does);
# the zsh function parses and describes every option of --help.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BC=/usr/share/bash-completion/bash_completion

[ -r $BC ]; ok $? "bash-completion is installed (tools/bootstrap.sh)"
# comp WORD... : the completions bash would offer for the last word
comp() {
	bash -c '
		. "$1"; . "$2"; shift 2
		COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
		COMP_LINE="$*"; COMP_LINE=${COMP_LINE// : /:}; COMP_POINT=${#COMP_LINE}
		_linkprobe linkprobe "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' sh $BC "$ROOT/tools/completion/linkprobe.bash" "$LP" "$@" 2>$T/comp.err
}
has() { printf '%s\n' "$1" | grep -qxF -- "$2"; }

out=$(comp ""); for c in list cable-test trust sim analyze; do
	has "$out" "$c"; ok $? "commands: $c offered"
done
is "$(comp tr)" "trust" "'tr' completes to trust"
is "$(comp trust --ti)" "--timeout" "'trust --ti' completes to --timeout"
is "$(comp --dev)" "--device" "'--dev' completes to --device"
out=$(comp --)
for o in $("$LP" --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
	has "$out" "$o"; ok $? "option $o offered"
done
out=$(comp --device "")
has "$out" libusb; ok $? "--device offers libusb"
has "$out" replay:; ok $? "--device offers replay:"
for p in $("$LP" sim --list | awk '{print $1}'); do
	has "$out" "sim:$p"; ok $? "--device offers sim:$p"
done
# bash splits "sim:he" into sim, :, he; the function must put it together
is "$(comp --device sim : he)" "healthy" "'--device sim:he' completes the profile (colon-split words)"
is "$(comp --device sim : never)" "never-answers" "'--device sim:never' completes to never-answers"

mkdir -p $T/caps/sub && touch $T/caps/a.pcap $T/caps/b.pcapng $T/caps/c.txt
out=$(comp analyze $T/caps/)
has "$out" $T/caps/a.pcap; ok $? "analyze offers .pcap files"
has "$out" $T/caps/b.pcapng; ok $? "analyze offers .pcapng files"
has "$out" $T/caps/sub/; ok $? "analyze offers directories"
has "$out" $T/caps/c.txt; is $? 1 "analyze does not offer other files"
out=$(comp --pair-dir $T/caps/)
is "$out" "$T/caps/sub" "--pair-dir offers directories only"

run_lp $T/l list --json --device sim:healthy; is $? 0 "list --json on the simulated iPhone"
udid=$(jget '.devices[0].udid' $T/l)
like "$udid" '^[0-9a-f-]{20,}$' "the simulated iPhone has a UDID"
is "$(comp --device sim : healthy --udid "")" "$udid" "--udid offers the UDID of the --device on the line"
is "$(LINKPROBE_DEVICE=sim:healthy comp trust --udid "")" "$udid" "--udid offers the UDID of \$LINKPROBE_DEVICE"
is "$(LINKPROBE_DEVICE=sim:charge-only comp trust --udid "")" "" "--udid offers nothing when no device is connected"

# zsh
command -v zsh >/dev/null; ok $? "zsh is installed (tools/bootstrap.sh)"
zsh -n "$ROOT/tools/completion/_linkprobe"; ok $? "the zsh completion parses"
head -1 "$ROOT/tools/completion/_linkprobe" | grep -qx '#compdef linkprobe'; ok $? "the zsh completion starts with #compdef linkprobe"
for o in $("$LP" --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
	grep -qE -- "'(\\([^)]*\\)|\\*)?$o[=[]" "$ROOT/tools/completion/_linkprobe"; ok $? "zsh describes $o"
done
done_testing
