#!/usr/bin/env python3
"""mkseeds.py - write the hand-made seeds of the deep harnesses (issue 10):
conversations a real device would hold, so the fuzzer starts past the
handshakes. Run from the repository root: tests/fuzz/mkseeds.py; it writes
tests/fuzz/corpus/{hostlink,lkd_client,usbmuxd_exchange}/seed-*.
The TLS seeds come from the harnesses themselves (FUZZ_SEEDGEN_DIR, see
fuzz_tls_client.c and fuzz_lkd_client.c)."""
import os
import struct

QUERY = ('<?xml version="1.0" encoding="UTF-8"?>\n'
         '<plist version="1.0"><dict><key>Label</key><string>linkprobe</string>'
         '<key>Request</key><string>QueryType</string></dict></plist>\n').encode()


def plist(d):
    body = ''.join('<key>%s</key>%s' % (k, v) for k, v in d)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>%s</dict>'
            '</plist>\n' % body).encode()


def s(v):
    return '<string>%s</string>' % v


def frame(body):
    return struct.pack('>I', len(body)) + body


def mux(proto, payload, tx=0, rx=0, v2=True):
    if not v2 or proto == 0:
        return struct.pack('>II', proto, 8 + len(payload)) + payload
    return struct.pack('>IIIHH', proto, 16 + len(payload), 0xFEEDFACE, tx, rx) + payload


def tcp(sport, dport, seq, ack, flags, payload=b''):
    return struct.pack('>HHIIBBHHH', sport, dport, seq, ack, 0x50, flags, 0x0200, 0, 0) + payload


def chunk(gate, b):
    return struct.pack('>BH', gate, len(b)) + b


def write(name, data):
    d = os.path.dirname(name)
    os.makedirs(d, exist_ok=True)
    with open(name, 'wb') as f:
        f.write(data)


LKD = 62078
REQ = 4 + len(QUERY)
version = mux(0, struct.pack('>III', 2, 0, 0))
synack = mux(6, tcp(LKD, 1, 0, 1, 0x12), tx=0, rx=1)
qt_reply = frame(plist([('Request', s('QueryType')), ('Type', s('com.apple.mobile.lockdown'))]))
data_pkt = mux(6, tcp(LKD, 1, 1, 1 + REQ, 0x10, qt_reply), tx=1, rx=3)
split_prefix = mux(6, tcp(LKD, 1, 1, 1 + REQ, 0x10, qt_reply[:4]), tx=1, rx=3)
split_body = mux(6, tcp(LKD, 1, 5, 1 + REQ, 0x10, qt_reply[4:]), tx=2, rx=3)
rst = mux(6, tcp(LKD, 1, 1, 1 + REQ, 0x04), tx=2, rx=3)

H = 'tests/fuzz/corpus/hostlink/'
write(H + 'seed-version-only', chunk(1, version))
write(H + 'seed-query', chunk(1, version) + chunk(3, synack) + chunk(5, data_pkt))
write(H + 'seed-query-split', chunk(1, version) + chunk(3, synack) + chunk(5, split_prefix) +
      chunk(5, split_body))
write(H + 'seed-query-rst', chunk(1, version) + chunk(3, synack) + chunk(5, data_pkt) + chunk(5, rst))
write(H + 'seed-refused', chunk(1, version) + chunk(3, mux(6, tcp(LKD, 1, 0, 1, 0x14), tx=0, rx=1)))
write(H + 'seed-v1', chunk(1, mux(0, struct.pack('>III', 1, 0, 0))) +
      chunk(2, mux(6, tcp(LKD, 1, 0, 1, 0x12), v2=False)))
# two packets in one transfer, and a packet across two transfers
write(H + 'seed-joined', chunk(1, version) + chunk(3, synack + data_pkt))
big = mux(6, tcp(LKD, 1, 1, 1 + REQ, 0x10, frame(b'\0' * 20000)), tx=1, rx=3)
write(H + 'seed-spanned', chunk(1, version) + chunk(3, synack) + chunk(5, big[:16384]) +
      chunk(5, big[16384:]))

# lockdown client: chunks [u8 kind][u16 len][bytes]; kind 0 plaintext to the
# client, 1 inside TLS, 2 start the server's TLS (see fuzz_lkd_client.c)
def lk(kind, b):
    return struct.pack('>BH', kind, len(b)) + b


L = 'tests/fuzz/corpus/lkd_client/'
ok = [('Request', s('%s'))]


def reply(req, *items):
    return frame(plist([('Request', s(req))] + list(items)))


qt = reply('QueryType', ('Type', s('com.apple.mobile.lockdown')))
gv = reply('GetValue', ('Value', '<dict><key>DeviceName</key>%s<key>ProductVersion</key>%s</dict>'
                        % (s('iPhone'), s('16.7.2'))))
pair = reply('Pair', ('EscrowBag', '<data>AAECAwQFBgcICQoLDA0ODw==</data>'))
pend = reply('Pair', ('Error', s('PairingDialogResponsePending')))
ss = reply('StartSession', ('SessionID', s('6C1F2A3B-0000-4000-8000-0123456789AB')),
           ('EnableSessionSSL', '<true/>'))
ss_plain = reply('StartSession', ('SessionID', s('6C1F2A3B-0000-4000-8000-0123456789AB')),
                 ('EnableSessionSSL', '<false/>'))
svc = reply('StartService', ('Service', s('com.apple.mobilebackup2')), ('Port', '<integer>49152</integer>'),
            ('EnableServiceSSL', '<true/>'))
stop = reply('StopSession')
alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00])  # close_notify, in plaintext after TLS
write(L + 'seed-plain', lk(0, qt) + lk(0, gv) + lk(0, pend) + lk(0, pair) + lk(0, ss_plain) + lk(0, svc))
write(L + 'seed-errors', lk(0, reply('QueryType', ('Error', s('InvalidHostID')))) +
      lk(0, reply('GetValue', ('Error', s('PasswordProtected')))) + lk(0, b'\0\0\0\x05hello'))
write(L + 'seed-session', lk(0, qt) + lk(0, gv) + lk(0, pair) + lk(0, ss) + lk(2, b'') + lk(1, gv) +
      lk(1, svc) + lk(1, stop) + lk(0, alert + qt))

# usbmuxd client exchange: replies as the daemon sends them (16-byte LE header + XML plist)
U = 'tests/fuzz/corpus/usbmuxd_exchange/'


def umx(tag, d):
    body = plist(d)
    return struct.pack('<IIII', 16 + len(body), 1, 8, tag) + body


res0 = [('MessageType', s('Result')), ('Number', '<integer>0</integer>')]
devlist = [('DeviceList', '<array><dict><key>DeviceID</key><integer>3</integer><key>MessageType</key>'
            '<string>Attached</string><key>Properties</key><dict><key>ConnectionType</key>'
            '<string>USB</string><key>SerialNumber</key><string>00008030-001A2B3C4D5E6F70</string>'
            '<key>DeviceID</key><integer>3</integer></dict></dict></array>')]
write(U + 'seed-list', struct.pack('>H', 0) + umx(1, devlist))
write(U + 'seed-connect', struct.pack('>H', 1) + umx(1, res0))
write(U + 'seed-buid', struct.pack('>H', 2) + umx(1, [('BUID', s('A1B2C3D4-0000-4000-8000-0123456789AB'))]))
write(U + 'seed-record', struct.pack('>H', 3) + umx(1, [('PairRecordData', '<data>AAEC</data>')]))
write(U + 'seed-refused', struct.pack('>H', 1) + umx(1, [('MessageType', s('Result')),
                                                         ('Number', '<integer>3</integer>')]))
write(U + 'seed-save', struct.pack('>H', 4) + umx(1, res0))
write(U + 'seed-connect-pipe', struct.pack('>H', 1) + umx(1, res0) + frame(b'<plist/>'))

# capture tap: [u8 options] then [u8 what][u8 ep][u8 status][u16 len][bytes]
T = 'tests/fuzz/corpus/cap_tap/'


def ev(what, ep, st, b):
    return struct.pack('>BBBH', what, ep, st, len(b)) + b


escrow = frame(plist([('Request', s('StartService')), ('EscrowBag', '<data>' + 'QUJD' * 40 + '</data>')]))
pkt = mux(6, tcp(1, LKD, 1, 1, 0x10, escrow), tx=5, rx=5)
half = len(pkt) // 2
pem = (b'-----BEGIN RSA PRIVATE KEY-----\n' + b'MIIE' * 30 + b'\n-----END RSA PRIVATE KEY-----\n')
setup = struct.pack('<BBHHH', 0x80, 6, 0x0100, 0, 18)
write(T + 'seed-escrow-split', b'\x00' + ev(0, 0x04, 0, pkt[:half]) + ev(1, 0x04, 0, pkt[:half]) +
      ev(3, 0, 0, b'stage StartService') + ev(0, 0x04, 0, pkt[half:]) + ev(1, 0x04, 0, pkt[half:]))
write(T + 'seed-pem-in', b'\x08' + ev(0, 0x85, 0, b'') + ev(1, 0x85, 0, mux(6, tcp(LKD, 1, 1, 1, 0x10, pem))))
write(T + 'seed-control', b'\x00' + ev(4, 0x80, 0, setup) + ev(5, 0x80, 0, setup + bytes(18)) +
      ev(2, 0x04, 0, b'x') + ev(9, 0x85, 5, b''))
bpl = b'bplist00' + b'\xd1\x01\x02\x59EscrowBag\x4f\x10\x30' + bytes(48)
write(T + 'seed-bplist', b'\x02' + ev(1, 0x85, 0, mux(6, tcp(LKD, 1, 1, 1, 0x10, frame(bpl)))))
