#!/usr/bin/env python3
"""JA4 of every TLS and QUIC flow: cloudtap against Suricata 7, on the same captures.

    python3 benches/ja4_vs_suricata.py [--bin target/release/cloudtap] CAPTURE_OR_DIR ...

Suricata runs with its packaged configuration (/etc/suricata/suricata.yaml) changed only to
compute and log JA4 (`app-layer.protocols.tls.ja4-fingerprints: yes`, eve `tls`/`quic`
`ja4: on`), no rules. A flow is keyed by its 4-tuple (addresses compared as addresses:
Suricata writes IPv6 uncompressed). A flow agrees when Suricata's JA4 is among cloudtap's for
that flow (cloudtap reports every ClientHello of a flow, Suricata one). Prints per-capture
and total agreement and every disagreement; exit 0 whatever the figures.
Needs Suricata 7 built with JA4 (`suricata --build-info | grep JA4`).
"""
import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile


def key(e):
    return (str(ipaddress.ip_address(e["src_ip"])), int(e.get("src_port", 0)),
            str(ipaddress.ip_address(e["dest_ip"])), int(e.get("dest_port", 0)))


def config(tmp):
    y = open("/etc/suricata/suricata.yaml").read()
    y = y.replace("#ja4-fingerprints: auto", "ja4-fingerprints: yes")
    y = re.sub(r"#\s*ja4: off", "ja4: on", y)
    p = os.path.join(tmp, "suricata.yaml")
    open(p, "w").write(y)
    return p


def suricata(cfg, cap, tmp):
    logdir = tempfile.mkdtemp(dir=tmp)
    subprocess.run(["suricata", "-c", cfg, "-k", "none", "--runmode", "single", "-r", cap,
                    "-l", logdir, "-S", "/dev/null"], capture_output=True, timeout=600)
    out = {}
    path = os.path.join(logdir, "eve.json")
    if not os.path.exists(path):
        return out
    for line in open(path, errors="replace"):
        e = json.loads(line)
        for t in ("tls", "quic"):
            j = e.get(t, {}).get("ja4") if e.get("event_type") == t else None
            if j:
                out[(t,) + key(e)] = j
    return out


def cloudtap(binary, cap):
    r = subprocess.run([binary, "-q", "--types", "tls,quic", "-r", cap], capture_output=True,
                       timeout=600)
    out = {}
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        e = json.loads(line)
        t = e["event_type"]
        j = e.get(t, {}).get("ja4")
        if j:
            out.setdefault((t,) + key(e), set()).add(j)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "cloudtap"))
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    caps = []
    for p in a.paths:
        if os.path.isdir(p):
            caps += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith((".pcap", ".pcapng")))
        else:
            caps.append(p)
    tmp = tempfile.mkdtemp()
    cfg = config(tmp)
    agree = total = only_ct = 0
    diffs = []
    for c in caps:
        s, ct = suricata(cfg, c, tmp), cloudtap(a.bin, c)
        for k, j in s.items():
            total += 1
            if j in ct.get(k, set()):
                agree += 1
            else:
                diffs.append((os.path.basename(c), k, j, sorted(ct.get(k, set()))))
        only_ct += sum(1 for k in ct if k not in s)
    print(f"{len(caps)} captures: {total} flows with a JA4 from Suricata 7; cloudtap agrees on {agree}"
          + (f" ({agree / total:.4f})" if total else "")
          + f"; {only_ct} flows have a JA4 from cloudtap only")
    for d in diffs:
        print("  differs: %s %s suricata %s cloudtap %s" % d)


if __name__ == "__main__":
    main()
