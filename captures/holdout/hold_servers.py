#!/usr/bin/env python3
"""Extra lab servers for the holdout captures.  Run INSIDE the holdout server netns only.

usage:
  hold_servers.py http   BIND PORT                 HTTP/1.1 keep-alive, Content-Length + chunked bodies
  hold_servers.py proxy  BIND PORT BACKEND         CONNECT / absolute-URI proxy; every tunnel goes to
                                                   BACKEND:443 (CONNECT x:443), BACKEND:80 (CONNECT x:80
                                                   and plain absolute-URI requests), whatever
                                                   host the client asked for (never leaves the lab)
  hold_servers.py smtp   BIND PORT CERT KEY        SMTP banner/EHLO/STARTTLS then TLS
  hold_servers.py ssdp   BIND PORT                 answers M-SEARCH with a 200
  hold_servers.py quic   BIND PORT CERT KEY        aioquic server (accepts any ALPN of h3/hq-interop)
"""
import socket
import ssl
import sys
import threading


def recv_until(conn, buf, marker):
    while marker not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return buf, False
        buf += chunk
    return buf, True


def recv_exact(conn, buf, n):
    while len(buf) < n:
        chunk = conn.recv(65536)
        if not chunk:
            return buf, False
        buf += chunk
    return buf, True


# ----------------------------------------------------------------------------- http
def http_client(conn):
    conn.settimeout(10)
    buf = b""
    try:
        for _ in range(100):
            buf, ok = recv_until(conn, buf, b"\r\n\r\n")
            if not ok:
                return
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            hdrs = {}
            for ln in lines[1:]:
                if b":" in ln:
                    k, v = ln.split(b":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            if hdrs.get(b"expect", b"").lower() == b"100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if b"chunked" in hdrs.get(b"transfer-encoding", b"").lower():
                while True:
                    buf, ok = recv_until(conn, buf, b"\r\n")
                    if not ok:
                        return
                    szl, buf = buf.split(b"\r\n", 1)
                    sz = int(szl.split(b";")[0], 16)
                    if sz == 0:
                        buf, ok = recv_until(conn, buf, b"\r\n")
                        buf = buf.split(b"\r\n", 1)[1]
                        break
                    buf, ok = recv_exact(conn, buf, sz + 2)
                    if not ok:
                        return
                    buf = buf[sz + 2:]
            else:
                n = int(hdrs.get(b"content-length", b"0") or 0)
                buf, ok = recv_exact(conn, buf, n)
                if not ok:
                    return
                buf = buf[n:]
            body = b"ok\n"
            ver = lines[0].split(b" ")[-1]
            close = ver == b"HTTP/1.0" or hdrs.get(b"connection", b"").lower() == b"close"
            conn.sendall(ver + b" 200 OK\r\nServer: hold-httpd\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                         b"Content-Type: text/plain\r\nContent-Length: 3\r\n" +
                         (b"Connection: close\r\n" if close else b"") + b"\r\n" + body)
            if close:
                return
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


def serve_tcp(bind, port, handler):
    fam = socket.AF_INET6 if ":" in bind else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((bind, port))
    s.listen(32)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


# ----------------------------------------------------------------------------- proxy
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def proxy_client(conn, backend):
    conn.settimeout(15)
    try:
        buf, ok = recv_until(conn, b"", b"\r\n\r\n")
        if not ok:
            return
        first = buf.split(b"\r\n", 1)[0]
        if first.startswith(b"CONNECT "):
            tport = 80 if first.split(b" ")[1].endswith(b":80") else 443
            up = socket.create_connection((backend, tport), timeout=10)
            head, rest = buf.split(b"\r\n\r\n", 1)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                up.sendall(rest)
        else:
            up = socket.create_connection((backend, 80), timeout=10)
            up.sendall(buf)
        t = threading.Thread(target=pump, args=(up, conn), daemon=True)
        t.start()
        pump(conn, up)
        t.join(15)
    except OSError:
        pass
    finally:
        conn.close()


# ----------------------------------------------------------------------------- smtp
def smtp_client(conn, ctx):
    conn.settimeout(10)
    f = None
    try:
        conn.sendall(b"220 mail.lab ESMTP hold\r\n")
        buf = b""
        tls = False
        for _ in range(20):
            buf, ok = recv_until(conn, buf, b"\r\n")
            if not ok:
                return
            line, buf = buf.split(b"\r\n", 1)
            cmd = line.split(b" ")[0].upper()
            if cmd in (b"EHLO", b"HELO"):
                if tls:
                    conn.sendall(b"250-mail.lab\r\n250 AUTH PLAIN\r\n")
                else:
                    conn.sendall(b"250-mail.lab\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            elif cmd == b"STARTTLS" and not tls:
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                conn = ctx.wrap_socket(conn, server_side=True)
                tls = True
                buf = b""
            elif cmd == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


# ----------------------------------------------------------------------------- ssdp
def ssdp(bind, port):
    fam = socket.AF_INET6 if ":" in bind else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((bind, port))
    while True:
        data, peer = s.recvfrom(65535)
        if data.startswith(b"M-SEARCH"):
            s.sendto(b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\n"
                     b"USN: uuid:00000000-0000-0000-0000-000000000001::upnp:rootdevice\r\n"
                     b"SERVER: Linux/6 UPnP/1.1 hold/1.0\r\nLOCATION: http://10.98.0.2/desc.xml\r\n\r\n", peer)


# ----------------------------------------------------------------------------- quic
def quic(bind, port, cert, key):
    import asyncio
    from aioquic.asyncio import serve
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived

    class P(QuicConnectionProtocol):
        def quic_event_received(self, ev):
            if isinstance(ev, StreamDataReceived):
                self._quic.send_stream_data(ev.stream_id, b"ok\n", end_stream=True)
                self.transmit()

    async def main():
        cfg = QuicConfiguration(is_client=False, alpn_protocols=["h3", "hq-interop", "doq"])
        cfg.load_cert_chain(cert, key)
        await serve(bind, port, configuration=cfg, create_protocol=P)
        await asyncio.Future()

    asyncio.run(main())


def main():
    mode = sys.argv[1]
    if mode == "http":
        serve_tcp(sys.argv[2], int(sys.argv[3]), http_client)
    elif mode == "proxy":
        backend = sys.argv[4]
        serve_tcp(sys.argv[2], int(sys.argv[3]), lambda c: proxy_client(c, backend))
    elif mode == "smtp":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])
        serve_tcp(sys.argv[2], int(sys.argv[3]), lambda c: smtp_client(c, ctx))
    elif mode == "ssdp":
        ssdp(sys.argv[2], int(sys.argv[3]))
    elif mode == "quic":
        quic(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
