#!/bin/sh
# 10-trust.t - `linkprobe trust` against the simulated iPhone: pairing end to
# end over usbmux + lockdown + TLS, record reuse, the pair record on disk.
. "$(dirname "$0")/lib.sh"
PD=$T/lockdown

run_lp $T/a.json trust --pair --device sim:healthy,keep --pair-dir "$PD" --json
is $? 0 "trust --pair exits 0"
is "$(jget .verdict $T/a.json)" TRUSTED "verdict TRUSTED"
is "$(jget '[.stages[].status] | map(select(. != "ok")) | length' $T/a.json)" 0 "every stage ok"
is "$(jget '[.stages[].name] | join(",")' $T/a.json)" \
	"find device,descriptors,usbmux,lockdown connect,QueryType,device info,pair record,Pair,StartSession,TLS,StartService,StopSession" \
	"all stages in order, Pair included"
like "$(jget '.stages[] | select(.name=="TLS") | .detail' $T/a.json)" "TLSv1\.[23]" "TLS stage names the protocol"
like "$(jget '.stages[] | select(.name=="TLS") | .detail' $T/a.json)" "presented the DeviceCertificate of the pair record" "TLS stage: the device proved the paired key"
like "$(jget '.stages[] | select(.name=="StartService") | .detail' $T/a.json)" "com\.apple\.mobilebackup2 on port [0-9]+" "backup service started"
like "$(jget '.stages[] | select(.name=="Pair") | .duration_ns' $T/a.json)" "^2[0-9]{9}$" "Pair waited ~2 s for the Trust tap (virtual clock)"
is "$(jget '.device.vid' $T/a.json):$(jget '.device.pid' $T/a.json)" "1452:4776" "device 05ac:12a8"
is "$(jget '.device.speed_mbps' $T/a.json)" 480 "high speed"
is "$(jget '.device.mode' $T/a.json)" normal "normal mode"
UDID=$(jget .device.udid $T/a.json)
like "$UDID" "^[0-9a-f]{40}$" "UDID is 40 hex digits"
for k in command verdict remedy device stages; do
	is "$(jq "has(\"$k\")" $T/a.json)" true "JSON has $k"
done
is "$(jget '[.stages[] | has("name","status","start_ns","duration_ns","detail")] | all' $T/a.json)" true "each stage has name/status/start_ns/duration_ns/detail"

# the record
R="$PD/$UDID.plist"
ok $([ -f "$R" ]; echo $?) "record $UDID.plist written"
is "$(stat -c %a "$R")" 600 "record mode 0600"
is "$(stat -c %a "$PD/SystemConfiguration.plist")" 600 "SystemConfiguration.plist mode 0600"
plistutil -i "$R" -o $T/rec.xml -f xml >/dev/null 2>&1; ok $? "record parses with plistutil"
for k in DeviceCertificate HostCertificate HostPrivateKey RootCertificate RootPrivateKey HostID SystemBUID EscrowBag WiFiMACAddress; do
	like "$(cat $T/rec.xml)" "<key>$k</key>" "record has $k"
done
# extract a <data> value and base64-decode it
data_of() { awk -v k="<key>$1</key>" '$0 ~ k {f=1; next} f && /<data>/ {d=1; sub(/.*<data>/, "")} d { if (/<\/data>/) { sub(/<\/data>.*/, ""); print; exit } print }' $T/rec.xml | tr -d ' \t\n' | base64 -d; }
data_of HostPrivateKey > $T/host.key; openssl pkey -in $T/host.key -noout 2>/dev/null; ok $? "HostPrivateKey loads in OpenSSL"
data_of RootPrivateKey > $T/root.key; openssl pkey -in $T/root.key -noout 2>/dev/null; ok $? "RootPrivateKey loads in OpenSSL"
data_of RootCertificate > $T/root.pem; data_of HostCertificate > $T/host.pem; data_of DeviceCertificate > $T/dev.pem
openssl x509 -in $T/host.pem -noout 2>/dev/null; ok $? "HostCertificate parses"
is "$(openssl x509 -in $T/root.pem -noout -text | grep -c 'CA:TRUE')" 1 "root certificate is a CA"
openssl x509 -in $T/host.pem -noout -pubkey > $T/h.pub; openssl pkey -in $T/host.key -pubout > $T/h2.pub
is "$(cat $T/h.pub)" "$(cat $T/h2.pub)" "host key matches host certificate"
like "$(grep -c BUILD_ $T/rec.xml)" "^0$" "no stray content"

# second run reuses the record: no Pair stage
run_lp $T/b.json trust --device sim:healthy,keep --pair-dir "$PD" --json
is $? 0 "second run exits 0"
is "$(jget .verdict $T/b.json)" TRUSTED "second run TRUSTED from the record"
is "$(jget '.stages[] | select(.name=="Pair") | .status' $T/b.json)" skipped "second run: Pair skipped"
is "$(jget '.stages[] | select(.name=="StartSession") | .status' $T/b.json)" ok "second run: StartSession ok"

# a device that lost this host: STALE_TRUST, record kept (nothing lost)
cp "$R" $T/before.plist
run_lp $T/c.json trust --device sim:forgot-host --pair-dir "$PD" --json
is $? 1 "forgot-host exits 1"
is "$(jget .verdict $T/c.json)" STALE_TRUST "forgot-host: STALE_TRUST"
like "$(jget .remedy $T/c.json)" "Reset|--pair" "remedy says how to re-pair"
cmp -s "$R" $T/before.plist; ok $? "stale record left untouched"

# human output: stages with timestamps, verdict and remedy; no colour in a pipe
run_lp $T/h.txt trust --device sim:healthy,keep --pair-dir "$PD"
like "$(cat $T/h.txt)" "StartSession +ok" "human output lists stages"
like "$(cat $T/h.txt)" "verdict: TRUSTED" "human output has the verdict"
unlike "$(cat $T/h.txt)" "$(printf '\033')" "no escape codes when piped"

# a corrupt record is reported, not overwritten
printf 'garbage' > "$PD/$UDID.plist"
run_lp $T/d.json trust --device sim:healthy,keep --pair-dir "$PD" --json
is $? 1 "corrupt record: exit 1"
like "$(jget '.stages[] | select(.name=="pair record") | .detail' $T/d.json)" "." "corrupt record: explained"
is "$(cat "$PD/$UDID.plist")" garbage "corrupt record not overwritten without --pair"
run_lp $T/e.json trust --pair --device sim:healthy,keep --pair-dir "$PD" --json
is "$(jget .verdict $T/e.json)" TRUSTED "--pair replaces a corrupt record"

# real clock: the device's StopSession reply and its TLS close_notify arrive in
# one read (regression: the reply was lost behind the alert)
LINKPROBE_SIM_CLOCK=real run_lp $T/r.json trust --pair --device sim:healthy,clock=real --pair-dir $T/pd-real --json
is "$(jget .verdict $T/r.json)" TRUSTED "real clock: TRUSTED (StopSession reply read before close_notify)"
done_testing
