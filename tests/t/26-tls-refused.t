#!/bin/sh
# 26-tls-refused.t - TLS_FAILED: the device refuses the session TLS because
# the host certificate in the pair record is not one it paired with (the
# record's HostCertificate/HostPrivateKey replaced by a self-signed pair, as a
# record copied between hosts or edited by hand would be). The HostID is
# still known, so StartSession succeeds and the TLS stage must fail, with the
# remedy to pair again; `--pair` then repairs it.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "1..0 # SKIP openssl not installed"; exit 0; }
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 not installed"; exit 0; }
PD=$T/pd
mkdir -p "$PD"

run_lp $T/a.json trust --pair --device sim:healthy,keep --pair-dir "$PD" --json
is "$(jget .verdict $T/a.json)" TRUSTED "paired"
rec=$(ls "$PD"/*.plist | grep -v SystemConfiguration)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/k.pem" -out "$T/c.pem" -subj "/" -days 30 2>/dev/null
python3 - "$rec" "$T/c.pem" "$T/k.pem" <<'PY'
import plistlib, sys
rec, cert, key = sys.argv[1:4]
with open(rec, 'rb') as f:
    d = plistlib.load(f)
d['HostCertificate'] = open(cert, 'rb').read()
d['HostPrivateKey'] = open(key, 'rb').read()
with open(rec, 'wb') as f:
    plistlib.dump(d, f)
PY
ok $? "record's host certificate replaced by a self-signed one"

run_lp $T/b.json trust --device sim:healthy,keep --pair-dir "$PD" --capture $T/b.pcapng --json; rc=$?
is "$rc" 1 "refused session TLS: exit 1"
is "$(jget .verdict $T/b.json)" TLS_FAILED "refused session TLS: TLS_FAILED"
is "$(jget '.stages[] | select(.name=="StartSession") | .status' $T/b.json)" ok "StartSession succeeded (the HostID is known)"
is "$(jget '.stages[-1].name + ":" + .stages[-1].status' $T/b.json)" "TLS:fail" "the TLS stage is the failing one"
# during the handshake or right after it (TLS 1.3: the host's side ends first)
like "$(jget .evidence $T/b.json)" "^stage TLS: .*(handshake|did not accept the host certificate)" "evidence names the TLS stage and the handshake"
like "$(jget .remedy $T/b.json)" "Re-pair" "remedy: pair again"

# the same refusal read from the capture (parity with the live run)
run_lp $T/b.off analyze $T/b.pcapng --json
is "$(jget .verdict $T/b.off)" TLS_FAILED "analyze on its capture: TLS_FAILED"
is "$(jq -r '[.stages[] | select(.name != "pair record") | "\(.name):\(.status)"] | join(" ")' $T/b.off)" \
	"$(jq -r '[.stages[] | select(.name != "pair record") | "\(.name):\(.status)"] | join(" ")' $T/b.json)" \
	"analyze: the same stages and statuses as live"
like "$(jget .evidence $T/b.off)" "^stage TLS: .*(handshake|did not accept the host certificate)" "analyze: evidence names the TLS stage"

run_lp $T/c.json trust --pair --device sim:healthy,keep --pair-dir "$PD" --json
is "$(jget .verdict $T/c.json)" TRUSTED "trust --pair replaces the bad record: TRUSTED"
run_lp $T/d.json trust --device sim:healthy,keep --pair-dir "$PD" --json
is "$(jget .verdict $T/d.json)" TRUSTED "the new record works without --pair"
done_testing
