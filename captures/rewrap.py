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
802.11 link-type modes (every frame kept; the Ethernet header becomes an 802.11 data
frame, MAC addresses kept, body = LLC/SNAP aa aa 03 00 00 00 + original ethertype +
payload). BSSID 02:99:00:00:0a:01 (second AP of a WDS link: 02:99:00:00:0a:02). Frames
from the client MAC are ToDS (A1 BSSID, A2 SA, A3 DA), the others FromDS (A1 DA,
A2 BSSID, A3 SA); WDS frames have ToDS+FromDS (A1 receiving AP, A2 sending AP, A3 DA,
A4 SA). Duration 0x002c, sequence number counting from 0 (fragment 0). FCS, when
present, is zlib.crc32 of the 802.11 frame, little-endian.
  wlan       IEEE802_11 (105): plain data frames (FC 08 01 / 08 02), no radio header, no FCS
  radiotap   IEEE802_11_RADIO (127): radiotap v0, 34 bytes, two present words
             a000082f 00000820 (TSFT, Flags, Rate, Channel, dBm signal, Antenna; then
             dBm signal + Antenna of a second radiotap namespace), 4 bytes of alignment
             padding before TSFT, Flags = 0x10 (FCS at end); QoS data frames (FC 88 01 /
             88 02, QoS control 00 00) + FCS. Before the first packet it also inserts 4
             frames that carry no readable packet, at the first packet's timestamp: a
             beacon, an ACK, a protected (CCMP) data frame and a QoS Null.
  ppi        PPI (192): version 0, flags 0, length 32, DLT 105, one 802.11-Common field
             (type 2, 20 bytes) whose flags are 0x0001 (FCS present); QoS data frames in
             4-address WDS form (FC 88 03) + FCS
  avs        IEEE802_11_RADIO_AVS (163): AVS v1 header, big-endian, magic 0x80211001,
             length 64; plain data frames, no FCS
  prism      PRISM_HEADER (119): msgcode 0x44, msglen 144 (little-endian), device
             "wlan0", the 10 usual DID items; QoS data frames, no FCS
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
  gtpu     outer IPv4 + UDP 2152 -> 2152 + GTPv1-U G-PDU (type 255), TEID 0x1001 from the
           client / 0x2002 to it; by packet index mod 3: flags 0x30 (8-byte header), 0x32
           (sequence number, N-PDU 0, next type 0), 0x34 (E: extension chain PDU Session
           Container 0x85 [01 10|00 09 40] then UDP Port 0x40 [01 08 68 00]) + IP packet
           (IP frames only)
  greudp   outer IPv4 + UDP <sport> -> 4754 (RFC 8086) + GRE: from the client no flags
           (4 bytes), to it K bit + key 0x0000abcd (8 bytes); protocol 0x0800/0x86dd
           (IP frames only). sport 49152+0x11 / 49152+0x22
  aruba    outer IPv4 proto 47 + GRE (no flags) with protocol 0x8200 (from the client) /
           0x8210 (to it) + a plain 802.11 data frame as in "wlan" (no FCS); AP 10.99.1.1,
           controller 10.99.1.2
  ayiya    outer IPv4 + UDP 5072 -> 5072 + AYIYA: 41 52 11 <nh> (identity 16 bytes of
           type 1, signature 5 words with hash 2 = SHA-1, auth 1, opcode 1 = forward,
           next header 4 or 41), epoch = the packet's seconds (BE), identity fd99::1
           (client) / fd99::2, signature = SHA-1 of the inner packet (a stand-in: no
           shared secret) + IP packet (IP frames only)
Other:
  byteswap write the same records as a big-endian pcap (headers swapped, data untouched)

Direction for tunnel modes: frames whose source MAC is the lab client
(02:99:00:00:00:01) go 10.99.1.1 -> 10.99.1.2, all others the other way.
"""
import hashlib
import struct
import sys
import zlib

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


BSSID = bytes.fromhex("029900000a01")
BSSID2 = bytes.fromhex("029900000a02")
SNAP = bytes.fromhex("aaaa03000000")


class Dot11:
    """802.11 data frames from Ethernet frames (see the docstring)."""

    def __init__(self):
        self.seq = 0

    def data(self, dmac, smac, etype, payload, fwd, qos=False, wds=False):
        fc0 = 0x88 if qos else 0x08
        if wds:
            fc1 = 0x03
            a1, a2 = (BSSID2, BSSID) if fwd else (BSSID, BSSID2)
            addrs = a1 + a2 + dmac
        elif fwd:
            fc1 = 0x01
            addrs = BSSID + smac + dmac
        else:
            fc1 = 0x02
            addrs = dmac + BSSID + smac
        seqctl = struct.pack("<H", (self.seq << 4) & 0xFFF0)
        self.seq = (self.seq + 1) & 0xFFF
        hdr = bytes([fc0, fc1]) + struct.pack("<H", 0x002C) + addrs + seqctl
        if wds:
            hdr += smac
        if qos:
            hdr += b"\x00\x00"
        return hdr + SNAP + struct.pack("!H", etype) + payload


def fcs(frame):
    return frame + struct.pack("<I", zlib.crc32(frame) & 0xFFFFFFFF)


def radiotap_hdr():
    # word0: TSFT(0) Flags(1) Rate(2) Channel(3) dBm signal(5) Antenna(11), radiotap
    # namespace next (29), another word follows (31); word1: dBm signal(5) Antenna(11).
    h = struct.pack("<BBHII", 0, 0, 34, 0xA000082F, 0x00000820)
    h += b"\x00" * 4  # align TSFT to 8
    h += struct.pack("<QBBHHbBbB", 0x1122334455, 0x10, 0x6C, 2437, 0x00C0, -42, 0, -44, 1)
    assert len(h) == 34
    return h


def radiotap_extras():
    """Frames without a readable packet: beacon, ACK, protected data, QoS Null (+FCS)."""
    bcast = b"\xff" * 6
    beacon = (bytes([0x80, 0x00]) + b"\x00\x00" + bcast + BSSID + BSSID + b"\x00\x00"
              + struct.pack("<QHH", 0, 100, 0x0401) + b"\x00\x05ctlab" + b"\x01\x01\x82")
    ack = bytes([0xD4, 0x00]) + b"\x00\x00" + CLIENT_MAC
    prot = (bytes([0x08, 0x41]) + b"\x2c\x00" + BSSID + CLIENT_MAC + bytes.fromhex("029900000002")
            + b"\x10\x00" + bytes.fromhex("0100002000000000") + bytes(range(40)) + b"\x00" * 8)
    qnull = (bytes([0xC8, 0x01]) + b"\x2c\x00" + BSSID + CLIENT_MAC + BSSID + b"\x20\x00"
             + b"\x00\x00")
    return [radiotap_hdr() + fcs(f) for f in (beacon, ack, prot, qnull)]


def ppi_hdr():
    common = struct.pack("<QHHHHBBbb", 0x1122334455, 0x0001, 108, 2437, 0x00C0, 0, 0, -42, -95)
    assert len(common) == 20
    return struct.pack("<BBHI", 0, 0, 8 + 4 + len(common), 105) + struct.pack("<HH", 2, 20) + common


def avs_hdr(s, sub):
    return struct.pack("!IIQQIIIIIIiiII", 0x80211001, 64, s * 1000000 + sub, s * 1000000 + sub,
                       4, 6, 540, 0, 0, 2, -42, -95, 1, 1)


def prism_hdr(s):
    h = struct.pack("<II16s", 0x44, 144, b"wlan0")
    items = [(0x00010044, s & 0xFFFFFFFF), (0x00020044, 0), (0x00030044, 6), (0x00040044, 0),
             (0x00050044, 0), (0x00060044, 0), (0x00070044, 0), (0x00080044, 108),
             (0x00090044, 0), (0x000A0044, 0)]
    for did, val in items:
        h += struct.pack("<IHHI", did, 0, 4, val)
    assert len(h) == 144
    return h


def gtpu(i, fwd, payload):
    teid = 0x1001 if fwd else 0x2002
    kind = i % 3
    if kind == 0:
        opt = b""
        flags = 0x30
    elif kind == 1:
        flags = 0x32
        opt = struct.pack("!HBB", i & 0xFFFF, 0, 0)
    else:
        flags = 0x34
        pdu = bytes([1, 0x10 if fwd else 0x00, 0x09, 0x40])
        port = bytes([1, 0x08, 0x68, 0x00])
        opt = struct.pack("!HBB", 0, 0, 0x85) + pdu + port
    return struct.pack("!BBHI", flags, 255, len(opt) + len(payload), teid) + opt + payload


def ayiya(fwd, s, next_hdr, payload):
    ident = bytes.fromhex("fd990000000000000000000000000001" if fwd
                          else "fd990000000000000000000000000002")
    return (bytes([0x41, 0x52, 0x11, next_hdr]) + struct.pack("!I", s & 0xFFFFFFFF) + ident
            + hashlib.sha1(payload).digest() + payload)


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
    dot11 = Dot11()
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
        elif mode in ("wlan", "radiotap", "ppi", "avs", "prism"):
            out_lt = {"wlan": 105, "radiotap": 127, "ppi": 192, "avs": 163, "prism": 119}[mode]
            if mode == "radiotap" and not res:
                res.extend((s, sub, len(x), x) for x in radiotap_extras())
            if mode == "wlan":
                new = dot11.data(dmac, smac, etype, payload, fwd)
            elif mode == "radiotap":
                new = radiotap_hdr() + fcs(dot11.data(dmac, smac, etype, payload, fwd, qos=True))
            elif mode == "ppi":
                new = ppi_hdr() + fcs(dot11.data(dmac, smac, etype, payload, fwd, qos=True, wds=True))
            elif mode == "avs":
                new = avs_hdr(s, sub) + dot11.data(dmac, smac, etype, payload, fwd)
            else:
                new = prism_hdr(s) + dot11.data(dmac, smac, etype, payload, fwd, qos=True)
        elif mode == "gtpu":
            if not is_ip:
                continue
            new = dmac + smac + b"\x08\x00" + outer.udp(fwd, 2152, 2152, gtpu(len(res), fwd, payload))
        elif mode == "greudp":
            if not is_ip:
                continue
            gre = struct.pack("!HH", 0, etype) if fwd else struct.pack("!HHI", 0x2000, etype, 0xABCD)
            sport = 49152 + (0x11 if fwd else 0x22)
            new = dmac + smac + b"\x08\x00" + outer.udp(fwd, sport, 4754, gre + payload)
        elif mode == "aruba":
            gre = struct.pack("!HH", 0, 0x8200 if fwd else 0x8210)
            new = dmac + smac + b"\x08\x00" + outer.ip4(
                fwd, 47, gre + dot11.data(dmac, smac, etype, payload, fwd))
        elif mode == "ayiya":
            if not is_ip:
                continue
            new = dmac + smac + b"\x08\x00" + outer.udp(
                fwd, 5072, 5072, ayiya(fwd, s, 41 if v6 else 4, payload))
        else:
            raise SystemExit("unknown mode " + mode)
        res.append((s, sub, orig + (len(new) - len(frame)), new))
    write_pcap(out, out_lt, nano_any, res)


if __name__ == "__main__":
    main()
