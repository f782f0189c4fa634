#!/bin/sh
# 61-analyze-hostile.t - hostile captures: truncated records, lying lengths,
# wrong link types, byte-swapped headers, garbage. Each must give a clear
# error (exit 3) or a report with an anomaly (exit 0/1) - never a signal.
# The files are written here from the golden captures by a small script.
. "$(dirname "$0")/lib.sh"
C=$(cd "$(dirname "$0")/../../captures" && pwd)
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit 0; }
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 not installed"; exit 0; }

python3 - "$C" "$T" <<'PY'
import struct, sys
C, T = sys.argv[1], sys.argv[2]
hp = open(C + '/analyze-healthy-pair.pcap', 'rb').read()
relay = open(C + '/usbmuxd-relay-trusted.pcap', 'rb').read()
usbpcap = open(C + '/analyze-healthy-pair-usbpcap.pcap', 'rb').read()
def w(name, b): open(T + '/' + name, 'wb').write(bytes(b))
def recs(d):
    off, out = 24, []
    while off + 16 <= len(d):
        cl, = struct.unpack('<I', d[off + 8:off + 12]); out.append(off); off += 16 + cl
    return out
w('garbage.pcap', b'this is not a capture file at all, just text\n' * 20)
w('empty.pcap', b'')
w('header-only.pcap', hp[:24])
w('truncated.pcap', hp[:len(hp) // 2 + 7])
b = bytearray(hp); struct.pack_into('<I', b, recs(hp)[5] + 8, 0x7fffffff); w('lying-caplen.pcap', b)
b = bytearray(hp); struct.pack_into('<I', b, 20, 147); w('linktype-147.pcap', b)
b = bytearray(hp); struct.pack_into('<I', b, 20, 1); w('usb-as-ethernet.pcap', b)
# usbmon len_cap says more than the record holds
b = bytearray(hp); struct.pack_into('<I', b, recs(hp)[3] + 16 + 36, 0x00ffffff); w('lying-lencap.pcap', b)
# every bulk OUT mux packet claims 0xfffffff0 bytes
b = bytearray(hp)
for o in recs(hp):
    h = o + 16
    if b[h + 8] == ord('S') and b[h + 9] == 3 and not b[h + 10] & 0x80 and len(b) > h + 72:
        struct.pack_into('>I', b, h + 64 + 4, 0xfffffff0)
w('lying-muxlen.pcap', b)
# usbmon headers swapped, file header native
b = bytearray(hp)
for o in recs(hp):
    h = o + 16
    f = struct.unpack_from('<QBBBBHBBqiiIIQiiII', b, h)
    sw = struct.pack('>QBBBBHBBqiiIIQiiII', *f)
    b[h:h + 40] = sw[:40]; b[h + 48:h + 64] = sw[48:]
w('swapped-usbmon.pcap', b)
# a usbmuxd relay whose second client message has a lying length
b = bytearray(relay)
n = 0
for o in recs(relay):
    h = o + 16 + 14 + 20 + 20
    if len(b) > h + 16 and b[h + 4:h + 12] == b'\x01\0\0\0\x08\0\0\0':
        n += 1
        if n == 2:
            struct.pack_into('<I', b, h, 0x7fffffff)
w('relay-lying-len.pcap', b)
# USBPcap headerLen beyond the record
b = bytearray(usbpcap); struct.pack_into('<H', b, recs(usbpcap)[2] + 16, 0xfff0); w('usbpcap-lying-hdrlen.pcap', b)
# macOS (USB_DARWIN): a header length past the record; one under 32; a
# record cut inside the header; an unknown request type; a control submit
# without its setup packet; an ioLength larger than the bytes captured
darwin = open(C + '/analyze-healthy-pair-darwin.pcap', 'rb').read()
dr = recs(darwin)
b = bytearray(darwin); b[dr[2] + 16 + 2] = 0xf0; w('darwin-lying-hdrlen.pcap', b)
b = bytearray(darwin); b[dr[3] + 16 + 2] = 8; w('darwin-short-hdrlen.pcap', b)
b = bytearray(darwin); struct.pack_into('<II', b, dr[4] + 8, 20, 20); w('darwin-cut-header.pcap', b[:dr[4] + 16 + 20] + b[dr[5]:])
b = bytearray(darwin); b[dr[6] + 16 + 3] = 7; w('darwin-bad-request.pcap', b)
b = bytearray(darwin); struct.pack_into('<II', b, dr[0] + 8, 36, 36); w('darwin-no-setup.pcap', b[:dr[0] + 16 + 36] + b[dr[1]:])
b = bytearray(darwin)
for o in dr:
    h = o + 16
    if b[h + 3] == 1 and b[h + 31] == 2 and b[h + 30] & 0x80:
        struct.pack_into('<I', b, h + 4, 0x7fffffff)
w('darwin-lying-iolen.pcap', b)
# pcapng with an IDB option length running off the block
shb = struct.pack('<IIIHHqI', 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
idb = struct.pack('<IIHHIHH', 1, 32, 220, 0, 262144, 3, 0xfff0) + b'abcd' + struct.pack('<I', 32)
w('bad-idb.pcapng', shb + idb)
# the pair-then-close session (a 7 s silence before the Trust tap) with the
# device's first GetValue reply made an unreadable plist: a real violation
pc = bytearray(open(C + '/crafted-pair-then-close-gap.pcap', 'rb').read())
for o in recs(pc):
    h = o + 16
    if pc[h + 8] == ord('C') and pc[h + 10] & 0x80 and b"GetValue" in pc[h:o + 16 + struct.unpack_from("<I", pc, o + 8)[0]]:
        i = pc.index(b'<dict>', h); pc[i:i + 6] = b'<dicX>'
        break
w('device-bad-plist.pcap', pc)
# the phone's own TCP traffic (a web fetch to port 443) as raw IPv4 (DLT 12)
# and as Ethernet: 20 segments, no usbmuxd
def ip4(seq, sport, dport, payload):
    tcp = struct.pack('>HHIIBBHHH', sport, dport, seq, 0, 0x50, 0x18, 65535, 0, 0) + payload
    return struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                       bytes([10, 0, 0, 2]), bytes([17, 253, 0, 1])) + tcp
def pcap(lt, pkts):
    out = [struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, lt)]
    for i, p in enumerate(pkts):
        out.append(struct.pack('<IIII', 1700000000 + i, 0, len(p), len(p)) + p)
    return b''.join(out)
segs = [ip4(1000 + 100 * i, 50000, 443, b'\x17\x03\x03' + bytes(97)) for i in range(20)]
w('phone-ip-raw.pcap', pcap(12, segs))
w('phone-ip-eth.pcap', pcap(1, [bytes(6) + bytes([2] * 6) + b'\x08\x00' + s for s in segs]))
# pcapng: an IDB for usbmon (220), one for Ethernet, then packets of both
def blk(t, body):
    body += bytes((4 - len(body) % 4) % 4)
    return struct.pack('<II', t, 12 + len(body)) + body + struct.pack('<I', 12 + len(body))
ng = blk(0x0A0D0D0A, struct.pack('<IHHq', 0x1A2B3C4D, 1, 0, -1))
ng += blk(1, struct.pack('<HHI', 220, 0, 262144)) + blk(1, struct.pack('<HHI', 1, 0, 262144))
eth = bytes(6) + bytes([2] * 6) + b'\x08\x00' + segs[0]
for i, o in enumerate(recs(hp)[:4]):
    cl, = struct.unpack_from('<I', hp, o + 8)
    ng += blk(6, struct.pack('<IIIII', 0, 0, i, cl, cl) + hp[o + 16:o + 16 + cl])
    ng += blk(6, struct.pack('<IIIII', 1, 0, i, len(eth), len(eth)) + eth)
w('mixed-ifaces.pcapng', ng)
# the healthy pairing with every record's data clipped at 200 bytes: by
# usbmon itself (dumpcap -s: len_cap 200, len_urb and the pcap length as
# long as the record kept), and by the file's snap length (caplen < len)
def clip(kernel):
    out = bytearray(hp[:24])
    for o in recs(hp):
        s_, us, cl, ol = struct.unpack_from('<IIII', hp, o)
        rec = bytearray(hp[o + 16:o + 16 + cl])
        if cl > 64 + 200:
            if kernel:
                struct.pack_into('<I', rec, 36, 200)
                rec = rec[:64 + 200]; ol = len(rec)
            else:
                rec = rec[:64 + 200]
        out += struct.pack('<IIII', s_, us, len(rec), ol) + rec
    return out
w('clipped-by-usbmon.pcap', clip(True))
w('clipped-by-snaplen.pcap', clip(False))
PY

# the USBPcap golden has the driver's shape (tools/captures/capconv.py): bulk
# OUT data only at submit, bulk IN only at completion, control completions as
# a DATA and a STATUS stage - what a real USBPcap capture holds
shape=$(python3 - "$C/analyze-healthy-pair-usbpcap.pcap" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
off, n = 24, {}
while off + 16 <= len(d):
    cl, = struct.unpack_from('<I', d, off + 8); r = d[off + 16:off + 16 + cl]; off += 16 + cl
    info, ep, xfer = r[16], r[21], r[22]
    k = ('bulk-in-submit' if xfer == 3 and ep & 0x80 and not info & 1 else
         'bulk-out-completion' if xfer == 3 and not ep & 0x80 and info & 1 else
         'ctrl-status' if xfer == 2 and r[27] == 2 else
         'ctrl-done-data' if xfer == 2 and r[27] == 1 and info & 1 else
         'ctrl-stage3' if xfer == 2 and r[27] == 3 else None)
    if k: n[k] = n.get(k, 0) + 1
print(' '.join('%s=%d' % (k, n.get(k, 0)) for k in
               ('bulk-in-submit', 'bulk-out-completion', 'ctrl-stage3', 'ctrl-status')),
      'ctrl-done-data' if n.get('ctrl-done-data') else 'no-ctrl-done-data')
PY
)
like "$shape" "^bulk-in-submit=0 bulk-out-completion=0 ctrl-stage3=0 ctrl-status=[1-9][0-9]* ctrl-done-data$" \
	"the USBPcap golden has the driver's shape ($shape)"

check() { # file, allowed exit codes (regex), description
	run_lp "$T/out.json" analyze "$T/$1" --json
	rc=$?
	like "$rc" "^($2)\$" "$3 (exit $rc)"
}
check garbage.pcap 3 "garbage file: clear error"
like "$(cat "$T/out.json.err")" "not a capture libpcap can read" "garbage: error says why"
check empty.pcap 3 "empty file: clear error"
check header-only.pcap 1 "header-only pcap: a report"
is "$(jget .verdict "$T/out.json")" NO_DEVICE "no packets: NO_DEVICE"
like "$(jget .evidence "$T/out.json")" "holds no packets: no device appeared on the captured bus" \
	"no packets: the evidence says what the capture shows"
like "$(jget .remedy "$T/out.json")" "started after the phone was plugged in holds nothing.*Capture again while you plug the phone in" \
	"no packets: the remedy says a late capture shows nothing, and how to capture"
check truncated.pcap "0|1" "truncated record: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "truncated|unreadable" "truncated record: anomaly"
check lying-caplen.pcap "1|3" "record length over the snaplen: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "unreadable" "lying record length: anomaly"
is "$(jget .verdict "$T/out.json")" NONE "a file cut short before any verdict says so"
check linktype-147.pcap 3 "unsupported link type: clear error"
like "$(cat "$T/out.json.err")" "link type 147" "error names the link type"
check usb-as-ethernet.pcap 3 "USB records labelled Ethernet: a capture error"
like "$(cat "$T/out.json.err")" "link type is EN10MB \\(1\\): network traffic .*not USB" "labelled Ethernet: the error names the link type"
check lying-lencap.pcap "0|1" "usbmon len_cap over the record: a report"
check lying-muxlen.pcap 3 "mux length fields out of range: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "length field .* out of range" "lying mux length: anomaly"
check swapped-usbmon.pcap "0|1" "byte-swapped usbmon headers: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "other byte order" "byte-swapped headers: anomaly"
is "$(jget .verdict "$T/out.json")" TRUSTED "byte-swapped headers still decode"
check relay-lying-len.pcap "0|1" "usbmuxd message with lying length: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "usbmuxd message length" "lying usbmuxd length: anomaly"
check usbpcap-lying-hdrlen.pcap "0|1" "USBPcap headerLen over the record: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "USBPcap header" "lying USBPcap header: anomaly"
check bad-idb.pcapng "1|3" "broken pcapng IDB: no crash"
check darwin-lying-hdrlen.pcap "0|1" "macOS header length over the record: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "macOS USB header longer than the record" "lying macOS header length: anomaly"
check darwin-short-hdrlen.pcap "0|1" "macOS header length under 32: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "macOS USB header truncated .*header length 8" "short macOS header length: anomaly"
check darwin-cut-header.pcap "0|1" "macOS record cut inside its header: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "macOS USB header truncated \(20 bytes" "cut macOS header: anomaly"
check darwin-bad-request.pcap "0|1" "macOS record of an unknown request type: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "request type 7 .* skipped" "unknown macOS request type: anomaly"
check darwin-no-setup.pcap "0|1" "macOS control submit without setup bytes: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "control submit without 8 setup bytes" "macOS control submit without setup: anomaly"
check darwin-lying-iolen.pcap "0|1" "macOS IN completions claiming 2 GiB: a report"
like "$(jget '.anomalies | join("\n")' "$T/out.json")" "clipped .*\(.* of 2147483647 bytes\)" "lying macOS ioLength: noted as a clipped record"
is "$(jget .verdict "$T/out.json")" TRUSTED "lying macOS ioLength: the bytes that are there still make the session"

# records clipped at 200 bytes: lockdown is invisible, and the report says why
for f in clipped-by-usbmon clipped-by-snaplen; do
	check $f.pcap 1 "$f: a report"
	is "$(jget .verdict "$T/out.json")" CAPTURE_TRUNCATED "$f: CAPTURE_TRUNCATED, not a device verdict"
	like "$(jget .evidence "$T/out.json")" "record\\(s\\) of the device are clipped \\(the first at packet [0-9]+: 200 of [0-9]+ bytes kept\\)" \
		"$f: the evidence says the records are clipped"
	like "$(jget .remedy "$T/out.json")" "-s 0" "$f: the remedy says to capture without a snap length"
	is "$(jget '.protocol_violations | length' "$T/out.json")" 0 "$f: no protocol violation blamed on the device"
done

# not USB: the phone's own network traffic (rvictl, pcapd RAW/Ethernet, NCM)
check phone-ip-raw.pcap 3 "the phone's own IP traffic (RAW): a capture error, not NO_DEVICE"
like "$(cat "$T/out.json.err")" "network traffic \\(20 packets, 20 TCP segments\\), not USB and not a relayed usbmuxd socket" \
	"RAW IP: says it is network traffic"
unlike "$(cat "$T/out.json.err") $(cat "$T/out.json")" "charge-only|NO_DEVICE" "RAW IP: no cable advice, no NO_DEVICE"
check phone-ip-eth.pcap 3 "the phone's own IP traffic (Ethernet): a capture error"
# a pcapng with a usbmon and an Ethernet interface: libpcap reads neither
check mixed-ifaces.pcapng 3 "usbmon + Ethernet interfaces in one pcapng: a capture error"
like "$(cat "$T/out.json.err")" "mixes interfaces .*0: USB_LINUX_MMAPPED \\(220\\), 1: EN10MB \\(1\\).*frame.interface_id==0" \
	"mixed interfaces: named, with how to extract the USB one"
unlike "$(cat "$T/out.json.err") $(cat "$T/out.json")" "charge-only|NO_DEVICE" "mixed interfaces: no cable advice"

# anomalies by kind: only the device breaking the protocol makes PROTOCOL_ERROR
run_lp "$T/gap.json" analyze "$C/crafted-pair-then-close-gap.pcap" --json
is "$(jget .verdict "$T/gap.json")" GOOD "a 7 s silence before the Trust tap is no protocol error"
is "$(jget '.notes | join("\n")' "$T/gap.json")" "packet 134: 7.0 s of silence before it" "the silence is listed as a note"
is "$(jget '.protocol_violations | length' "$T/gap.json")" 0 "no protocol violation listed"
is "$(jget .metrics.protocol_violations "$T/gap.json")" 0 "metrics: no protocol violation counted"
run_lp "$T/gap.txt" analyze "$C/crafted-pair-then-close-gap.pcap"
like "$(cat "$T/gap.txt")" "notes \(1 listed\):" "human output lists the silence under notes"
check device-bad-plist.pcap 1 "the device's unreadable lockdown reply: a report"
is "$(jget .verdict "$T/out.json")" PROTOCOL_ERROR "a device violation still makes PROTOCOL_ERROR"
like "$(jget .evidence "$T/out.json")" "first: packet 59: device lockdown message is not a plist" \
	"the evidence is the device's violation, not the silence"
is "$(jget '.protocol_violations | length' "$T/out.json")" 1 "the violation is listed as one"
check lying-muxlen.pcap 3 "host mux length fields out of range"
is "$(jget '.protocol_violations | length' "$T/out.json")" 0 "the host's malformed packets are notes, not the device's violations"
done_testing
