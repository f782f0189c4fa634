#!/bin/sh
# 93-hostile-device.t - a device that misbehaves on purpose
# (--device sim:healthy,hostile=MODE, src/device/sim_hostile.h): usbmux
# lengths that lie, garbage and over-nested plists, escapes and bidi text in
# DeviceName, halted and NAKing endpoints, an IN flood, and a disconnect in the
# middle of every stage. For trust --pair and the cable test, human and --json:
# the verdict the mode calls for (PROTOCOL_ERROR, USB_ERROR, DISCONNECTED) with
# the failing stage named, exit 1, no crash, no hang past the timeout (the
# virtual clock makes the 10 s timeout cost no wall time: a run taking 60 s
# of wall time is a hang), bounded memory (max RSS), and nothing the device
# chose printed raw to the terminal.
. "$(dirname "$0")/lib.sh"

# a healthy run peaks near 10 MB; under AddressSanitizer (make check
# SANITIZE=address) shadow memory and quarantine multiply that
if lp_asan; then
	RSS_MAX_KB=${RSS_MAX_KB:-524288}
else
	RSS_MAX_KB=${RSS_MAX_KB:-65536}
fi
WALL_MAX_S=60

# hrun NAME ARGS...: linkprobe ARGS with stdout in $T/NAME, stderr in
# $T/NAME.err; wall seconds in $T/NAME.wall, max RSS (kB) in $T/NAME.rss
hrun() {
	_hn=$1
	shift
	timeout 120 /usr/bin/time -o "$T/$_hn.time" -f '%e %M' "$LP" "$@" >"$T/$_hn" 2>"$T/$_hn.err"
	_rc=$?
	if [ $_rc -gt 128 ] || [ $_rc = 124 ]; then
		echo "# linkprobe died or hung (rc $_rc): $*"
		sed 's/^/# /' "$T/$_hn.err" | head -20
	fi
	# time(1) reports a signal in its first line ("Command terminated by signal")
	tail -n 1 "$T/$_hn.time" | cut -d' ' -f1 >"$T/$_hn.wall"
	tail -n 1 "$T/$_hn.time" | cut -d' ' -f2 >"$T/$_hn.rss"
	return $_rc
}

# bounded NAME DESC: the run ended on its own, in time and memory
bounded() {
	_w=$(cat "$T/$1.wall")
	_r=$(cat "$T/$1.rss")
	ok "$(awk -v w="$_w" -v max=$WALL_MAX_S 'BEGIN { exit !(w + 0 < max) }'; echo $?)" \
		"$2: ended by itself in ${_w}s of wall time"
	ok "$([ "${_r:-999999999}" -lt "$RSS_MAX_KB" ]; echo $?)" "$2: max RSS ${_r} kB < $RSS_MAX_KB kB"
}

# clean NAME DESC: no terminal control from the device in stdout or stderr:
# no ESC, no C1 control (UTF-8 c2 80-9f), no bidi override or isolate, no
# zero-width characters, no BEL
clean() {
	cat "$T/$1" "$T/$1.err" >"$T/$1.all"
	ok "$(LC_ALL=C grep -c -P '\x1b|\x07|\xc2[\x80-\x9f]|\xe2\x80[\x8b-\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]' "$T/$1.all" |
		grep -qx 0; echo $?)" "$2: no escape, C1, bidi or zero-width character printed"
}

# check MODE CMD VERDICT STAGE: CMD is "trust" or "cable"; STAGE the stage
# that must fail (its name as printed)
check() {
	_m=$1 _c=$2 _v=$3 _s=$4
	_pd=$T/pd-$_m-$_c
	mkdir -p "$_pd"
	case $_c in
	trust) set -- trust --pair --timeout 10 ;;
	cable) set -- --cable-test --duration 1 ;;
	esac
	hrun "$_m-$_c" "$@" --device "sim:healthy,hostile=$_m" --pair-dir "$_pd"
	_rc=$?
	is "$_rc" 1 "$_m, $_c: exit 1"
	like "$(cat "$T/$_m-$_c")" "^verdict: $_v " "$_m, $_c: verdict $_v"
	like "$(cat "$T/$_m-$_c")" "  $_s +FAIL " "$_m, $_c: stage '$_s' fails"
	bounded "$_m-$_c" "$_m, $_c"
	clean "$_m-$_c" "$_m, $_c"
	hrun "$_m-$_c.json" "$@" --device "sim:healthy,hostile=$_m" --pair-dir "$_pd" --json
	_rc=$?
	is "$_rc" 1 "$_m, $_c --json: exit 1"
	is "$(jget .verdict "$T/$_m-$_c.json")" "$_v" "$_m, $_c --json: verdict $_v"
	is "$(jget '[.stages[] | select(.status == "fail") | .name] | first' "$T/$_m-$_c.json")" "$_s" \
		"$_m, $_c --json: the failing stage is '$_s'"
	bounded "$_m-$_c.json" "$_m, $_c --json"
}

# mode                  trust: verdict, stage                cable test: verdict, stage
while read -r m tv ts cv cs; do
	[ -n "$m" ] || continue
	check "$m" trust "$tv" "$(echo "$ts" | tr _ ' ')"
	[ "$cv" = - ] || check "$m" cable "$cv" "$(echo "$cs" | tr _ ' ')"
done <<'EOF'
mux-short               PROTOCOL_ERROR QueryType             PROTOCOL_ERROR round_trips
mux-over                PROTOCOL_ERROR QueryType             PROTOCOL_ERROR round_trips
mux-long                PROTOCOL_ERROR QueryType             PROTOCOL_ERROR round_trips
plist-garbage           PROTOCOL_ERROR QueryType             PROTOCOL_ERROR round_trips
plist-deep              PROTOCOL_ERROR QueryType             PROTOCOL_ERROR round_trips
plist-deep-xml          PROTOCOL_ERROR QueryType             PROTOCOL_ERROR round_trips
plist-nul               PROTOCOL_ERROR QueryType             PROTOCOL_ERROR round_trips
stall                   USB_ERROR      lockdown_connect      USB_ERROR      round_trips
nak-out                 USB_ERROR      lockdown_connect      USB_ERROR      round_trips
nak-out-querytype       USB_ERROR      QueryType             USB_ERROR      round_trips
in-flood                PROTOCOL_ERROR lockdown_connect      PROTOCOL_ERROR round_trips
disconnect-descriptors  DISCONNECTED   descriptors           DISCONNECTED   descriptors
disconnect-usbmux       DISCONNECTED   usbmux                DISCONNECTED   usbmux
disconnect-lockdown     DISCONNECTED   lockdown_connect      DISCONNECTED   round_trips
disconnect-querytype    DISCONNECTED   QueryType             DISCONNECTED   round_trips
disconnect-getvalue     DISCONNECTED   device_info           -              -
disconnect-pair         DISCONNECTED   Pair                  -              -
disconnect-startsession DISCONNECTED   StartSession          -              -
disconnect-tls          DISCONNECTED   TLS                   -              -
disconnect-startservice DISCONNECTED   StartService          -              -
disconnect-stopsession  DISCONNECTED   StopSession           -              -
EOF

# a lying usbmux length: the JSON evidence says what the device broke, not
# just "protocol error" (issue 9 section 4)
like "$(jget .evidence "$T/mux-long-trust.json")" "broke usbmux framing: length field 268435456 over the 65536-byte cap" \
	"mux-long: the evidence names the length over the cap"
like "$(jget .evidence "$T/mux-over-trust.json")" "broke usbmux framing: a packet announced as [0-9]+ bytes" \
	"mux-over: the evidence names the announced length"
like "$(jget .evidence "$T/mux-short-trust.json")" "broke usbmux framing: " "mux-short: the evidence names the framing fault"
like "$(jget .evidence "$T/mux-short-cable.json")" "first: .*broke usbmux framing: " "mux-short, cable: the first error names the framing fault"
# the over-nested plists are refused for their depth, before libplist parses them
like "$(jget .evidence "$T/plist-deep-trust.json")" "QueryType" "plist-deep: the evidence names QueryType"
# the flood ends at the usbmux queue cap, not at the deadline
like "$(cat "$T/in-flood-trust.err")" "output queue over its cap" "in-flood: stopped by the queue cap"

# analyze on the capture of each lie agrees with the live run: the device
# broke the protocol (PROTOCOL_ERROR, the violation named), not "lockdownd
# never answered QueryType" (LOCKDOWN_DOWN: a phone problem of another kind)
for m in mux-short mux-over mux-long plist-garbage plist-deep plist-nul; do
	run_lp "$T/$m-cap.json" trust --device "sim:healthy,hostile=$m" --capture "$T/$m.pcapng" --json
	run_lp "$T/$m-an.json" analyze "$T/$m.pcapng" --json
	is "$(jget .verdict "$T/$m-an.json")" "$(jget .verdict "$T/$m-cap.json")" \
		"$m: analyze on its capture gives the live verdict"
	like "$(jget .evidence "$T/$m-an.json")" "the device broke the protocol" \
		"$m: analyze names the device's violation"
done

# and the link-level ones: a halted endpoint; OUT NAKed forever (the host's
# request never reaches the device: USB_ERROR as live, not "no answer to the
# connection request", which would blame lockdownd); an IN flood while OUT is
# NAKed (stopped at the same usbmux queue cap as the live run: PROTOCOL_ERROR,
# not "the capture ends mid-exchange")
for m in stall nak-out nak-out-querytype in-flood; do
	run_lp "$T/$m-cap.json" trust --timeout 10 --device "sim:healthy,hostile=$m" \
		--capture "$T/$m.pcapng" --json
	run_lp "$T/$m-an.json" analyze "$T/$m.pcapng" --json
	is "$(jget .verdict "$T/$m-an.json")" "$(jget .verdict "$T/$m-cap.json")" \
		"$m: analyze on its capture gives the live verdict"
	is "$(jget '[.stages[] | select(.status == "fail") | .name] | first' "$T/$m-an.json")" \
		"$(jget '[.stages[] | select(.status == "fail") | .name] | first' "$T/$m-cap.json")" \
		"$m: ... and fails the same stage"
done
like "$(jget .evidence "$T/nak-out-cap.json")" "took none of the host's bulk OUT transfers for 10\.[0-9] s" \
	"nak-out: the live run says the device never took the request, not just 'timed out'"
like "$(jget .evidence "$T/nak-out-an.json")" "took none of the host's bulk OUT transfers for [0-9.]+ s" \
	"nak-out: analyze says the same"
# OUT NAKed once lockdownd's connection is open: the QueryType request never
# left, so lockdownd is not the one to blame ("never answered QueryType")
like "$(jget .evidence "$T/nak-out-querytype-cap.json")" "took none of the host's bulk OUT transfers for 10\.[0-9] s" \
	"nak-out-querytype: the live run says the QueryType request never left"
unlike "$(jget .evidence "$T/nak-out-querytype-cap.json")" "never answered" \
	"nak-out-querytype: ... and does not blame lockdownd"
like "$(jget .evidence "$T/nak-out-querytype-an.json")" "took none of the host's bulk OUT transfers for [0-9.]+ s" \
	"nak-out-querytype: analyze says the same"
# the cable test too: usbmux and lockdown moved, then OUT sat NAKed - the
# device's endpoint, not a FLAKY cable, live and from the capture alike
run_lp "$T/nq-cable.json" --cable-test --device sim:healthy,hostile=nak-out-querytype \
	--capture "$T/nq-cable.pcapng" --json
run_lp "$T/nq-cable-an.json" analyze "$T/nq-cable.pcapng" --json
is "$(jget .verdict "$T/nq-cable.json")" USB_ERROR "nak-out-querytype, cable: USB_ERROR, not FLAKY"
like "$(jget .evidence "$T/nq-cable.json")" "stopped taking data while it stayed on the bus" \
	"nak-out-querytype, cable: the evidence says OUT stopped"
is "$(jget .verdict "$T/nq-cable-an.json")" USB_ERROR "nak-out-querytype, cable: analyze agrees"
like "$(jget .evidence "$T/nq-cable-an.json")" "after 1 usbmux and 0 lockdown round trips" \
	"nak-out-querytype, cable: analyze counts the NAKed QueryType as no round trip, as live"
like "$(jget .remedy "$T/nq-cable.json")" "restart the iPhone" "nak-out-querytype, cable: the remedy is the phone's"
like "$(jget .evidence "$T/in-flood-an.json")" \
	"device sent over 2048 usbmux packets while taking none of the host's OUT transfers" \
	"in-flood: analyze names the flood"

# A DeviceName full of terminal controls: the run succeeds (the name is only
# data) and nothing of it reaches the terminal raw, in either output
PD=$T/pd-name
hrun name trust --pair --device sim:healthy,keep,hostile=name-escape --pair-dir "$PD"
is "$?" 0 "name-escape: trust --pair still pairs (exit 0)"
like "$(cat "$T/name")" "^verdict: TRUSTED" "name-escape: TRUSTED"
clean name "name-escape, human"
like "$(cat "$T/name")" "name .*Evil.*enohPi" "name-escape: the name is shown, sanitized"
is "$(grep -c '^verdict:' "$T/name")" 1 "name-escape: the newline in the name cannot forge a verdict line"
hrun name.json trust --device sim:healthy,keep,hostile=name-escape --pair-dir "$PD" --json
is "$?" 0 "name-escape --json: exit 0"
clean name.json "name-escape, --json"
like "$(jget .device.name "$T/name.json")" "Evil" "name-escape --json: the name is there, sanitized"
hrun name-cable --cable-test --duration 1 --device sim:healthy,keep,hostile=name-escape --pair-dir "$PD"
is "$?" 0 "name-escape: the cable test is GOOD"
clean name-cable "name-escape, cable test"

# an unknown mode is a usage error that lists the modes
hrun bad trust --device sim:healthy,hostile=frob
is "$?" 2 "unknown hostile mode: usage error"
like "$(cat "$T/bad.err")" "unknown hostile mode 'frob' \(mux-short, " "the modes are listed"
done_testing
