# bash completion for linkprobe(1)
# Installed as $(pkg-config --variable=completionsdir bash-completion)/linkprobe
# (make install). Commands and options come from `linkprobe --help` (and the
# command's own --help), profiles from `linkprobe sim --list`, UDIDs from
# `linkprobe list --json`, so the completion follows the program it ships with.
# tests/t/96-completion.t drives _linkprobe through COMP_WORDS/COMP_CWORD.

# the linkprobe to ask: the one being completed if it is a path, else $PATH's
_linkprobe_bin()
{
	local b=${COMP_WORDS[0]}
	case $b in
	*/*) [ -x "$b" ] && { printf '%s' "$b"; return; } ;;
	esac
	printf '%s' linkprobe
}

# the --device given earlier on the line, if any (for list --json)
_linkprobe_device_arg()
{
	local i
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} == --device ]]; then
			local d=${COMP_WORDS[i + 1]} j=$((i + 2))
			# bash splits sim:profile at ':'; glue it back
			while [[ ${COMP_WORDS[j]} == : || ${COMP_WORDS[j - 1]} == : ]] && ((j < COMP_CWORD)); do
				d+=${COMP_WORDS[j]}
				((j++))
			done
			printf '%s' "$d"
			return
		fi
	done
}

_linkprobe()
{
	local cur prev words cword lp cmd i
	if declare -F _get_comp_words_by_ref >/dev/null; then
		_get_comp_words_by_ref -n : cur prev words cword
	else
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
	fi
	lp=$(_linkprobe_bin)
	local cmds
	cmds=$("$lp" --help 2>/dev/null | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | tr '\n' ' ')

	cmd=
	for ((i = 1; i < cword; i++)); do
		case " $cmds " in *" ${words[i]} "*) cmd=${words[i]}; break ;; esac
	done

	case $prev in
	--device)
		local profiles p out=()
		profiles=$("$lp" sim --list 2>/dev/null | awk '{ print $1 }')
		for p in libusb sim replay:; do out+=("$p"); done
		for p in $profiles; do out+=("sim:$p"); done
		if [[ $cur == replay:* ]]; then
			local f
			while IFS= read -r f; do out+=("replay:$f"); done < <(compgen -f -- "${cur#replay:}")
		fi
		COMPREPLY=($(compgen -W "${out[*]}" -- "$cur"))
		declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
		return
		;;
	--udid)
		local dev args=(list --json)
		dev=$(_linkprobe_device_arg)
		[ -n "$dev" ] && args+=(--device "$dev")
		COMPREPLY=($(compgen -W "$(timeout 10 "$lp" "${args[@]}" 2>/dev/null |
			grep -oE '"udid": *"[^"]*"' | sed -E 's/.*"([^"]*)"$/\1/' | sort -u)" -- "$cur"))
		return
		;;
	--capture | --capture-streams | --capture-bus | --keylog | --report | --metrics)
		COMPREPLY=($(compgen -f -- "$cur"))
		compopt -o filenames 2>/dev/null
		return
		;;
	--pair-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		compopt -o filenames 2>/dev/null
		return
		;;
	--timeout | --duration | --usbmuxd-port | --interval)
		COMPREPLY=()
		return
		;;
	esac

	if [[ $cur == -* ]]; then
		local opts
		if [ -n "$cmd" ]; then
			opts=$("$lp" "$cmd" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
		else
			opts=$("$lp" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
		fi
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	case $cmd in
	"")
		COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		;;
	analyze)
		# capture files and directories to walk into
		local f out=()
		while IFS= read -r f; do
			if [ -d "$f" ]; then out+=("$f/")
			else case $f in *.pcap | *.pcapng | *.cap | *.pcap.gz | *.pcapng.gz) out+=("$f") ;; esac
			fi
		done < <(compgen -f -- "$cur")
		COMPREPLY=("${out[@]}")
		compopt -o filenames -o nospace 2>/dev/null
		;;
	sim)
		COMPREPLY=($(compgen -W "--list" -- "$cur"))
		;;
	*)
		COMPREPLY=()
		;;
	esac
}
complete -F _linkprobe linkprobe
