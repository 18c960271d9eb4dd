#!/usr/bin/env python3
"""Hand-driven clients for the awkward cases (run inside the lab client netns).

  edge_clients.py tls-segments HOST PORT SNI   ClientHello written in 3 TCP segments
  edge_clients.py tls-records  HOST PORT SNI   ClientHello split into 2 TLS records
  edge_clients.py http-pipeline HOST PORT      3 GET requests in a single send()
  edge_clients.py http-split    HOST PORT      request headers split over 2 segments
  edge_clients.py dns-udp HOST PORT QNAME PAD  one A query padded with EDNS padding

The TLS cases complete a real handshake against the lab server (certificate not
verified) and then send one HTTP/1.1 request inside the tunnel.
"""
import socket
import ssl
import struct
import sys
import time

BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/124.0 Safari/537.36")


def connect(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(5)
    s.connect((host, port))
    return s


def recv_all(s, limit=65536):
    out = b""
    try:
        while len(out) < limit:
            d = s.recv(4096)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    return out


def tls_client(host, port, sni, mode):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # many ALPN values make the ClientHello bigger (and nicely splittable)
    ctx.set_alpn_protocols(["http/1.1", "h2", "spdy/3.1", "spdy/3", "spdy/2", "http/1.0",
                            "webrtc", "c-webrtc", "ftp", "imap", "pop3", "managesieve",
                            "coap", "xmpp-client", "xmpp-server", "acme-tls/1", "mqtt",
                            "dot", "ntske/1", "sunrpc", "h3", "smb", "irc", "postgresql"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=sni)
    s = connect(host, port)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[0] == 22, "expected a handshake record"
    if mode == "segments":
        a, b = 7, len(hello) // 2   # cut inside the record header and in the middle of the SNI area
        for chunk in (hello[:a], hello[a:b], hello[b:]):
            s.sendall(chunk)
            time.sleep(0.2)
    else:
        ver = hello[1:3]
        body = hello[5:]
        cut = 60  # inside the ClientHello, before the extensions
        rec1 = bytes([22]) + ver + struct.pack("!H", cut) + body[:cut]
        rec2 = bytes([22]) + ver + struct.pack("!H", len(body) - cut) + body[cut:]
        s.sendall(rec1 + rec2)
    # pump the rest of the handshake
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = out.read()
            if pending:
                s.sendall(pending)
            data = s.recv(16384)
            if not data:
                raise SystemExit("server closed during handshake")
            inc.write(data)
    pending = out.read()
    if pending:
        s.sendall(pending)
    req = (f"GET /{mode} HTTP/1.1\r\nHost: {sni}\r\nUser-Agent: edge-tls-client/1.0\r\n"
           "Connection: close\r\n\r\n").encode()
    tls.write(req)
    s.sendall(out.read())
    data = recv_all(s)
    inc.write(data)
    try:
        while True:
            if not tls.read(4096):
                break
    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLError):
        pass
    s.close()


def http_pipeline(host, port):
    reqs = [
        ("pipeline-one.example.org", BROWSER_UA, "keep-alive"),
        ("pastebin.com", "python-requests/2.31.0", "keep-alive"),
        ("transfer.sh", "Wget/1.21.3", "close"),
    ]
    blob = b"".join(
        f"GET /p{i} HTTP/1.1\r\nHost: {h}\r\nUser-Agent: {ua}\r\nAccept: */*\r\n"
        f"Connection: {c}\r\n\r\n".encode() for i, (h, ua, c) in enumerate(reqs, 1))
    s = connect(host, port)
    s.sendall(blob)
    recv_all(s)
    s.close()


def http_split(host, port):
    s = connect(host, port)
    s.sendall(b"GET /split HTTP/1.1\r\nHost: api.telegram.org\r\nAccept: */*\r\nUser-")
    time.sleep(0.2)
    s.sendall(b"Agent: curl/7.88.1\r\nConnection: close\r\n\r\n")
    recv_all(s)
    s.close()


def dns_udp(host, port, qname, pad):
    q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 1)
    for lab in qname.split("."):
        q += bytes([len(lab)]) + lab.encode()
    q += b"\x00" + struct.pack("!HH", 1, 1)
    opt_rdata = struct.pack("!HH", 12, pad) + b"\x00" * pad  # EDNS(0) Padding option
    q += b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(opt_rdata)) + opt_rdata
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, (host, port))
    try:
        s.recvfrom(65535)
    except socket.timeout:
        print("dns-udp: no answer", file=sys.stderr)


def main():
    cmd = sys.argv[1]
    if cmd in ("tls-segments", "tls-records"):
        tls_client(sys.argv[2], int(sys.argv[3]), sys.argv[4], cmd.split("-")[1])
    elif cmd == "http-pipeline":
        http_pipeline(sys.argv[2], int(sys.argv[3]))
    elif cmd == "http-split":
        http_split(sys.argv[2], int(sys.argv[3]))
    elif cmd == "dns-udp":
        dns_udp(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
