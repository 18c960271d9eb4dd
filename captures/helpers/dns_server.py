#!/usr/bin/env python3
"""Tiny authoritative-for-everything DNS responder (UDP + TCP) for the capture lab.

Usage: dns_server.py BIND_ADDR PORT A_ANSWER AAAA_ANSWER

* A    queries -> A_ANSWER
* AAAA queries -> AAAA_ANSWER
* cdn-assets.example.org -> CNAME mybucket.s3.amazonaws.com (+ A/AAAA of the target)
* www.cdn-chain.example.org -> CNAME edge.cdn-chain.example.net -> CNAME api.telegram.org (+A)
* any other type -> NOERROR, no answer (NODATA)
* An EDNS OPT record in the query is echoed (udp size 1232, no options).
Only ever binds the address given on the command line (lab netns addresses).
"""
import socket
import struct
import sys
import threading

CNAMES = {
    "cdn-assets.example.org": "mybucket.s3.amazonaws.com",
    "www.cdn-chain.example.org": "edge.cdn-chain.example.net",
    "edge.cdn-chain.example.net": "api.telegram.org",
}


def parse_name(buf, off):
    labels = []
    jumped = False
    end = None
    for _ in range(128):
        ln = buf[off]
        if ln & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((ln & 0x3F) << 8) | buf[off + 1]
            jumped = True
            continue
        off += 1
        if ln == 0:
            break
        labels.append(buf[off:off + ln].decode("ascii", "replace"))
        off += ln
    return ".".join(labels), (end if jumped else off)


def enc_name(name):
    out = b""
    for lab in name.rstrip(".").split("."):
        if lab:
            out += bytes([len(lab)]) + lab.encode()
    return out + b"\x00"


def rr(name, rtype, rdata, ttl=300):
    return enc_name(name) + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def answer(query, a_ans, aaaa_ans):
    if len(query) < 12:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", query[:12])
    if qd != 1 or flags & 0x8000:
        return None
    qname, off = parse_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[off:off + 4])
    qsec = query[12:off + 4]
    has_opt = False
    p = off + 4
    # look for OPT in additional section (we never compress in queries we parse)
    try:
        for _ in range(an + ns + ar):
            _, p = parse_name(query, p)
            t, c, ttl, rdl = struct.unpack("!HHIH", query[p:p + 10])
            if t == 41:
                has_opt = True
            p += 10 + rdl
    except Exception:
        pass
    answers = []
    name = qname.lower()
    for _ in range(8):
        if name in CNAMES and qtype != 5:
            answers.append(rr(name, 5, enc_name(CNAMES[name])))
            name = CNAMES[name]
        else:
            break
    if qtype == 1:
        answers.append(rr(name, 1, socket.inet_pton(socket.AF_INET, a_ans)))
    elif qtype == 28:
        answers.append(rr(name, 28, socket.inet_pton(socket.AF_INET6, aaaa_ans)))
    rflags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080  # QR, opcode+RD kept, AA, RA
    add = b""
    if has_opt:
        add = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    hdr = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), 0, 1 if has_opt else 0)
    return hdr + qsec + b"".join(answers) + add


def udp_loop(sock, a_ans, aaaa_ans):
    while True:
        data, peer = sock.recvfrom(65535)
        resp = answer(data, a_ans, aaaa_ans)
        if resp:
            sock.sendto(resp, peer)


def tcp_client(conn, a_ans, aaaa_ans):
    conn.settimeout(5)
    try:
        while True:
            hdr = b""
            while len(hdr) < 2:
                chunk = conn.recv(2 - len(hdr))
                if not chunk:
                    return
                hdr += chunk
            (ln,) = struct.unpack("!H", hdr)
            data = b""
            while len(data) < ln:
                chunk = conn.recv(ln - len(data))
                if not chunk:
                    return
                data += chunk
            resp = answer(data, a_ans, aaaa_ans)
            if resp:
                conn.sendall(struct.pack("!H", len(resp)) + resp)
    except OSError:
        pass
    finally:
        conn.close()


def tcp_loop(sock, a_ans, aaaa_ans):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=tcp_client, args=(conn, a_ans, aaaa_ans), daemon=True).start()


def main():
    bind, port, a_ans, aaaa_ans = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    fam = socket.AF_INET6 if ":" in bind else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    u.bind((bind, port))
    t = socket.socket(fam, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((bind, port))
    t.listen(16)
    threading.Thread(target=tcp_loop, args=(t, a_ans, aaaa_ans), daemon=True).start()
    udp_loop(u, a_ans, aaaa_ans)


if __name__ == "__main__":
    main()
