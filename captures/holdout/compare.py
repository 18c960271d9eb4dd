#!/usr/bin/env python3
"""Compare tshark (the oracle, same options as tests/gen-expected.sh plus decode-as for the
holdout's non-standard ports) with cloudtap on the holdout captures.

usage: compare.py [--bin /tmp/cloudtap-holdout] [--json OUT] [capture ...]
       (default: every *.pcap / *.pcapng next to this script)

Per capture it prints
  MISS   value tshark found and cloudtap did not   (acceptance: DNS query, SNI, User-Agent)
  EXTRA  value cloudtap found and tshark did not
  COUNT  DNS (name, qtype) seen a different number of times (informational)
  EXIT   non-zero exit code / crash of cloudtap, and its stderr summary line
Fields: dns_queries, dns_answers (CNAME targets), tls_sni (TLS and QUIC ClientHello),
http_user_agents (exact), http_hosts (lower-cased, port stripped).
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TSHARK_OPTS = [
    "-n", "-2",
    "-d", "tcp.port==8081,http", "-d", "tcp.port==8443,tls",
    # holdout: non-standard ports used by the holdout lab
    "-d", "tcp.port==8888,http", "-d", "tcp.port==4433,tls",
    "-d", "udp.port==5300,dns", "-d", "tcp.port==5300,dns", "-d", "udp.port==4443,quic",
    "-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tcp.reassemble_out_of_order:TRUE",
    "-o", "ip.defragment:TRUE", "-o", "ipv6.defragment:TRUE",
    "-o", "tls.desegment_ssl_records:TRUE", "-o", "tls.desegment_ssl_application_data:TRUE",
    "-o", "http.desegment_headers:TRUE", "-o", "http.desegment_body:TRUE",
    "-o", "dns.desegment_dns_messages:TRUE",
]
KEYS = ["dns_queries", "dns_answers", "tls_sni", "http_user_agents", "http_hosts"]
ACCEPT = {"dns_queries", "tls_sni", "http_user_agents"}


def tshark_fields(path, dfilter, fields):
    cmd = ["tshark", *TSHARK_OPTS, "-r", path, "-Y", dfilter, "-T", "fields",
           "-E", "occurrence=a", "-E", "aggregator=\x1f", "-E", "separator=\x1e"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, timeout=120).stdout.decode("utf-8", "surrogateescape")
    rows = []
    for line in out.split("\n"):
        if not line:
            continue
        cols = line.split("\x1e")
        rows.append([[v for v in c.split("\x1f") if v != ""] for c in cols])
    return rows


def host(h):
    h = h.strip().lower()
    if h.startswith("["):
        return h[1:h.index("]")] if "]" in h else h
    if h.count(":") == 1:
        h = re.sub(r":\d*$", "", h)
    return h


def oracle(path):
    d = {k: set() for k in KEYS}
    qcount = collections.Counter()
    for names, types in tshark_fields(path, "dns.flags.response == 0", ["dns.qry.name", "dns.qry.type"]):
        for i, n in enumerate(names):
            d["dns_queries"].add(n.lower())
            qcount[(n.lower(), types[i] if i < len(types) else "?")] += 1
    for (c,) in tshark_fields(path, "dns.flags.response == 1", ["dns.cname"]):
        d["dns_answers"].update(v.lower() for v in c)
    for (s,) in tshark_fields(path, "tls.handshake.type == 1", ["tls.handshake.extensions_server_name"]):
        d["tls_sni"].update(v.lower() for v in s)
    for ua, h in tshark_fields(path, "http.request", ["http.user_agent", "http.host"]):
        d["http_user_agents"].update(ua)
        d["http_hosts"].update(host(v) for v in h)
    return d, qcount


QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
          "NAPTR": 35, "OPT": 41, "DNSKEY": 48, "SVCB": 64, "HTTPS": 65, "ANY": 255, "CAA": 257, "AXFR": 252}


def sensor(binary, path):
    p = subprocess.run([binary, "--types", "alert,dns,tls,http,quic", "-r", path],
                       capture_output=True, timeout=120)
    d = {k: set() for k in KEYS}
    qcount = collections.Counter()
    bad = 0
    for line in p.stdout.decode("utf-8", "surrogateescape").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            bad += 1
            continue
        et = e.get("event_type")
        if et == "dns":
            dn = e.get("dns", {})
            if dn.get("type") == "query":
                n = dn.get("rrname", "")
                d["dns_queries"].add(n.lower())
                t = dn.get("rrtype", "?")
                qcount[(n.lower(), str(QTYPES.get(t, t)))] += 1
            elif dn.get("type") == "answer":
                for a in dn.get("answers", []) or []:
                    if a.get("rrtype") == "CNAME":
                        d["dns_answers"].add(str(a.get("rdata", "")).lower())
        elif et in ("tls", "quic"):
            sni = e.get(et, {}).get("sni")
            if sni:
                d["tls_sni"].add(sni.lower())
        elif et == "http":
            h = e.get("http", {})
            if "http_user_agent" in h:
                d["http_user_agents"].add(h["http_user_agent"])
            if h.get("hostname"):
                d["http_hosts"].add(host(h["hostname"]))
    err = p.stderr.decode("utf-8", "replace")
    return d, qcount, p.returncode, err, bad


def short(v, n=110):
    r = repr(v)
    return r if len(r) <= n else r[:n - 20] + f"...<{len(v)} chars>'"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="/tmp/cloudtap-holdout")
    ap.add_argument("--json")
    ap.add_argument("caps", nargs="*")
    a = ap.parse_args()
    caps = a.caps or sorted(glob.glob(os.path.join(HERE, "*.pcap")) + glob.glob(os.path.join(HERE, "*.pcapng")))
    report = {}
    tot_miss = tot_extra = 0
    for c in caps:
        name = os.path.basename(c)
        o, oq = oracle(c)
        s, sq, rc, err, bad = sensor(a.bin, c)
        r = {"exit": rc, "miss": {}, "extra": {}, "count": []}
        print(f"=== {name}  ({os.path.getsize(c)} bytes)  exit={rc}" + (f"  bad-json-lines={bad}" if bad else ""))
        if rc != 0 or "panic" in err.lower():
            print("  EXIT/CRASH:", err.strip()[-800:])
        summ = [l.strip() for l in err.splitlines() if l.strip().startswith(("records:", "packets", "decoded", "flows evicted"))]
        for l in summ:
            print("  summary:", l)
        for k in KEYS:
            miss = sorted(o[k] - s[k])
            extra = sorted(s[k] - o[k])
            tag = "" if k in ACCEPT else " (info)"
            for v in miss:
                print(f"  MISS  {k}{tag}: {short(v)}")
            for v in extra:
                print(f"  EXTRA {k}{tag}: {short(v)}")
            if miss:
                r["miss"][k] = miss
            if extra:
                r["extra"][k] = extra
            if k in ACCEPT:
                tot_miss += len(miss)
            tot_extra += len(extra)
        for key in sorted(set(oq) | set(sq)):
            if key[0] in o["dns_queries"] and key[0] in s["dns_queries"] and oq[key] != sq[key]:
                print(f"  COUNT dns query {key}: tshark {oq[key]} cloudtap {sq[key]}")
                r["count"].append([list(key), oq[key], sq[key]])
        print(f"  tshark: " + ", ".join(f"{k}={len(o[k])}" for k in KEYS))
        report[name] = r
    print(f"\nTOTAL acceptance misses: {tot_miss}   extras (all fields): {tot_extra}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
