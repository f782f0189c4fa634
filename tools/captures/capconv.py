#!/usr/bin/env python3
"""capconv.py - rewrite a usbmon capture (LINKTYPE 220, pcap or pcapng) into
the other USB capture shapes `linkprobe analyze` reads, for golden tests:

  capconv.py IN OUT --to 220|189|249|266
                                       classic pcap, ns timestamps; 189 drops
                                       the last 16 header bytes; 249 rewrites
                                       the records as USBPcap's driver logs them
                                       (LE header, control stages, USBD status
                                       codes; OUT data at submit, IN at completion);
                                       266 as macOS logs them (LINKTYPE_USB_DARWIN:
                                       32-byte LE header, IOReturn status codes; a
                                       control submit carries its setup packet, every
                                       other byte - OUT data too - the completion)
  --speed low|full|high|super          266: the speed each record names (high)
  --renumber BUS.ADDR                  move every record to that bus/address
  --shift SECONDS                      add to every timestamp
  --big-endian                         write the file and the usbmon headers
                                       big-endian (a capture from a BE host)
  --bad-swap                           byte-swap the usbmon headers but not the
                                       file header (a broken writer; hostile test)
  merge OUT IN1 IN2 ...                merge classic pcaps by timestamp

Reference: doc/protocol.md 6.1; desowin.org/usbpcap/captureformat.html;
tcpdump.org LINKTYPE_USB_DARWIN.
Only for test data: no validation beyond what the inputs need."""
import struct
import sys

USBD = {0: 0, -32: 0xC0000004, -2: 0xC0010000, -104: 0xC0010000, -19: 0xC0007000,
        -108: 0xC0007000, -62: 0xC0006000}


def read_records(path):
    data = open(path, 'rb').read()
    magic = data[:4]
    if magic == b'\x0a\x0d\x0d\x0a':
        return read_pcapng(data)
    for end in '<>':
        m, = struct.unpack(end + 'I', magic)
        if m in (0xa1b2c3d4, 0xa1b23c4d):
            nano = m == 0xa1b23c4d
            lt, = struct.unpack(end + 'I', data[20:24])
            off, out = 24, []
            while off + 16 <= len(data):
                s, f, cl, ol = struct.unpack(end + 'IIII', data[off:off + 16])
                ts = s * 10**9 + (f if nano else f * 1000)
                out.append((ts, data[off + 16:off + 16 + cl]))
                off += 16 + cl
            return lt, out
    raise SystemExit('not a capture: ' + path)


def read_pcapng(data):
    off, out, lt, tsres = 0, [], None, []
    while off + 12 <= len(data):
        btype, blen = struct.unpack('<II', data[off:off + 8])
        body = data[off + 8:off + blen - 4]
        if btype == 1:
            lt, = struct.unpack('<H', body[:2])
            res = 6  # no if_tsresol: microseconds (pcapng spec)
            o = 8
            while o + 4 <= len(body):
                code, ln = struct.unpack('<HH', body[o:o + 4])
                if code == 0:
                    break
                if code == 9:
                    res = body[o + 4]
                o += 4 + ((ln + 3) & ~3)
            tsres.append(res)
        elif btype == 6:
            iface, hi, lo, cl, ol = struct.unpack('<IIIII', body[:20])
            t = (hi << 32) | lo
            r = tsres[iface] if iface < len(tsres) else 6
            ts = t * (10 ** (9 - r)) if r <= 9 else t
            out.append((ts, body[20:20 + cl]))
        off += blen
    return lt, out


HDR = struct.Struct('<QBBBBHBBqiiIIQiiII')  # 64-byte usbmon header, LE host


def to_usbpcap(rec):
    """The records USBPcap's driver logs for one usbmon record (a list, maybe
    empty): it logs bulk and interrupt OUT data only when the IRP goes down
    (submit), IN data only when it comes back (completion), and a control
    transfer as stages - SETUP at submit (with an OUT data stage after it),
    then at completion an IN data stage (if any) and a STATUS stage."""
    (uid, typ, xfer, ep, dev, bus, fs, fd, sec, usec, status, len_urb, len_cap, setup,
     interval, start, flags, ndesc) = HDR.unpack(rec[:64])
    data = rec[64:64 + len_cap]
    info = 0 if typ == ord('S') else 1
    st = 0 if typ == ord('S') else USBD.get(status, 0xC0000011 if status < 0 else 0)

    def ctrl(stage, payload):
        return struct.pack('<HQIHBHHBBIB', 28, uid, st, 0x08, info, bus, dev, ep, xfer,
                           len(payload), stage) + payload

    if xfer == 2:
        if typ == ord('S'):
            out = [ctrl(0, rec[40:48])]
            if not ep & 0x80 and data:
                out.append(ctrl(1, data))
            return out
        return ([ctrl(1, data)] if ep & 0x80 and data else []) + [ctrl(2, b'')]
    if xfer == 0:
        return []
    if (typ == ord('S')) == bool(ep & 0x80):
        return []  # an IN submit or an OUT completion: not logged
    return [struct.pack('<HQIHBHHBBI', 27, uid, st, 0x09, info, bus, dev, ep, xfer,
                        len(data)) + data]


# Linux errno (usbmon) -> IOReturn (macOS): success, stall (the XHCI stack's
# kUSBHostReturnPipeStalled), aborted, no device, timeout, not responding,
# overrun; a short transfer (-EREMOTEIO) is success with fewer bytes
IORETURN = {0: 0, -121: 0, -32: 0xe0005000, -2: 0xe00002eb, -104: 0xe00002eb, -19: 0xe00002c0,
            -108: 0xe00002c0, -62: 0xe00002d6, -110: 0xe00002d6, -71: 0xe00002ed, -84: 0xe00002ed,
            -75: 0xe00002e8}
DARWIN_TYPE = {0: 1, 1: 3, 2: 0, 3: 2}  # usbmon transfer type -> Darwin endpoint type
DARWIN_SPEED = {'low': 0, 'full': 1, 'high': 2, 'super': 3}


def to_darwin(rec, out_data, speed):
    """The records macOS logs for one usbmon record: a submit (header only, a
    control one with its 8 setup bytes), a completion with the bytes that
    moved, either way. out_data keeps the OUT bytes of submits (by URB id)
    for their completions; isochronous records are left out."""
    (uid, typ, xfer, ep, dev, bus, fs, fd, sec, usec, status, len_urb, len_cap, setup,
     interval, start, flags, ndesc) = HDR.unpack(rec[:64])
    data = rec[64:64 + len_cap]
    if xfer == 0:
        return []

    def hdr(req, io_len, st):
        return struct.pack('<HBBIIIQIBBBB', 0x0100, 32, req, io_len, st, 0, uid,
                           bus << 24 | 0x100000, speed, dev, ep, DARWIN_TYPE[xfer])

    if typ == ord('S'):
        if not ep & 0x80 and data:
            out_data[uid] = data
        return [hdr(0, len_urb, 0) + (rec[40:48] if xfer == 2 else b'')]
    st = IORETURN.get(status, 0xe00002bc if status < 0 else 0)
    if typ == ord('E'):
        out_data.pop(uid, None)
        return [hdr(1, 0, st)]
    if not ep & 0x80 and len_urb and uid not in out_data:
        return []  # its submit is before the capture: macOS would log its bytes, we have none
    moved = data if ep & 0x80 else out_data.pop(uid, b'')[:len_urb]
    return [hdr(1, len_urb, st) + moved]


def swap_usbmon(rec, lt):
    f = list(HDR.unpack(rec[:64]))
    be = struct.pack('>QBBBBHBBqiiIIQiiII', *f)
    be = be[:40] + rec[40:48] + be[48:]  # setup bytes are not swapped
    n = 48 if lt == 189 else 64
    return be[:n] + rec[64:]


def write_pcap(path, lt, recs, big=False):
    e = '>' if big else '<'
    with open(path, 'wb') as f:
        f.write(struct.pack(e + 'IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, 262144, lt))
        for ts, r in recs:
            f.write(struct.pack(e + 'IIII', ts // 10**9, ts % 10**9, len(r), len(r)))
            f.write(r)


def main(argv):
    if argv and argv[0] == 'merge':
        out, ins = argv[1], argv[2:]
        lt, allr = None, []
        for p in ins:
            l, r = read_records(p)
            lt = l
            allr += r
        allr.sort(key=lambda x: x[0])
        write_pcap(out, lt, allr)
        return
    src, dst = argv[0], argv[1]
    opts = argv[2:]
    to, renum, shift, big, bad, speed = 220, None, 0, False, False, 2
    i = 0
    while i < len(opts):
        o = opts[i]
        if o == '--to':
            to = int(opts[i + 1]); i += 1
        elif o == '--renumber':
            b, a = opts[i + 1].split('.'); renum = (int(b), int(a)); i += 1
        elif o == '--shift':
            shift = int(float(opts[i + 1]) * 1e9); i += 1
        elif o == '--big-endian':
            big = True
        elif o == '--bad-swap':
            bad = True
        elif o == '--speed':
            speed = DARWIN_SPEED[opts[i + 1]]; i += 1
        i += 1
    lt, recs = read_records(src)
    if lt != 220:
        raise SystemExit('input must be LINKTYPE_USB_LINUX_MMAPPED (220)')
    out, out_data = [], {}
    for ts, r in recs:
        if len(r) < 64:
            continue
        if renum:
            r = r[:11] + bytes([renum[1]]) + struct.pack('<H', renum[0]) + r[14:]
        if to == 249:
            out += [(ts + shift, x) for x in to_usbpcap(r)]
            continue
        if to == 266:
            out += [(ts + shift, x) for x in to_darwin(r, out_data, speed)]
            continue
        else:
            if big or bad:
                r = swap_usbmon(r, to)
            elif to == 189:
                r = r[:48] + r[64:]
        out.append((ts + shift, r))
    write_pcap(dst, to, out, big=big)


if __name__ == '__main__':
    main(sys.argv[1:])
