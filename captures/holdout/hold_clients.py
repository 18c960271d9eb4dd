#!/usr/bin/env python3
"""Holdout lab clients (run INSIDE the holdout client netns; they only talk to the address given).

  hold_clients.py http-chunked  SRV PORT          chunked POST then a GET, same keep-alive connection
  hold_clients.py http-large    SRV PORT          100 KB POST then a GET, same connection
  hold_clients.py http-headers  SRV PORT          odd header spellings on one keep-alive connection
  hold_clients.py http-10       SRV PORT          HTTP/1.0 request without Host, UA only
  hold_clients.py midstream     SRV PORT GOFILE   GET, wait for GOFILE to exist, then 2 more GETs
  hold_clients.py dns-tcp-pipe  SRV PORT NAME...  all queries in ONE write on one TCP connection
  hold_clients.py dns-tcp-split SRV PORT NAME     one TCP query split in 3 segments (len | hdr | rest)
  hold_clients.py dns-multiq    SRV PORT N1 N2    one UDP message with QDCOUNT=2
  hold_clients.py ssdp          SRV PORT          unicast M-SEARCH with a USER-AGENT header
  hold_clients.py tls-bighello  SRV PORT SNI      python ssl ClientHello > 16 KB (many long ALPN ids)
  hold_clients.py quic          SRV PORT SNI      aioquic QUIC v1 Initial (ALPN h3)
  hold_clients.py mdns-compressed SRV PORT        3-question mDNS-style query with compression pointers
  hold_clients.py dns-malformed-tail SRV PORT     3 questions, the last one malformed (label length)
  hold_clients.py http-bigheaders SRV PORT        28 KB of headers before User-Agent
  hold_clients.py http-pipeline15 SRV PORT        15 pipelined GETs in one write
"""
import os
import random
import socket
import ssl
import struct
import sys
import time


def conn(srv, port):
    s = socket.create_connection((srv, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_resp(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = 0
    for ln in head.split(b"\r\n"):
        if ln.lower().startswith(b"content-length:"):
            n = int(ln.split(b":")[1])
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return head


def get(host, ua, path="/"):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept: */*\r\n\r\n").encode()


def dnsq(name, qtype=1, qid=None):
    qid = random.randint(0, 65535) if qid is None else qid
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def main():
    m, srv, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a = sys.argv[4:]
    if m == "http-chunked":
        s = conn(srv, port)
        body = [b"api_paste_code=", b"x" * 300, b"&api_option=paste"]
        req = (b"POST /api/api_post.php HTTP/1.1\r\nHost: pastebin.com\r\nUser-Agent: Go-http-client/1.1\r\n"
               b"Transfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n")
        s.sendall(req)
        for b in body:
            time.sleep(0.05)
            s.sendall(b"%x\r\n" % len(b) + b + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        read_resp(s)
        s.sendall(get("transfer.sh", "Go-http-client/1.1 (second-on-keepalive)", "/get/after-chunked"))
        read_resp(s)
        s.close()
    elif m == "http-large":
        s = conn(srv, port)
        body = bytes(random.Random(7).getrandbits(8) for _ in range(100 * 1024))
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: file.io\r\nUser-Agent: PowerShell/7.4 large-upload\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        read_resp(s)
        s.sendall(get("api.telegram.org", "aiohttp/3.9.1 after-large-body", "/bot1/sendDocument"))
        read_resp(s)
        s.close()
    elif m == "http-headers":
        s = conn(srv, port)
        reqs = [
            b"GET /a HTTP/1.1\r\nhost: lower.example.org\r\nuser-agent: lowercase-header-ua/1.0\r\n\r\n",
            b"GET /b HTTP/1.1\r\nHOST: UPPER.EXAMPLE.ORG\r\nUSER-AGENT: UPPERCASE-HEADER-UA/2.0\r\n\r\n",
            b"GET /c HTTP/1.1\r\nHost: ws.example.org\r\nUser-Agent:\t  tab-and-spaces-ua/3.0   \r\n\r\n",
            b"GET /d HTTP/1.1\r\nHost: nospace.example.org\r\nUser-Agent:nospace-ua/4.0\r\n\r\n",
            b"GET /e HTTP/1.1\r\nHost: utf8.example.org\r\nUser-Agent: Mozilla/5.0 (caf\xc3\xa9; \xe6\xb5\x8b\xe8\xaf\x95) utf8-ua\r\n\r\n",
            b"GET /f HTTP/1.1\r\nHost: dup.example.org\r\nUser-Agent: first-dup-ua/1\r\nUser-Agent: second-dup-ua/2\r\n\r\n",
            b"GET /g HTTP/1.1\r\nHost: long.example.org\r\nUser-Agent: " + b"L" * 3000 + b"/long-ua\r\n\r\n",
            b"PUT /i HTTP/1.1\r\nHost: put.example.org\r\nUser-Agent: rclone/v1.65.0\r\nContent-Length: 2\r\n\r\nhi",
            b"HEAD /j HTTP/1.1\r\nHost: head.example.org\r\nUser-Agent: HeadUA/1.0\r\n\r\n",
            # last: bare LF line ends (the lab server does not answer it; we do not wait long)
            b"GET /h HTTP/1.1\nHost: lf-only.example.org\nUser-Agent: bare-lf-ua/1.0\n\n",
        ]
        for r in reqs:
            s.sendall(r)
            if b"\r\n" not in r:
                time.sleep(0.5)
            elif r.startswith(b"HEAD"):
                buf = b""
                while b"\r\n\r\n" not in buf:
                    d = s.recv(4096)
                    if not d:
                        break
                    buf += d
            else:
                read_resp(s)
        s.close()
    elif m == "http-10":
        s = conn(srv, port)
        s.sendall(b"GET /nohost HTTP/1.0\r\nUser-Agent: http10-nohost-ua/1.0\r\n\r\n")
        read_resp(s)
        s.close()
    elif m == "midstream":
        gofile = a[0]
        s = conn(srv, port)
        s.sendall(get("before-capture.example.org", "before-capture-ua/1.0"))
        read_resp(s)
        open(gofile + ".ready", "w").close()
        for _ in range(100):
            if os.path.exists(gofile):
                break
            time.sleep(0.1)
        s.sendall(get("pastebin.com", "midstream-ua/2.0", "/raw/mid1"))
        read_resp(s)
        time.sleep(0.2)
        s.sendall(get("transfer.sh", "midstream-ua/3.0", "/get/mid2"))
        read_resp(s)
        s.close()
    elif m == "dns-tcp-pipe":
        s = conn(srv, port)
        msgs = b"".join(struct.pack("!H", len(q)) + q for q in (dnsq(n) for n in a))
        s.sendall(msgs)
        got = b""
        s.settimeout(3)
        try:
            while got.count(b"\x00\x01\x00\x01") < len(a) and len(got) < 10000:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except OSError:
            pass
        time.sleep(0.2)
        s.close()
    elif m == "dns-tcp-split":
        s = conn(srv, port)
        q = dnsq(a[0])
        m2 = struct.pack("!H", len(q)) + q
        for part in (m2[:1], m2[1:9], m2[9:20], m2[20:]):
            s.sendall(part)
            time.sleep(0.05)
        s.settimeout(3)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    elif m == "dns-multiq":
        u = socket.socket(socket.AF_INET6 if ":" in srv else socket.AF_INET, socket.SOCK_DGRAM)
        q1, q2 = dnsq(a[0]), dnsq(a[1])
        msg = q1[:4] + b"\x00\x02" + q1[6:] + q2[12:]
        u.sendto(msg, (srv, port))
        time.sleep(0.3)
    elif m == "ssdp":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(2)
        u.sendto(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n"
                 b"ST: upnp:rootdevice\r\nUSER-AGENT: Linux/6.1 UPnP/1.1 holdout-ssdp/1.0\r\n\r\n", (srv, port))
        try:
            u.recvfrom(4096)
        except OSError:
            pass
    elif m == "tls-bighello":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["p%03d-" % i + "a" * 240 for i in range(80)] + ["http/1.1"])
        s = conn(srv, port)
        try:
            t = ctx.wrap_socket(s, server_hostname=a[0])
            t.close()
        except (OSError, ssl.SSLError) as e:
            print("handshake:", e, file=sys.stderr)
    elif m == "quic":
        import asyncio
        from aioquic.asyncio import connect
        from aioquic.quic.configuration import QuicConfiguration

        async def run():
            cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name=a[0],
                                    verify_mode=ssl.CERT_NONE)
            async with connect(srv, port, configuration=cfg, wait_connected=True) as c:
                await c.ping()

        asyncio.run(asyncio.wait_for(run(), 5))
    elif m == "dns-malformed-tail":
        # 3 questions; the 3rd has a bad label length (11 for a 10-char label), so only q1/q2 parse
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        q1 = b"\x0agood-first\x07example\x03com\x00" + struct.pack("!HH", 1, 1)
        q2 = b"\x0bgood-second\x07example\x03com\x00" + struct.pack("!HH", 1, 1)
        q3 = b"\x0bbad-length\xc0\x0c" + struct.pack("!HH", 1, 1)
        u.sendto(struct.pack("!HHHHHH", 0x4242, 0x0100, 3, 0, 0, 0) + q1 + q2 + q3, (srv, port))
        time.sleep(0.3)
    elif m == "mdns-compressed":
        # avahi-style multi-question query: second/third names use compression pointers
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        q1 = b"\x05_http\x04_tcp\x05local\x00" + struct.pack("!HH", 12, 0x8001)    # QU bit
        q2 = b"\x04_ipp\xc0\x12" + struct.pack("!HH", 12, 1)                           # -> _tcp.local
        q3 = b"\x0amy-printer\xc0\x22" + struct.pack("!HH", 16, 1)                     # -> _ipp._tcp.local
        msg = struct.pack("!HHHHHH", 0, 0, 3, 0, 0, 0) + q1 + q2 + q3
        u.sendto(msg, (srv, port))
        time.sleep(0.3)
    elif m == "http-bigheaders":
        s = conn(srv, port)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: bigcookie.example.org\r\nCookie: session=" + b"c" * 20000 +
                  b"\r\nX-Filler: " + b"f" * 8000 + b"\r\nUser-Agent: ua-after-28k-of-headers/1.0\r\n\r\n")
        read_resp(s)
        s.close()
    elif m == "http-pipeline15":
        s = conn(srv, port)
        s.sendall(b"".join(get(f"pipe{i}.example.org", f"pipelined-ua-{i}/1.0", f"/p{i}") for i in range(15)))
        time.sleep(0.5)   # responses arrive back to back; we do not parse them
        s.close()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
