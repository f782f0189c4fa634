#!/bin/sh
# 27-lockdown-errors.t - lockdown refusals the device can answer to Pair,
# StartSession and StartService (doc/protocol.md 4.4): each reaches its own
# verdict with a sentence and a remedy of its own, never the generic
# protocol error, and `analyze` on the run's capture agrees. The simulated
# lockdownd answers them on request (sim options pair-error=, session-error=,
# service-error=); tests/unit/test_diag.c walks every string of the table.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }
PD=$T/pd
mkdir -p "$PD"
# a stored record the device knows, for the StartSession/StartService rows
run_lp $T/rec.json trust --pair --device sim:healthy,keep --pair-dir "$PD" --json
is "$(jget .verdict $T/rec.json)" TRUSTED "a stored pairing to start from"

# OPTION  ERROR  STAGE  VERDICT  (a pair-error row pairs afresh)
while read -r opt err stage verdict; do
	l="$opt=$err"
	if [ "$opt" = pair-error ]; then
		set -- trust --pair --timeout 5 --device "sim:healthy,$opt=$err" --pair-dir "$T/pd-$err"
	else
		set -- trust --timeout 5 --device "sim:healthy,keep,$opt=$err" --pair-dir "$PD"
	fi
	run_lp "$T/l.json" "$@" --capture "$T/c.pcapng" --json; rc=$?
	is "$(jget .verdict $T/l.json)" "$verdict" "$l: $verdict"
	is "$rc" 1 "$l: exit 1"
	is "$(jq -r --arg s "$stage" '.stages[] | select(.status == "fail") | .name' $T/l.json)" "$stage" "$l: stage $stage fails"
	like "$(jq -r '.stages[] | select(.status == "fail") | .detail' $T/l.json)" "lockdown error $err: .{20}" "$l: the stage names the error and what it means"
	unlike "$(jget .remedy $T/l.json)" "breaks the protocol" "$l: not the protocol error's remedy"
	like "$(jget .evidence $T/l.json)" "stage $stage: lockdown error $err" "$l: evidence names stage and error"
	run_lp "$T/o.json" analyze "$T/c.pcapng" --json
	if [ "$stage" = StartService ]; then
		# StartService travels inside session TLS: a capture without keys
		# cannot show the refusal, and analyze does not claim a service ran
		is "$(jq -r '.stages[] | select(.name == "StartService") | .status' $T/o.json)" skipped "$l: analyze does not claim a service started"
		continue
	fi
	is "$(jget .verdict $T/o.json)" "$verdict" "$l: analyze on the capture agrees"
	off=$(jget .remedy $T/o.json)
	case $(jget .remedy $T/l.json) in "$off"*) r=0 ;; *) r=1 ;; esac
	ok $r "$l: same remedy offline"
done <<'EOF_T'
pair-error MCChallengeRequired Pair SUPERVISED
pair-error MCProtected Pair PAIRING_BLOCKED
pair-error FMiPProtected Pair PAIRING_BLOCKED
pair-error PairingProhibitedOverThisConnection Pair PAIRING_BLOCKED
pair-error SavePairRecordFailed Pair DEVICE_REFUSED
pair-error InvalidPairRecord Pair STALE_TRUST
pair-error MissingActivationRecord Pair DEVICE_REFUSED
session-error PasswordProtected StartSession LOCKED_AFTER_RESTART
session-error InvalidHostID StartSession STALE_TRUST
session-error SessionActive StartSession DEVICE_REFUSED
session-error InvalidConnection StartSession DEVICE_REFUSED
service-error EscrowLocked StartService LOCKED_AFTER_RESTART
service-error InvalidService StartService DEVICE_REFUSED
service-error ServiceLimit StartService DEVICE_REFUSED
service-error ServiceProhibited StartService PAIRING_BLOCKED
EOF_T

# locked while pairing and locked since a restart get different remedies
run_lp $T/a.json trust --pair --timeout 3 --device sim:locked-after-restart --pair-dir "$T/pd-lar" --json
is "$(jget .verdict $T/a.json)" LOCKED "locked-after-restart, pairing: LOCKED"
run_lp $T/b.json trust --device sim:locked-after-restart,keep --pair-dir "$PD" --json
is "$(jget .verdict $T/b.json)" LOCKED_AFTER_RESTART "locked-after-restart, stored record: LOCKED_AFTER_RESTART"
like "$(jget .remedy $T/b.json)" "not been unlocked since.*Do not pair again" "after a restart: unlock once, do not pair again"
unlike "$(jget .remedy $T/a.json)" "Do not pair again" "while pairing: the locked-screen remedy"

# PasswordProtected to StartService: "restarted, not unlocked since" only when
# the EscrowBag that unlocks its keybag went with the request; without it a
# locked device refuses the same way, and that is an ordinary lock
run_lp $T/e1.json trust --device "sim:healthy,keep,service-error=PasswordProtected" --pair-dir "$PD" --json
like "$(jget .evidence $T/e1.json)" "stage StartService: lockdown error PasswordProtected" "StartService PasswordProtected, EscrowBag sent: the stage"
is "$(jget .verdict $T/e1.json)" LOCKED_AFTER_RESTART "StartService PasswordProtected with the EscrowBag sent: LOCKED_AFTER_RESTART"
rm -rf "$T/pd-nobag"; cp -r "$PD" "$T/pd-nobag"
rec=$(ls "$T"/pd-nobag/*.plist | grep -v SystemConfiguration | head -n 1)
plistutil -i "$rec" -o "$T/r.xml" -f xml >/dev/null 2>&1
awk '/<key>EscrowBag<\/key>/ { k = 1; next }
     k && /<data>/ { skip = !/<\/data>/; k = 0; next }
     skip { if (/<\/data>/) skip = 0; next } { print }' "$T/r.xml" >"$T/r2.xml"
plistutil -i "$T/r2.xml" -o "$rec" -f bin >/dev/null 2>&1
run_lp $T/e0.json trust --device "sim:healthy,keep,service-error=PasswordProtected" --pair-dir "$T/pd-nobag" --json; rc=$?
like "$(jget .evidence $T/e0.json)" "stage StartService: lockdown error PasswordProtected.*no EscrowBag" "StartService PasswordProtected, no EscrowBag in the record: the evidence says none was sent"
is "$(jget .verdict $T/e0.json)" LOCKED "StartService PasswordProtected without an EscrowBag: LOCKED"
is "$rc" 1 "StartService PasswordProtected without an EscrowBag: exit 1"
unlike "$(jget .remedy $T/e0.json)" "Do not pair again|trust --pair" "without an EscrowBag: the ordinary unlock remedy, no pairing advice"
like "$(jget .remedy $T/e0.json)" "Unlock" "without an EscrowBag: unlock it"

# a supervised device: the challenge is named, the Trust dialog never came up
run_lp $T/s.json trust --pair --device sim:supervised --pair-dir "$T/pd-sup" --json
is "$(jget .verdict $T/s.json)" SUPERVISED "supervised: SUPERVISED"
like "$(jget .remedy $T/s.json)" "supervis.*Apple Configurator" "supervised: pair from the supervising host"

# keys the device refuses are named, and the run carries on
run_lp $T/g.json trust --pair --device "sim:healthy,prohibit=ProductType+ProductVersion" --pair-dir "$T/pd-gp" --capture $T/g.pcapng --json
is "$(jget .verdict $T/g.json)" TRUSTED "GetProhibited keys: the run carries on (TRUSTED)"
is "$(jq -r '.device.refused_keys | join(",")' $T/g.json)" "ProductType,ProductVersion" "GetProhibited keys in the JSON"
like "$(jq -r '.stages[] | select(.name == "device info") | .detail' $T/g.json)" "refused to give ProductType, ProductVersion \(GetProhibited\)" "GetProhibited keys named in the device-info stage"
run_lp $T/go.json analyze $T/g.pcapng --json
is "$(jq -r '.device.refused_keys | join(",")' $T/go.json)" "ProductType,ProductVersion" "analyze names the refused keys too"
# without DevicePublicKey there is no pairing, and the evidence says why
run_lp $T/k.json trust --pair --device "sim:healthy,prohibit=DevicePublicKey" --pair-dir "$T/pd-pk" --json
is "$(jget .verdict $T/k.json)" PAIRING_BLOCKED "DevicePublicKey refused: PAIRING_BLOCKED"
like "$(jget .evidence $T/k.json)" "DevicePublicKey was refused" "DevicePublicKey refused: named in the evidence"
run_lp $T/bad.json trust --device "sim:healthy,pair-error=NoSuchThing" --json
is "$?" 2 "an unknown lockdown error string is a usage error"
done_testing
