#!/bin/sh
# 90-hostile-files.t - hostile files where linkprobe reads plists: deeply
# nested pair records and simulator state (issue 10). Each must give a verdict
# or an error, never a crash.
. "$(dirname "$0")/lib.sh"
PD=$T/lockdown

# deep_plist KIND DEPTH FILE: KIND bin (bplist00 of DEPTH nested arrays, ~9
# bytes a level) or xml (DEPTH nested <array>s)
deep_plist() {
	python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
kind, depth, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "xml":
    data = (b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">' +
            b"<array>" * depth + b"</array>" * depth + b"</plist>\n")
else:
    objs = bytearray()
    offs = []
    for i in range(depth):
        offs.append(8 + len(objs))
        objs += bytes([0xA1]) + struct.pack(">I", i + 1) if i + 1 < depth else bytes([0xA0]) + b"\0" * 4
    ot = 8 + len(objs)
    data = (b"bplist00" + bytes(objs) + b"".join(struct.pack(">I", o) for o in offs) +
            b"\0" * 6 + bytes([4, 4]) + struct.pack(">QQQ", depth, 0, ot))
open(path, "wb").write(data)
PY
}

run_lp $T/a.json trust --pair --device sim:healthy --pair-dir "$PD" --json
is $? 0 "pair once"
UDID=$(jget .device.udid $T/a.json)
R="$PD/$UDID.plist"

for kind in bin xml; do
	depth=100000; [ $kind = xml ] && depth=65000
	deep_plist $kind $depth "$R"
	run_lp $T/b.json trust --device sim:healthy --pair-dir "$PD" --json
	is $? 1 "$kind pair record of $depth nested arrays: exit 1, no crash"
	is "$(jget .verdict $T/b.json)" PAIR_RECORD_CORRUPT "$kind deep record: PAIR_RECORD_CORRUPT (the host's damaged file)"
	like "$(jget '.stages[] | select(.name=="pair record") | .detail' $T/b.json)" "property list|plist" \
		"$kind deep record: the stage says the record is not a usable plist"
done

# a binary pair record with a NUL inside a UTF-16 key or string (found by the
# pair_record fuzzer): libplist 2.2 parses it and then aborts the process on
# an assert when the key is read; refused before libplist sees it
run_lp $T/a.json trust --pair --device sim:healthy --pair-dir "$PD" --json
for where in key value; do
	python3 - "$R" $where <<'PY'
import plistlib, sys
d = plistlib.load(open(sys.argv[1], "rb"))
if sys.argv[2] == "key":
    d["H\u00f6st\x00ID"] = "x"   # not ASCII: a UTF-16 string in the bplist
else:
    d["WiFiMACAddress"] = "\u00e4a:bb\x00:cc"
plistlib.dump(d, open(sys.argv[1], "wb"), fmt=plistlib.FMT_BINARY)
PY
	run_lp $T/b.json trust --device sim:healthy --pair-dir "$PD" --json
	is $? 1 "binary pair record with a NUL in a $where: exit 1, no abort"
	is "$(jget .verdict $T/b.json)" PAIR_RECORD_CORRUPT "NUL in a $where: PAIR_RECORD_CORRUPT"
done

# the EscrowBag goes only to the device that presents the record's
# DeviceCertificate inside session TLS
rm -rf "$PD"
run_lp $T/e.json trust --pair --device sim:healthy,keep --pair-dir "$PD" --json
is "$(jget .verdict $T/e.json)" TRUSTED "healthy: TRUSTED"
like "$(jget '.stages[] | select(.name=="StartService") | .detail' $T/e.json)" "EscrowBag sent" \
	"healthy: the device proved the paired key, EscrowBag sent"
python3 - "$PD/$UDID.plist" <<'PY'
import plistlib, sys
d = plistlib.load(open(sys.argv[1], "rb"))
d["DeviceCertificate"] = d["HostCertificate"]   # not what the device presents
plistlib.dump(d, open(sys.argv[1], "wb"))
PY
run_lp $T/e.json trust --device sim:healthy,keep --pair-dir "$PD" --json
is "$(jget .verdict $T/e.json)" TRUSTED "other certificate: the backup service still starts"
like "$(jget '.stages[] | select(.name=="StartService") | .detail' $T/e.json)" \
	"EscrowBag withheld: the device's TLS certificate is not the pair record's DeviceCertificate" \
	"a device without the record's DeviceCertificate does not get the EscrowBag; the stage says why"

# the simulated iPhone's state file, deeply nested: an error, not a crash
deep_plist xml 200000 $T/state.plist
run_lp $T/c.json trust --pair --device "sim:healthy,state=$T/state.plist" --pair-dir "$T/pd2" --json
rc=$?
ok $([ $rc -ge 1 ] && [ $rc -le 3 ]; echo $?) "sim state of 200000 nested arrays: exit $rc, no crash"
deep_plist bin 100000 $T/state.plist
run_lp $T/c.json trust --pair --device "sim:healthy,state=$T/state.plist" --pair-dir "$T/pd2" --json
rc=$?
ok $([ $rc -ge 1 ] && [ $rc -le 3 ]; echo $?) "sim state of 100000 nested bplist arrays: exit $rc, no crash"

done_testing
