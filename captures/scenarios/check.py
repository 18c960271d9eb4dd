#!/usr/bin/env python3
"""Check the scenario captures with tshark against scenarios.json.

Usage: check.py scenarios.json PCAP_DIR [NAME ...]

For each capture (or only the NAMEs given, file names without .pcap): runs
  tshark -r FILE -o http.desegment_body:FALSE -Y 'dns || tls.handshake.type==1 || http.request'
prints what it shows (DNS query names, TLS SNI + JA3 (tshark) + JA4 (computed here from
tshark's ClientHello fields, FoxIO's sorted definition), HTTP method/host/URI/UA) and
(the JA4 code gives FoxIO's values for 16 of the 17 TCP captures in
../shared/datasets/tls-fingerprints/ja4-test-vectors; it differs only for a non-ASCII
ALPN, which these captures do not have; `check.py --ja4 FILE` prints them)
checks that the first packet is at start_utc and that every name / user agent listed
under "must_see" is there.  Exit status 1 if anything is missing.
"""
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

FIELDS = ["frame.number", "tcp.stream", "frame.time_epoch", "ip.src", "ip.dst", "dns.flags.response",
          "dns.qry.name", "dns.qry.type", "tls.handshake.extensions_server_name",
          "tls.handshake.ja3", "http.request.method", "http.host", "http.request.uri",
          "http.user_agent"]


def tshark(path):
    # http.desegment_body off: the upload captures have their bulk cut (see trim-bulk), so
    # tshark could never reassemble the PUT body and would not show the request at all
    cmd = ["tshark", "-n", "-r", path, "-o", "http.desegment_body:FALSE",
           "-Y", "dns || tls.handshake.type==1 || http.request",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = []
    for line in out.splitlines():
        v = line.split("\t")
        rows.append(dict(zip(FIELDS, v + [""] * (len(FIELDS) - len(v)))))
    return rows


JA4_FIELDS = ["tcp.stream", "tls.handshake.version", "tls.handshake.extensions.supported_version",
              "tls.handshake.ciphersuite", "tls.handshake.extension.type",
              "tls.handshake.extensions_alpn_str", "tls.handshake.sig_hash_alg",
              "tls.handshake.sig_hash_alg_len"]


def _grease(v):
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def ja4_by_stream(path):
    """JA4 (sorted form, FoxIO definition) of the first ClientHello of each TCP stream."""
    cmd = ["tshark", "-n", "-r", path, "-o", "http.desegment_body:FALSE", "-Y", "tls.handshake.type==1",
           "-T", "fields", "-E", "separator=\t", "-E", "aggregator=,", "-E", "occurrence=a"]
    for f in JA4_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    res = {}
    for line in out.splitlines():
        v = dict(zip(JA4_FIELDS, line.split("\t") + [""] * len(JA4_FIELDS)))
        if not v["tcp.stream"] or v["tcp.stream"] in res:  # QUIC: not handled here
            continue
        num = lambda s: [int(x, 16) if x.startswith("0x") else int(x) for x in s.split(",") if x]
        vers = [x for x in num(v["tls.handshake.extensions.supported_version"]) if not _grease(x)]
        ver = max(vers) if vers else num(v["tls.handshake.version"].split(",")[0])[0]
        vs = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}.get(ver, "00")
        ciphers = [x for x in num(v["tls.handshake.ciphersuite"]) if not _grease(x)]
        exts = [x for x in num(v["tls.handshake.extension.type"]) if not _grease(x)]
        alpn = v["tls.handshake.extensions_alpn_str"].split(",")[0]
        if not alpn:
            a = "00"
        elif alpn[0].isalnum() and alpn[-1].isalnum():
            a = alpn[0] + alpn[-1]
        else:
            h = alpn.encode().hex()
            a = h[0] + h[-1]
        # tshark lists the algorithms of delegated_credentials (34), signature_algorithms (13)
        # and signature_algorithms_cert (50) in one field, in extension order: keep 13's
        allsig = num(v["tls.handshake.sig_hash_alg"])
        lens = [n // 2 for n in num(v["tls.handshake.sig_hash_alg_len"])]
        holders = [e for e in exts if e in (13, 34, 50)]
        sigs, pos = [], 0
        for e, n in zip(holders, lens):
            if e == 13:
                sigs = ["%04x" % x for x in allsig[pos:pos + n]]
            pos += n
        part_a = "t%s%s%02d%02d%s" % (vs, "d" if 0 in exts else "i", min(len(ciphers), 99),
                                      min(len(exts), 99), a)
        h12 = lambda s: hashlib.sha256(s.encode()).hexdigest()[:12]
        part_b = h12(",".join(sorted("%04x" % c for c in ciphers))) if ciphers else "0" * 12
        ext_s = ",".join(sorted("%04x" % e for e in exts if e not in (0x0000, 0x0010)))
        part_c = h12(ext_s + ("_" + ",".join(sigs) if sigs else "")) if ext_s or sigs else "0" * 12
        res[v["tcp.stream"]] = f"{part_a}_{part_b}_{part_c}"
    return res


def first_time(path):
    out = subprocess.run(["tshark", "-n", "-r", path, "-c", "1", "-T", "fields", "-e",
                          "frame.time_epoch"], capture_output=True, text=True, timeout=60,
                         check=True).stdout.strip()
    return datetime.fromtimestamp(float(out), timezone.utc)


def main():
    if sys.argv[1] == "--ja4":  # check the JA4 code on other captures: print stream, JA4
        for k, v in ja4_by_stream(sys.argv[2]).items():
            print(k, v)
        return
    manifest = json.load(open(sys.argv[1]))
    pdir = sys.argv[2]
    only = set(sys.argv[3:])
    bad = 0
    for sc in manifest["scenarios"]:
        name = sc["file"][:-5]
        if only and name not in only:
            continue
        path = os.path.join(pdir, sc["file"])
        rows = tshark(path)
        ja4 = ja4_by_stream(path)
        seen = {"dns": set(), "sni": set(), "http_host": set(), "http_ua": set(), "src": set()}
        print(f"--- {sc['file']}")
        for r in rows:
            seen["src"].add(r["ip.src"])
            t = datetime.fromtimestamp(float(r["frame.time_epoch"]), timezone.utc).strftime("%H:%M:%S")
            if r["tls.handshake.extensions_server_name"] or r["tls.handshake.ja3"]:
                seen["sni"].add(r["tls.handshake.extensions_server_name"])
                print(f"  {t} {r['ip.src']:>11} -> {r['ip.dst']:<11} TLS  SNI {r['tls.handshake.extensions_server_name']}  ja3 {r['tls.handshake.ja3']}  ja4 {ja4.get(r['tcp.stream'], '?')}")
            elif r["http.request.method"]:
                seen["http_host"].add(r["http.host"])
                seen["http_ua"].add(r["http.user_agent"])
                print(f"  {t} {r['ip.src']:>11} -> {r['ip.dst']:<11} HTTP {r['http.request.method']} {r['http.host']}{r['http.request.uri']}  UA {r['http.user_agent']!r}")
            elif r["dns.qry.name"]:
                if r["dns.flags.response"] in ("0", "False"):
                    seen["dns"].add(r["dns.qry.name"])
                    print(f"  {t} {r['ip.src']:>11} -> {r['ip.dst']:<11} DNS  {r['dns.qry.name']} type {r['dns.qry.type']}")
        seen["src"].discard("10.20.0.53")
        seen["src"] = {s for s in seen["src"] if s.startswith("10.")}
        problems = []
        ft = first_time(path)
        want_t = datetime.fromisoformat(sc["start_utc"].replace("Z", "+00:00"))
        if abs((ft - want_t).total_seconds()) > 0.001:
            problems.append(f"first packet at {ft.isoformat()}, expected {sc['start_utc']}")
        for kind, values in sc.get("must_see", {}).items():
            for v in values:
                if v not in seen[kind]:
                    problems.append(f"{kind} {v!r} not seen")
        hosts = set(sc["hosts"])
        # A capture of record-less flows (sc-udp-provider) has no row to take clients from.
        if seen["src"] != hosts and not (sc.get("record_less") and not rows):
            problems.append(f"client addresses {sorted(seen['src'])}, expected {sorted(hosts)}")
        lost = subprocess.run(["tshark", "-n", "-r", path, "-Y",
                               "tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment"],
                              capture_output=True, text=True, timeout=120, check=True).stdout
        if lost.strip():
            problems.append(f"{len(lost.splitlines())} TCP segments missing from the capture")
        size = os.path.getsize(path)
        status = "OK" if not problems else "FAIL"
        print(f"  {status}: first packet {ft.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}, {size} bytes, "
              f"{len(rows)} DNS/ClientHello/HTTP-request packets")
        for p in problems:
            print("  PROBLEM: " + p)
        bad += bool(problems)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
