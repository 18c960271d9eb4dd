#!/usr/bin/env python3
"""Sends the lenient-HTTP requests of http-lenient.pcap to a lab server (one connection
each, TCP_NODELAY, every write its own segment).

usage: i14_http_clients.py SERVER_IP PORT

The requests are typed here byte for byte; each one is something a real client or tool sends
and Suricata/Zeek still parse: spaces in the URI, a header line without a colon, a method
token outside the usual list, no URI at all, an obsolete folded header, and a keep-alive
connection whose second segment (a POST body starting "XXXX") is left out of the recording
by the capture filter, so the reader has to resynchronise on the next request line.
"""
import socket
import sys
import time

REQUESTS = [
    # spaces in the URI: method = first token, version = last token
    [b"GET /files/my report 2024.pdf HTTP/1.1\r\nHost: spaces.example-drop.test\r\n"
     b"User-Agent: lenient-spaces/1.0\r\nAccept: */*\r\n\r\n"],
    # a header line without a colon, then more headers
    [b"GET /bad-line HTTP/1.1\r\nHost: badline.example-drop.test\r\n"
     b"this line has no colon\r\nUser-Agent: lenient-badline/1.0\r\n\r\n"],
    # a method token (RFC 7230 tchar) outside the usual list
    [b"X-EXFIL_V2 /upload HTTP/1.1\r\nHost: method.example-drop.test\r\n"
     b"User-Agent: lenient-method/1.0\r\n\r\n"],
    # no URI at all
    [b"GET HTTP/1.1\r\nHost: nouri.example-drop.test\r\nUser-Agent: lenient-nouri/1.0\r\n\r\n"],
    # obsolete line folding: the User-Agent continues on the next line
    [b"GET /fold HTTP/1.1\r\nHost: fold.example-drop.test\r\nUser-Agent: lenient-fold/1.0\r\n"
     b"  (folded continuation)\r\nAccept: */*\r\n\r\n"],
    # keep-alive: a POST whose body segment is missing from the capture, then a GET
    [b"POST /drop HTTP/1.1\r\nHost: gap-one.example-drop.test\r\nUser-Agent: lenient-gap-one/1.0\r\n"
     b"Content-Length: 64\r\n\r\n",
     b"XXXX" + b"x" * 50 + b"\r\n\r\n",          # left out of the recording (filter)
     b"tail of the body that was never seen\r\n"  # resumes mid-body
     b"GET /after-gap HTTP/1.1\r\nHost: gap-two.example-drop.test\r\n"
     b"User-Agent: lenient-gap-two/1.0\r\n\r\n"],
]


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    for parts in REQUESTS:
        s = socket.create_connection((host, port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, p in enumerate(parts):
            if i:
                time.sleep(0.2)
            s.sendall(p)
        time.sleep(0.2)
        s.shutdown(socket.SHUT_WR)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
        s.close()


if __name__ == "__main__":
    main()
