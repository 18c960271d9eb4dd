#!/usr/bin/env python3
"""Lab servers for captures/helpers/make-i14-captures.sh (issue 14 captures).

usage: i14_servers.py raw PORT          plain TCP sink: reads each connection to EOF,
                                        answers one fixed "HTTP/1.1 200" and closes
       i14_servers.py tfo PORT          the same, with TCP_FASTOPEN on the listener
Binds 0.0.0.0:PORT inside the lab server namespace only.
"""
import socket
import sys
import threading

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


def serve(conn, tfo):
    with conn:
        conn.settimeout(10)
        try:
            if tfo:
                # curl sends one request and waits for the answer
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            else:
                while conn.recv(65536):
                    pass
            conn.sendall(REPLY)
        except OSError:
            pass


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mode == "tfo":
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, mode == "tfo"), daemon=True).start()


if __name__ == "__main__":
    main()
