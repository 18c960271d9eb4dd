#!/usr/bin/env python3
"""Re-wrap the packets of a real Ethernet pcap in another link layer / encapsulation.

Pure python (struct only).  Used for the link types and tunnels this lab's kernel
cannot produce (see captures/README.md).  Timestamps, packet order and the inner
bytes (IP packet or whole Ethernet frame) are copied unchanged from the input.

usage: rewrap.py MODE OUT.pcap IN.pcap [IN2.pcap ...]

Link-type modes (output link type != Ethernet; only IPv4/IPv6 frames are kept):
  null     DLT_NULL (0): 4-byte host-order (little-endian file) family;
           AF_INET=2, IPv6 cycles through 24/28/30 (NetBSD-OpenBSD / FreeBSD / Darwin)
  ppp      DLT_PPP (9): ff 03 + protocol 0x0021 / 0x0057
  chdlc    DLT_C_HDLC (104): 0f 00 + ethertype 0x0800 / 0x86dd
  raw      LINKTYPE_RAW (101): bare IP
Ethernet-output modes (all frames kept unless stated):
  vlan     802.1Q tag VID 100 inserted after the MACs
  qinq     802.1ad (0x88a8) VID 100 outer + 802.1Q VID 200 inner
  vntag    VN-Tag: ethertype 0x8926 + 4-byte tag (6 bytes added)
  etag     802.1BR E-Tag: ethertype 0x893f + 6-byte tag (8 bytes added)
  mpls     ethertype 0x8847, label stack 1000 / 2000(S) (IP frames only)
  pppoe    PPPoE session 0x8864, session 0x1234, PPP 0x0021/0x0057 (IP frames only)
  gre      outer IPv4 proto 47, GRE proto 0x0800/0x86dd (IP frames only)
  ipip     outer IPv4 proto 4 (IPv4 frames only)
  sit      outer IPv4 proto 41 = 6in4 (IPv6 frames only)
  erspan2  outer IPv4 + GRE(seq, 0x88be) + ERSPAN type II (Linux erspan_ver 1) + whole frame
  erspan3  outer IPv4 + GRE(seq, 0x22eb) + ERSPAN type III (Linux erspan_ver 2) + whole frame
  geneve   outer IPv4 + UDP 6081 + Geneve VNI 7, protocol 0x6558 + whole frame
  teredo   outer IPv4 + UDP 3544 + IPv6 packet (IPv6 frames only)
Other:
  byteswap write the same records as a big-endian pcap (headers swapped, data untouched)

Direction for tunnel modes: frames whose source MAC is the lab client
(02:99:00:00:00:01) go 10.99.1.1 -> 10.99.1.2, all others the other way.
"""
import struct
import sys

CLIENT_MAC = bytes.fromhex("029900000001")
TUN_A = bytes([10, 99, 1, 1])
TUN_B = bytes([10, 99, 1, 2])


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    table = {
        b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
        b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True),
    }
    if magic not in table:
        raise SystemExit(f"{path}: not a classic pcap")
    e, nano = table[magic]
    _, _, _, _, _, snap, lt = struct.unpack(e + "IHHiIII", data[:24])
    off = 24
    recs = []
    while off + 16 <= len(data):
        s, sub, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        recs.append((s, sub, orig, data[off:off + incl]))
        off += incl
    return lt, nano, snap, recs


def write_pcap(path, lt, nano, recs, endian="<"):
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, lt))
        for s, sub, orig, pkt in recs:
            f.write(struct.pack(endian + "IIII", s, sub, len(pkt), orig))
            f.write(pkt)


def csum(b):
    if len(b) % 2:
        b += b"\x00"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return (~t) & 0xFFFF


class Outer:
    def __init__(self):
        self.ipid = {True: 0x1000, False: 0x2000}
        self.seq = {True: 0, False: 0}

    def ip4(self, fwd, proto, payload):
        src, dst = (TUN_A, TUN_B) if fwd else (TUN_B, TUN_A)
        self.ipid[fwd] = (self.ipid[fwd] + 1) & 0xFFFF
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), self.ipid[fwd],
                          0x4000, 64, proto, 0, src, dst)
        hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
        return hdr + payload

    def udp(self, fwd, sport, dport, payload):
        return self.ip4(fwd, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)

    def nextseq(self, fwd):
        self.seq[fwd] += 1
        return self.seq[fwd]


def split_eth(frame):
    etype = struct.unpack("!H", frame[12:14])[0]
    return frame[:6], frame[6:12], etype, frame[14:]


def main():
    mode, out, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    recs = []
    nano_any = False
    for p in inputs:
        lt, nano, _, r = read_pcap(p)
        if mode != "byteswap" and lt != 1:
            raise SystemExit(f"{p}: link type {lt}, need Ethernet (1)")
        if len(inputs) > 1 and nano:
            raise SystemExit("merge of nanosecond files not supported")
        nano_any = nano
        recs.extend(r)
        in_lt = lt
    recs.sort(key=lambda r: (r[0], r[1]))  # stable: keeps per-file order on ties

    if mode == "byteswap":
        write_pcap(out, in_lt, nano_any, recs, endian=">")
        return

    outer = Outer()
    v6_af = [24, 28, 30]
    v6_count = 0
    res = []
    out_lt = 1
    for s, sub, orig, frame in recs:
        if len(frame) < 14:
            continue
        dmac, smac, etype, payload = split_eth(frame)
        fwd = smac == CLIENT_MAC
        is_ip = etype in (0x0800, 0x86DD)
        v6 = etype == 0x86DD
        new = None
        if mode in ("null", "ppp", "chdlc", "raw"):
            out_lt = {"null": 0, "ppp": 9, "chdlc": 104, "raw": 101}[mode]
            if not is_ip:
                continue
            if mode == "null":
                af = 2
                if v6:
                    af = v6_af[v6_count % 3]
                    v6_count += 1
                new = struct.pack("<I", af) + payload
            elif mode == "ppp":
                new = b"\xff\x03" + struct.pack("!H", 0x0057 if v6 else 0x0021) + payload
            elif mode == "chdlc":
                new = b"\x0f\x00" + struct.pack("!H", etype) + payload
            else:
                new = payload
        elif mode == "vlan":
            new = dmac + smac + struct.pack("!HH", 0x8100, 100) + struct.pack("!H", etype) + payload
        elif mode == "qinq":
            new = (dmac + smac + struct.pack("!HHHH", 0x88A8, 100, 0x8100, 200)
                   + struct.pack("!H", etype) + payload)
        elif mode == "vntag":
            # d=1 (toward bridge: 0, from bridge:1), p=0, dst vif 0x0123, l=0, r=0, ver 0, src vif 0x045
            tag = struct.pack("!HH", (0 if fwd else 0x8000) | 0x0123, 0x0045)
            new = dmac + smac + struct.pack("!H", 0x8926) + tag + struct.pack("!H", etype) + payload
        elif mode == "etag":
            # E-PCP 0, DEI 0, ingress E-CID base 0x010; reserved 0, GRP 0, E-CID base 0x020; ext 0,0
            tag = struct.pack("!HHBB", 0x0010, 0x0020, 0, 0)
            new = dmac + smac + struct.pack("!H", 0x893F) + tag + struct.pack("!H", etype) + payload
        elif mode == "mpls":
            if not is_ip:
                continue
            stack = struct.pack("!II", (1000 << 12) | 64, (2000 << 12) | 0x100 | 64)
            new = dmac + smac + struct.pack("!H", 0x8847) + stack + payload
        elif mode == "pppoe":
            if not is_ip:
                continue
            ppp = struct.pack("!H", 0x0057 if v6 else 0x0021) + payload
            new = (dmac + smac + struct.pack("!HBBHH", 0x8864, 0x11, 0x00, 0x1234, len(ppp)) + ppp)
        elif mode == "gre":
            if not is_ip:
                continue
            new = dmac + smac + b"\x08\x00" + outer.ip4(fwd, 47, struct.pack("!HH", 0, etype) + payload)
        elif mode == "ipip":
            if etype != 0x0800:
                continue
            new = dmac + smac + b"\x08\x00" + outer.ip4(fwd, 4, payload)
        elif mode == "sit":
            if not v6:
                continue
            new = dmac + smac + b"\x08\x00" + outer.ip4(fwd, 41, payload)
        elif mode in ("erspan2", "erspan3"):
            seq = outer.nextseq(fwd)
            if mode == "erspan2":
                gre = struct.pack("!HHI", 0x1000, 0x88BE, seq)
                # ver=1, vlan=0 | cos=0 en=0 t=0 session=123 | reserved=0 index=0x000042
                ers = struct.pack("!HHI", 0x1000, 123, 0x00000042)
            else:
                gre = struct.pack("!HHI", 0x1000, 0x22EB, seq)
                ts = (s * 10000 + sub // 100) & 0xFFFFFFFF  # 100us granularity (gra=00)
                # ver=2 vlan=0 | cos=0 bso=0 t=0 session=124 | timestamp | sgt=0
                # p=0 ft=0 hwid=7 d=(0 ingress /1 egress) gra=0 o=0
                word = (7 << 4) | ((0 if fwd else 1) << 3)
                ers = struct.pack("!HHIHH", 0x2000, 124, ts, 0, word)
            new = b"\x02\x99\x00\x00\x01\x02\x02\x99\x00\x00\x01\x01\x08\x00" + outer.ip4(
                True, 47, gre + ers + frame)
        elif mode == "geneve":
            gen = struct.pack("!BBHI", 0, 0, 0x6558, 7 << 8)
            sport = 49152 + (0x11 if fwd else 0x22)
            new = dmac + smac + b"\x08\x00" + outer.udp(fwd, sport, 6081, gen + frame)
        elif mode == "teredo":
            if not v6:
                continue
            sp, dp = (40001, 3544) if fwd else (3544, 40001)
            new = dmac + smac + b"\x08\x00" + outer.udp(fwd, sp, dp, payload)
        else:
            raise SystemExit("unknown mode " + mode)
        res.append((s, sub, orig + (len(new) - len(frame)), new))
    write_pcap(out, out_lt, nano_any, res)


if __name__ == "__main__":
    main()
