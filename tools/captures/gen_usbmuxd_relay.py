#!/usr/bin/env python3
"""gen_usbmuxd_relay.py - synthesize what `tcpdump -i lo` records when a
client talks to usbmuxd through a socat relay of /var/run/usbmuxd on TCP
127.0.0.1:27015 (Ethernet framing with zero MACs, classic pcap, ns stamps).

  gen_usbmuxd_relay.py OUT.pcap [--scenario trusted|denied|refused|restart]

Conversation (doc/protocol.md 3 and 4), one TCP connection per usbmuxd
client connection, as libimobiledevice's tools make them:
  1. ListDevices -> DeviceList (one iPhone, DeviceID 7, high speed)
  2. ReadPairRecord -> PairRecordData (trusted) / Result 2 (denied)
  3. Connect DeviceID 7 port 62078 (PortNumber in network byte order) ->
     Result 0, then lockdown in plaintext: QueryType, GetValue x4,
     [denied: Pair -> PairingDialogResponsePending x2 -> UserDeniedPairing]
     StartSession -> EnableSessionSSL; TLS records (handshake, application
     data), close_notify, FIN. The device sends each 4-byte length prefix in
     its own segment, as real devices do (section 0).
  4. Connect to the service port from StartService (inside TLS) -> Result 0.
  refused: Connect to port 62078 answered Result 3 (CONNREFUSED).
  restart: trusted, then what Apple's own tools may do after StopSession
     (doc/protocol.md 4.10): both close_notify alerts, the device's in the
     same segment as the start of its next plaintext reply, a plaintext
     StartSession on the same connection, a second TLS session, its
     StopSession and close_notify, a plaintext GetValue, FIN.
Deterministic: fixed timestamps, sequence numbers and bytes."""
import plistlib
import struct
import sys

T0 = 1767225600 * 10**9  # 2026-01-01
CLIENT_IP, SERVER_IP = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
UMX_PORT = 27015


class Pcap:
    def __init__(self):
        self.recs = []
        self.t = T0

    def tick(self, us=150):
        self.t += us * 1000

    def add(self, frame):
        self.recs.append((self.t, frame))

    def write(self, path):
        with open(path, 'wb') as f:
            f.write(struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, 262144, 1))
            for t, fr in self.recs:
                f.write(struct.pack('<IIII', t // 10**9, t % 10**9, len(fr), len(fr)))
                f.write(fr)


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


class Tcp:
    """One TCP connection client:cport <-> server:27015 on loopback."""
    def __init__(self, cap, cport):
        self.cap, self.cport = cap, cport
        self.seq = [1000 * cport, 5000 * cport]  # client, server
        self.ipid = 1

    def seg(self, side, flags, payload=b''):
        sp, dp = (self.cport, UMX_PORT) if side == 0 else (UMX_PORT, self.cport)
        seq, ack = self.seq[side], self.seq[1 - side]
        tcp = struct.pack('!HHIIBBHHH', sp, dp, seq, ack, 5 << 4, flags, 65483, 0, 0) + payload
        pseudo = CLIENT_IP + SERVER_IP + struct.pack('!BBH', 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), self.ipid, 0x4000, 64, 6, 0, CLIENT_IP, SERVER_IP)
        ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
        self.ipid += 1
        self.cap.add(b'\0' * 12 + b'\x08\x00' + ip + tcp)
        self.seq[side] = (self.seq[side] + len(payload) + (1 if flags & 0x03 else 0)) & 0xffffffff
        self.cap.tick()

    def open(self):
        self.seg(0, 0x02)
        self.seg(1, 0x12)
        self.seg(0, 0x10)

    def send(self, side, data, split=None):
        if split:
            self.seg(side, 0x18, data[:split])
            data = data[split:]
        self.seg(side, 0x18, data)
        self.seg(1 - side, 0x10)

    def close(self):
        self.seg(0, 0x11)
        self.seg(1, 0x11)
        self.seg(0, 0x10)


def umx(tag, d):
    body = plistlib.dumps(d, fmt=plistlib.FMT_XML)
    return struct.pack('<IIII', 16 + len(body), 1, 8, tag) + body


def lkd(d):
    body = plistlib.dumps(d, fmt=plistlib.FMT_XML)
    return struct.pack('!I', len(body)) + body


CLIENT = {'BundleID': 'org.libimobiledevice.ideviceinfo', 'ClientVersionString': 'libusbmuxd 2.0.2',
          'ProgName': 'ideviceinfo', 'kLibUSBMuxVersion': 3}
SERIAL = '00008020-001A2B3C4D5E6F70'


def tls_record(ctype, n, fill):
    return bytes([ctype, 3, 3]) + struct.pack('!H', n) + bytes([fill]) * n


def main(argv):
    out = argv[0]
    scen = argv[argv.index('--scenario') + 1] if '--scenario' in argv else 'trusted'
    cap = Pcap()
    # 1. device list
    c = Tcp(cap, 41001)
    c.open()
    c.send(0, umx(1, dict(CLIENT, MessageType='ListDevices')))
    dev = {'MessageType': 'Attached', 'DeviceID': 7, 'Properties': {
        'ConnectionSpeed': 480000000, 'ConnectionType': 'USB', 'DeviceID': 7, 'LocationID': 0x01100000,
        'ProductID': 0x12a8, 'SerialNumber': SERIAL}}
    c.send(1, umx(1, {'DeviceList': [dev]}))
    c.close()
    cap.tick(2000)
    # 2. pair record
    c = Tcp(cap, 41002)
    c.open()
    c.send(0, umx(2, dict(CLIENT, MessageType='ReadPairRecord', PairRecordID=SERIAL)))
    if scen in ('trusted', 'restart'):
        c.send(1, umx(2, {'PairRecordData': b'<plist>REDACTED pair record</plist>'}))
    else:
        c.send(1, umx(2, {'MessageType': 'Result', 'Number': 2}))
    c.close()
    cap.tick(2000)
    # 3. lockdown
    c = Tcp(cap, 41003)
    c.open()
    c.send(0, umx(3, dict(CLIENT, MessageType='Connect', DeviceID=7, PortNumber=0x7ef2)))
    if scen == 'refused':
        c.send(1, umx(3, {'MessageType': 'Result', 'Number': 3}))
        c.close()
        cap.write(out)
        return
    c.send(1, umx(3, {'MessageType': 'Result', 'Number': 0}))

    def req(d, reply, wait_us=400):
        c.send(0, lkd(dict({'Label': 'ideviceinfo', 'ProtocolVersion': '2'}, **d)))
        cap.tick(wait_us)
        c.send(1, lkd(reply), split=4)

    req({'Request': 'QueryType'}, {'Request': 'QueryType', 'Type': 'com.apple.mobile.lockdown'})
    for k, v in (('UniqueDeviceID', SERIAL), ('ProductType', 'iPhone11,6'), ('ProductVersion', '17.5.1'),
                 ('DeviceName', 'Test iPhone')):
        req({'Request': 'GetValue', 'Key': k}, {'Request': 'GetValue', 'Key': k, 'Value': v})
    if scen == 'denied':
        for _ in range(2):
            req({'Request': 'Pair', 'PairRecord': {'HostID': 'H'}},
                {'Request': 'Pair', 'Error': 'PairingDialogResponsePending'})
            cap.tick(1000000)
        req({'Request': 'Pair', 'PairRecord': {'HostID': 'H'}}, {'Request': 'Pair', 'Error': 'UserDeniedPairing'})
        c.close()
        cap.write(out)
        return
    req({'Request': 'StartSession', 'HostID': 'F1E2D3C4-0000-4000-8000-000000000001', 'SystemBUID': 'B'},
        {'Request': 'StartSession', 'SessionID': 'A1B2C3D4-1111-4222-8333-444455556666', 'EnableSessionSSL': True})
    c.send(0, bytes([0x16, 3, 1, 0, 200]) + b'\x01' + b'\x11' * 199)               # ClientHello
    c.send(1, tls_record(22, 1200, 0x02) + tls_record(22, 4, 0x0e))                 # ServerHello .. Done
    c.send(0, tls_record(22, 600, 0x0b) + tls_record(20, 1, 1) + tls_record(22, 40, 0x33))
    c.send(1, tls_record(20, 1, 1) + tls_record(22, 40, 0x44))
    c.send(0, tls_record(23, 180, 0x55))                                             # StartService
    c.send(1, tls_record(23, 120, 0x66))
    # 4. the service connection (a second usbmuxd client connection)
    s = Tcp(cap, 41004)
    s.open()
    s.send(0, umx(4, dict(CLIENT, MessageType='Connect', DeviceID=7, PortNumber=0x30c0)))  # port 49200
    s.send(1, umx(4, {'MessageType': 'Result', 'Number': 0}))
    s.send(0, b'\0\0\0\x10service hello...')
    s.close()
    c.send(0, tls_record(23, 150, 0x77))                                             # StopSession
    c.send(1, tls_record(23, 110, 0x88))
    c.send(0, tls_record(21, 26, 0x99))                                              # close_notify
    if scen == 'restart':
        start = lkd({'Request': 'StartSession', 'SessionID': 'B2C3D4E5-2222-4333-8444-555566667777',
                     'EnableSessionSSL': True})
        c.send(0, lkd({'Label': 'Xcode', 'ProtocolVersion': '2', 'Request': 'StartSession',
                       'HostID': 'F1E2D3C4-0000-4000-8000-000000000001', 'SystemBUID': 'B'}))
        c.send(1, tls_record(21, 26, 0xaa) + start[:4])                               # close_notify + prefix
        c.send(1, start[4:])
        c.send(0, bytes([0x16, 3, 1, 0, 200]) + b'\x01' + b'\x12' * 199)           # ClientHello again
        c.send(1, tls_record(22, 1200, 0x02) + tls_record(22, 4, 0x0e))
        c.send(0, tls_record(22, 600, 0x0b) + tls_record(20, 1, 1) + tls_record(22, 40, 0x33))
        c.send(1, tls_record(20, 1, 1) + tls_record(22, 40, 0x44))
        c.send(0, tls_record(23, 160, 0x57))                                         # GetValue
        c.send(1, tls_record(23, 300, 0x67))
        c.send(0, tls_record(23, 150, 0x78))                                         # StopSession
        c.send(1, tls_record(23, 110, 0x89))
        c.send(0, tls_record(21, 26, 0x9a))
        c.send(1, tls_record(21, 26, 0xab))
        req({'Request': 'GetValue', 'Key': 'ProductVersion'},
            {'Request': 'GetValue', 'Key': 'ProductVersion', 'Value': '17.5.1'})
    c.close()
    cap.write(out)


if __name__ == '__main__':
    main(sys.argv[1:])
