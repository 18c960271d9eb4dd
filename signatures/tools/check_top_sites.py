#!/usr/bin/env python3
"""No popular site may alert on its own: check the alert-tier domain signatures against a top-sites list.

Usage (from the repository root):

    python3 signatures/tools/check_top_sites.py [--signatures signatures] [--sites tests/data/top-sites-500.txt]

Loads every pack (*.toml) and plain domain list (*.domains) in the signatures directory, keeps the
signatures whose effective action is "alert" (the signature's `action`, else the pack's `action`,
else "alert") and that look at a name field (dns.query, dns.answer, tls.sni, http.host), and
evaluates them, with the semantics of docs/signatures.md, against each site of the list: the name
as listed and the name with a leading "www." removed.

  exact      the whole name equals the pattern (case-insensitive, trailing dot ignored)
  suffix     the name equals the pattern or is a subdomain of it, on label boundaries
  regex      Python `re.search` of the pattern on the name (the bundled regexes use only syntax
             that means the same in Rust's regex crate); unanchored unless anchored
  substring  case-sensitive substring of the name

Exits 0 when no site matches, 1 naming each offending (site, signature id), 2 on a usage or load
error. Python 3.11+ standard library only.
"""

import argparse
import os
import re
import sys
import tomllib

NAME_FIELDS = {"dns.query", "dns.answer", "tls.sni", "http.host"}


def norm(name):
    return name.strip().rstrip(".").lower()


def matches(kind, pattern, name):
    if kind == "exact":
        return name == norm(pattern)
    if kind == "suffix":
        p = norm(pattern)
        return name == p or name.endswith("." + p)
    if kind == "regex":
        return re.search(pattern, name) is not None
    if kind == "substring":
        return pattern in name
    return False  # cidr: not a name


def load_alert_signatures(sig_dir):
    """[(file, id, service, kind, values)] of alert-tier signatures on name fields."""
    out = []
    for fn in sorted(os.listdir(sig_dir)):
        path = os.path.join(sig_dir, fn)
        if fn.endswith(".toml"):
            with open(path, "rb") as f:
                doc = tomllib.load(f)
            if "pack" not in doc:
                continue  # an exception file, not a pack
            pack_action = doc["pack"].get("action", "alert")
            for s in doc.get("signature", []):
                if s.get("action", pack_action) != "alert":
                    continue
                if not NAME_FIELDS & set(s["fields"]):
                    continue
                out.append((fn, s["id"], s.get("service", ""), s["match"], s["values"]))
        elif fn.endswith(".domains"):
            hdr, entries = {}, []
            with open(path, encoding="utf-8") as f:
                for line in f:
                    t = line.strip()
                    m = re.match(r"^#\s*([A-Za-z_]+):\s*(.*)$", t)
                    if m and not entries:
                        hdr.setdefault(m.group(1).lower(), m.group(2).strip())
                        continue
                    t = t.split(" #", 1)[0].strip()
                    if not t or t.startswith("#"):
                        continue
                    if t.startswith("="):
                        entries.append(("exact", t[1:]))
                    else:
                        entries.append(("suffix", t[2:] if t.startswith("*.") else t))
            if hdr.get("action", "alert") != "alert":
                continue
            sid = int(hdr["id"]) if hdr.get("id", "").isdigit() else fn
            for kind, v in entries:
                out.append((fn, sid, hdr.get("service", ""), kind, [v]))
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--signatures", default=os.path.join(root, "signatures"))
    ap.add_argument("--sites", default=os.path.join(root, "tests", "data", "top-sites-500.txt"))
    a = ap.parse_args()
    try:
        sigs = load_alert_signatures(a.signatures)
        with open(a.sites, encoding="utf-8") as f:
            sites = [norm(l) for l in f if l.strip() and not l.lstrip().startswith("#")]
    except (OSError, tomllib.TOMLDecodeError, KeyError, re.error) as e:
        print(f"check_top_sites: {e}", file=sys.stderr)
        return 2
    bad = []
    for site in sites:
        names = [site]
        if site.startswith("www."):
            names.append(site[4:])
        for fn, sid, service, kind, values in sigs:
            for v in values:
                hit = next((n for n in names if matches(kind, v, n)), None)
                if hit:
                    bad.append((site, sid, fn, service, kind, v, hit))
                    break
    for site, sid, fn, service, kind, v, hit in bad:
        print(f"OFFENDING: site {site} (as {hit}) matches alert signature {sid} "
              f"({fn}, {service}: {kind} {v!r})")
    print(f"{len(sites)} sites checked against {len(sigs)} alert-tier name signatures: "
          f"{len(bad)} offending (site, signature) pair(s)"
          f"{'; OK' if not bad else ''}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
