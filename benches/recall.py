#!/usr/bin/env python3
"""Recall of cloudtap's extraction against tshark (the oracle), per field, over captures.

    python3 benches/recall.py [--bin target/release/cloudtap] CAPTURE_OR_DIR ...

For every capture: the distinct values tshark 4.0 finds (two-pass, TCP reassembly and IP
defragmentation on, as tests/gen-expected.sh) and those cloudtap writes in its dns/tls/quic/http
records, per field:
  dns.query        DNS query names (lower-cased)
  tls.sni          SNI of TCP ClientHellos (lower-cased)
  quic.sni         SNI of QUIC Initial ClientHellos (lower-cased)
  http.host        HTTP Host, lower-cased, port stripped
  http.user_agent  HTTP User-Agent, as is
recall = |cloudtap & tshark| / |tshark| summed over captures (a value counts once per capture).
Prints a Markdown table and every miss (capture, field, value); --json writes the figures.
Exit status 0 whatever the figures: this is a measurement, the tests assert.
"""
import argparse
import json
import os
import subprocess
import sys

TSHARK = ["tshark", "-n", "-2",
          "-d", "tcp.port==8081,http", "-d", "tcp.port==8443,tls",
          "-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tcp.reassemble_out_of_order:TRUE",
          "-o", "ip.defragment:TRUE", "-o", "ipv6.defragment:TRUE",
          "-o", "tls.desegment_ssl_records:TRUE", "-o", "http.desegment_headers:TRUE",
          "-o", "dns.desegment_dns_messages:TRUE"]
FIELDS = ["dns.query", "tls.sni", "quic.sni", "http.host", "http.user_agent"]


def unescape(name):
    """cloudtap writes names in DNS presentation format (\\DDD for bytes outside printable
    ASCII and for dots/backslashes inside a label); tshark prints them raw."""
    out, i = bytearray(), 0
    b = name.encode("utf-8", "surrogateescape")
    while i < len(b):
        if b[i] == 0x5C and i + 3 < len(b) + 1 and b[i + 1:i + 4].isdigit():
            out.append(int(b[i + 1:i + 4]) & 0xFF)
            i += 4
        elif b[i] == 0x5C and i + 1 < len(b):
            out.append(b[i + 1])
            i += 2
        else:
            out.append(b[i])
            i += 1
    return out.decode("utf-8", "replace")


def ascii_key(v):
    """tshark 4.0 prints each byte outside ASCII of a header as U+FFFD; cloudtap keeps the
    UTF-8. Both become one '?' per byte, so a header compares whatever its encoding."""
    v = v.replace("\ufffd", "?")
    return "".join(c if ord(c) < 0x80 else "?" * len(c.encode("utf-8", "surrogatepass")) for c in v)


def norm_host(v):
    v = v.lower()
    return v[1:-1] if v.startswith("[") and v.endswith("]") else v


def tshark_values(path):
    cmd = TSHARK + ["-r", path, "-Y",
                    "(dns && dns.flags.response == 0) || tls.handshake.type == 1 || http.request",
                    "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f",
                    "-e", "dns.qry.name", "-e", "tls.handshake.extensions_server_name",
                    "-e", "quic.version", "-e", "http.host", "-e", "http.user_agent",
                    "-e", "http.request.method"]
    r = subprocess.run(cmd, capture_output=True, timeout=600)
    out = {f: set() for f in FIELDS}
    for line in r.stdout.decode("utf-8", "surrogateescape").splitlines():
        cols = line.split("\t")
        cols += [""] * (6 - len(cols))
        q, sni, quic, host, ua, method = cols[:6]
        for v in filter(None, q.split("\x1f")):
            out["dns.query"].add(v.lower())
        for v in filter(None, sni.split("\x1f")):
            out["quic.sni" if quic else "tls.sni"].add(v.lower())
        if method:
            for v in filter(None, host.split("\x1f")):
                v = v.lower()
                if v.startswith("[") and "]" in v:
                    v = v[: v.index("]") + 1]
                elif v.count(":") == 1:
                    v = v.split(":")[0]
                out["http.host"].add(norm_host(v))
            # Header values compare without surrounding white space (RFC 9110 trims it).
            for v in filter(None, ua.split("\x1f")):
                out["http.user_agent"].add(ascii_key(v.strip()))
    return out


def cloudtap_values(binary, path):
    r = subprocess.run([binary, "-q", "--threads", "2", "--types", "dns,tls,quic,http",
                        "-r", path], capture_output=True, timeout=600)
    out = {f: set() for f in FIELDS}
    if r.returncode != 0:
        sys.stderr.write(f"recall: cloudtap failed on {path}: {r.stderr.decode()[:300]}\n")
        return out
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        e = json.loads(line)
        t = e.get("event_type")
        if t == "dns":
            d = e["dns"]
            for q in d.get("queries") or ([d] if d.get("rrname") else []):
                if d.get("type", "query") == "query" and q.get("rrname"):
                    out["dns.query"].add(unescape(q["rrname"]).lower())
        elif t == "tls" and e["tls"].get("sni"):
            out["tls.sni"].add(e["tls"]["sni"].lower())
        elif t == "quic" and e["quic"].get("sni"):
            out["quic.sni"].add(e["quic"]["sni"].lower())
        elif t == "http":
            h = e["http"]
            if h.get("hostname"):
                out["http.host"].add(norm_host(h["hostname"]))
            # Several User-Agent headers are one value joined with ", " (as Suricata).
            if h.get("http_user_agent"):
                ua = h["http_user_agent"]
                out["http.user_agent"].add(ascii_key(ua.strip()))
                for part in ua.split(", "):
                    out["http.user_agent"].add(ascii_key(part.strip()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "cloudtap"))
    ap.add_argument("--json")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    caps = []
    for p in a.paths:
        if os.path.isdir(p):
            caps += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith((".pcap", ".pcapng")))
        else:
            caps.append(p)
    tot = {f: [0, 0] for f in FIELDS}
    misses = []
    for c in caps:
        t, ct = tshark_values(c), cloudtap_values(a.bin, c)
        for f in FIELDS:
            tot[f][0] += len(t[f] & ct[f])
            tot[f][1] += len(t[f])
            for v in sorted(t[f] - ct[f]):
                misses.append((os.path.basename(c), f, v))
    print(f"{len(caps)} captures\n")
    print("| field | found by tshark | also by cloudtap | recall |")
    print("|---|---:|---:|---:|")
    for f in FIELDS:
        hit, n = tot[f]
        print(f"| {f} | {n} | {hit} | {hit / n:.4f} |" if n else f"| {f} | 0 | 0 | - |")
    if misses:
        print("\nmisses:")
        for m in misses[:200]:
            print("  %s  %s  %r" % m)
    if a.json:
        json.dump({"captures": len(caps), "fields": {f: {"tshark": tot[f][1], "cloudtap": tot[f][0]} for f in FIELDS},
                   "misses": misses}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
