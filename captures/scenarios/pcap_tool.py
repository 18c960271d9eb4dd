#!/usr/bin/env python3
"""Small pure-python (struct) pcap helpers for make-scenarios.sh.

  pcap_tool.py first FILE
      print the first packet's time (UTC epoch seconds, exact decimal)
  pcap_tool.py delta FILE TARGET_UTC
      print TARGET - first packet time, for `editcap -t` (TARGET like 2026-12-01T10:00:00)
  pcap_tool.py spread IN OUT INTERVAL ANCHOR0 ANCHOR1 ...
      the capture holds several actions started at the given epoch times (ANCHORi, as printed
      by `date +%s.%N` just before each action); move every packet of action i (time in
      [ANCHORi, ANCHORi+1)) by i*INTERVAL - (ANCHORi - ANCHOR0), so that the actions start
      INTERVAL seconds apart while keeping the timing inside each action unchanged (an
      anchor is first moved to the first packet at or after it, so that each action's first
      packet lands exactly on the INTERVAL grid)
  pcap_tool.py trim-bulk IN OUT KEEP SNAP
      per TCP direction (addresses, ports), keep the first KEEP bytes of TCP payload in full;
      a later packet longer than SNAP bytes is cut to SNAP bytes (captured length); its
      original length in the record header is kept, as with `tcpdump -s SNAP`.  Handshakes,
      HTTP request headers and TLS ClientHellos are in the kept part.
Handles classic pcap (µs or ns, either byte order), Ethernet / IPv4 only (what the lab
writes).  Output keeps the input's header.
"""
import datetime
import struct
import sys
from decimal import Decimal


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file")
    nsec = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    ghdr = data[:24]
    linktype = struct.unpack(e + "I", data[20:24])[0]
    recs = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        recs.append([sec, frac, orig, data[off + 16:off + 16 + incl]])
        off += 16 + incl
    return e, nsec, ghdr, linktype, recs


def write(path, e, ghdr, recs):
    with open(path, "wb") as f:
        f.write(ghdr)
        for sec, frac, orig, pkt in recs:
            f.write(struct.pack(e + "IIII", sec, frac, len(pkt), orig))
            f.write(pkt)


def ts_of(rec, nsec):
    return Decimal(rec[0]) + Decimal(rec[1]) / (Decimal(10**9) if nsec else Decimal(10**6))


def set_ts(rec, t, nsec):
    unit = 10**9 if nsec else 10**6
    ticks = int((t * unit).to_integral_value())
    rec[0], rec[1] = divmod(ticks, unit)


def tcp_info(pkt):
    """(key, payload_len) for Ethernet/IPv4/TCP, else None."""
    if len(pkt) < 14 + 20 or pkt[12:14] != b"\x08\x00":
        return None
    ip = pkt[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 6 or len(ip) < ihl + 20:
        return None
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:]
    doff = (tcp[12] >> 4) * 4
    key = (ip[12:16], tcp[0:2], ip[16:20], tcp[2:4])
    return key, max(0, total - ihl - doff)


def main():
    cmd = sys.argv[1]
    if cmd == "first":
        e, nsec, _, _, recs = read(sys.argv[2])
        print(ts_of(recs[0], nsec))
    elif cmd == "delta":
        e, nsec, _, _, recs = read(sys.argv[2])
        target = datetime.datetime.fromisoformat(sys.argv[3]).replace(tzinfo=datetime.timezone.utc)
        print(Decimal(int(target.timestamp())) - ts_of(recs[0], nsec))
    elif cmd == "spread":
        src, dst, interval = sys.argv[2], sys.argv[3], Decimal(sys.argv[4])
        e, nsec, ghdr, _, recs = read(src)
        # each action starts with its first packet at or after its anchor
        times = [ts_of(r, nsec) for r in recs]
        anchors = [min([t for t in times if t >= Decimal(a)] or [Decimal(a)]) for a in sys.argv[5:]]
        last = None
        for r in recs:
            t = ts_of(r, nsec)
            i = max([k for k, a in enumerate(anchors) if a <= t] or [0])
            nt = t + i * interval - (anchors[i] - anchors[0])
            if last is not None and nt < last:
                raise SystemExit("spread: an action ran past the next anchor; order would break")
            last = nt
            set_ts(r, nt, nsec)
        write(dst, e, ghdr, recs)
    elif cmd == "trim-bulk":
        src, dst, keep, snap = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        e, nsec, ghdr, _, recs = read(src)
        seen = {}
        cut = 0
        for r in recs:
            info = tcp_info(r[3])
            if not info:
                continue
            key, plen = info
            before = seen.get(key, 0)
            seen[key] = before + plen
            if before >= keep and len(r[3]) > snap:
                r[3] = r[3][:snap]
                cut += 1
        write(dst, e, ghdr, recs)
        print(f"trim-bulk: {cut} of {len(recs)} packets cut to {snap} bytes", file=sys.stderr)
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
