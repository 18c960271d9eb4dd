#!/usr/bin/env python3
"""Lab web server for the scenario captures (issue 11): captures/helpers/web_server.py
plus uploads and a tiny package index.

Usage: lab_web.py PORT [CERT KEY]

Reuses web_server.Handler / web_server.Server unchanged (same fixed "ok" reply, fixed
Date header, dual-stack bind on [::]:PORT, TLS with the lab certificate) and adds:
  * PUT (curl --upload-file), read to the end like POST; Expect: 100-continue is
    answered by http.server itself before the body is sent;
  * bodies sent with Transfer-Encoding: chunked are read to the end (POST and PUT);
  * GET /simple/<name>/ returns a one-link PEP 503 page pointing at
    https://files.pythonhosted.org/packages/lab/<name>-1.0-py3-none-any.whl, so that a
    real `pip download` goes on to fetch from files.pythonhosted.org as it does on the
    internet (the "wheel" it gets is the fixed "ok" body, so pip then fails: expected).
Bodies are read in 64 KiB pieces and thrown away.  Only ever runs inside the lab
server netns.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
import web_server  # noqa: E402  (captures/helpers/web_server.py, not modified)


class UploadHandler(web_server.Handler):
    def _drain(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    return
                size = int(line.split(b";")[0].strip() or b"0", 16)
                left = size
                while left:
                    got = self.rfile.read(min(left, 65536))
                    if not got:
                        return
                    left -= len(got)
                self.rfile.readline(1024)  # CRLF after the chunk (or after the last, empty one)
                if size == 0:
                    return
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            got = self.rfile.read(min(left, 65536))
            if not got:
                return
            left -= len(got)

    def do_POST(self):
        self._drain()
        self._reply()

    def do_PUT(self):
        self._drain()
        self._reply()

    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if len(parts) == 2 and parts[0] == "simple":
            name = parts[1]
            body = ("<!DOCTYPE html><html><body>"
                    f'<a href="https://files.pythonhosted.org/packages/lab/{name}-1.0-py3-none-any.whl">'
                    f"{name}-1.0-py3-none-any.whl</a></body></html>\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self._reply()


def main():
    web_server.Handler = UploadHandler  # web_server.main() builds Server(("::", port), Handler)
    web_server.main()


if __name__ == "__main__":
    main()
