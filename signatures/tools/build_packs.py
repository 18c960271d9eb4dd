#!/usr/bin/env python3
"""Build cloudtap's generated signature packs from the shared datasets.

Usage (from the repository root):

    python3 signatures/tools/build_packs.py --datasets ../shared/datasets --out signatures

Python 3.11+ standard library only. The output is deterministic: the same datasets and the same
id registry (signatures/tools/id-registry.json) give byte-identical files.

Writes:
  <out>/cloud-providers.toml          label pack: provider/service host names + [[import]] IP ranges
  <out>/cloud/<provider>/<file>       publisher IP-range files, copied byte-for-byte
  <out>/abused-lots.toml              LOTS Project sites (no stated licence)
  <out>/abused-tunnels.toml           LOTTunnels tunnelling services (GPL-3.0)
  <out>/abused-filehosting.toml       mthcht FileHosting + PastebinLike services (MIT)
  <out>/script-agents.useragents      plain list of script/tool user agents (MIT sources)
  <out>/cloud-consoles.toml           label pack: cloud console / sign-up endpoints (hand-picked list)
  <out>/script-tls-fingerprints.toml  label pack: JA3/JA4 of script and automation tools

Tiers (issue 11): every generated signature gets an action ("alert" only for endpoints that
ordinary offices seldom use and attackers love, with a one-sentence rationale; "label" for
context), a service_category, and for TLS fingerprints a confidence. The per-entry decisions are
the tables LOTS_CATEGORY, TUNNEL_ALERT/TUNNEL_LABEL, FILEHOSTING_TIER and CLOUD_CATEGORY below;
an entry a dataset update adds that is not in them becomes a label and is reported ("review").
Check the result with signatures/tools/check_top_sites.py (no top-500 site may alert).

Ids are kept stable across dataset updates by the id registry: a key (site, service, tool, ...)
keeps its id forever; new keys get the next free id of the pack; ids of keys that disappear are
never reused. Delete the registry only if you really want to renumber everything.

Domain packs are de-duplicated against the hand-written signatures/web-services.toml and
signatures/script-agents.toml and against each other, so one name or user agent never alerts
from two packs. Everything skipped is printed with the reason. After writing, the whole
signatures/ directory is validated (TOML syntax, unique ids, regex syntax, values).
"""

import argparse
import csv
import datetime
import io
import json
import os
import re
import shutil
import sys
import tomllib

PACK_VERSION_DEFAULT = "2026.12.04"

# Revision of the signatures of the packs generated before the tiers (issue 11): 2 = action,
# service_category and rationale added. New packs start at 1.
REV_TIERS = 2

# Tiers (docs/signatures.md, "Tiers"). action = "alert": the match alerts on its own, for
# endpoints that ordinary offices seldom use and attackers love (quick tunnels, raw paste sites,
# anonymous file drops, bot and webhook APIs, request catchers, dynamic DNS, OAST callbacks);
# every such signature carries a one-sentence `rationale`. action = "label": context only (LOTS
# catalogue, popular SaaS, social networks, ad/CDN, URL shorteners, big providers' storage,
# compute and consoles, provider address ranges, script agents); the detection stage turns a
# label into an alert only when another signal joins it.
SERVICE_CATEGORIES = [
    "tunnel", "paste", "file-drop", "messaging-api", "webhook", "dynamic-dns", "oast",
    "cloud-storage", "cloud-compute", "app-hosting", "code-hosting", "cloud-drive", "saas",
    "social", "ad-cdn", "url-shortener", "cloud-console", "script-agent", "script-fingerprint",
    "provider-range", "other",
]
CONFIDENCES = ["high", "medium", "low"]

DOMAIN_FIELDS = ["dns.query", "dns.answer", "tls.sni", "http.host"]

ATTACK_NOTICE = ("ATT&CK IDs and names are used under the MITRE ATT&CK terms of use "
                 "((c) 2025 The MITRE Corporation. This work is reproduced and distributed with "
                 "the permission of The MITRE Corporation.)")

# Id blocks of the generated packs (first id of each block). See docs/signatures.md.
ID_BASE = {
    "cloud-providers/domain": 9400001,
    "cloud-providers/import": 9410001,
    "abused-lots": 9500001,
    "abused-tunnels": 9510001,
    "abused-filehosting": 9520001,
    "script-agents-extra": 9600001,
    "cloud-consoles": 9300001,
    "script-tls-fingerprints": 9310001,
}
ID_LIMIT = {
    "cloud-providers/domain": 9409999,
    "cloud-providers/import": 9419999,
    "abused-lots": 9509999,
    "abused-tunnels": 9519999,
    "abused-filehosting": 9529999,
    "script-agents-extra": 9600001,
    "cloud-consoles": 9309999,
    "script-tls-fingerprints": 9319999,
}

# Provenance (from datasets/PROVENANCE.md). Key = path relative to the datasets folder.
SOURCES = {
    "cloud-ip-ranges/aws/ip-ranges.json":
        "seligman/aws-ip-ranges ip-ranges.json, commit 7a942b53, 2026-08-22 (createDate 2026-08-22-15-17-05); AWS-published data, mirror repo MIT",
    "cloud-ip-ranges/google/cloud.json":
        "femueller/cloud-ip-ranges google-cloud-ip-ranges.json, commit e0dfd998, 2025-07-25 (creationTime 2025-07-24T19:16:28); Google-published data, mirror has no licence file",
    "cloud-ip-ranges/google/goog.json":
        "berthubert/googerteller goog.json, commit 24ec2e56, 2024-04-25 (creationTime 2024-04-25T07:05:03); Google-published data, repo MIT; OLD (April 2024)",
    "cloud-ip-ranges/azure/ServiceTags_Public.json":
        "femueller/cloud-ip-ranges microsoft-azure-ip-ranges.json, commit a7f298df, 2025-07-22 (changeNumber 363, cloud Public); Microsoft-published data, mirror has no licence file; complete file, not reduced",
    "cloud-ip-ranges/oracle/public_ip_ranges.json":
        "femueller/cloud-ip-ranges oracle-cloud-ip-ranges.json, commit 8b8719ce, 2025-07-21 (last_updated_timestamp 2025-07-21T07:13:25); Oracle-published data",
    "cloud-ip-ranges/digitalocean/google.csv":
        "femueller/cloud-ip-ranges digitalocean.csv, commit 9c4c2176, 2025-07-22; DigitalOcean-published RFC 8805 geofeed",
    "cloud-ip-ranges/linode/geofeed.txt":
        "femueller/cloud-ip-ranges linode.txt, commit 369d1879, 2025-07-24 (Last modified 2025-07-24); Akamai/Linode-published RFC 8805 geofeed",
    "cloud-ip-ranges/cloudflare/ips-v4.txt":
        "femueller/cloud-ip-ranges cloudflare-v4-ip-ranges.txt, commit 54d92d48, 2024-10-29; Cloudflare-published data (same set as lord-alfred/ipranges 2026-08-22)",
    "cloud-ip-ranges/cloudflare/ips-v6.txt":
        "femueller/cloud-ip-ranges cloudflare-v6-ip-ranges.txt, commit 0a2c8bab, 2023-10-11; Cloudflare-published data (same set as lord-alfred/ipranges 2026-08-22)",
    "cloud-ip-ranges/github/meta.json":
        "femueller/cloud-ip-ranges github-ip-ranges.json, commit 60937f4c, 2025-07-25; GitHub API output (api.github.com/meta)",
    "cloud-ip-ranges/fastly/public-ip-list.json":
        "femueller/cloud-ip-ranges fastly-ip-ranges.json, commit 672d1837, 2024-10-08; Fastly-published data",
    "cloud-ip-ranges/derived-lord-alfred/vultr/ipv4_merged.txt":
        "lord-alfred/ipranges vultr/ipv4_merged.txt, commit 14dd971b, 2026-08-22; CC0-1.0; derived (merged CIDRs), not a native Vultr feed",
    "cloud-ip-ranges/derived-lord-alfred/vultr/ipv6_merged.txt":
        "lord-alfred/ipranges vultr/ipv6_merged.txt, commit 14dd971b, 2026-08-22; CC0-1.0; derived (merged CIDRs), not a native Vultr feed",
    "abused-services/lots/lots_sites_normalized.csv":
        "LOTS Project (lots-project.com, by mr.d0x) via the cyberside2023/TH scrape lots.csv, commit 7f26dad7, 2024-05-23, normalised 2026-11-27; NO STATED LICENCE",
    "abused-services/lottunnels/domains.csv":
        "LOTTunnels/LOTTunnels.github.io _lottunnels/CSVs/domains.csv, commit bc227ee8, 2026-08-18; GPL-3.0",
    "abused-services/mthcht-threathunting-keywords/FileHosting_Services_tag_detection.csv":
        "mthcht/ThreatHunting-Keywords FileHosting_Services_tag_detection.csv, commit 755048bf, 2025-04-24; MIT",
    "abused-services/mthcht-threathunting-keywords/PastebinLike_tag_detection.csv":
        "mthcht/ThreatHunting-Keywords PastebinLike_tag_detection.csv, commit 755048bf, 2025-04-24; MIT",
    "user-agents/crawler-user-agents.json":
        "monperrus/crawler-user-agents crawler-user-agents.json, commit 6661a0e0, 2026-06-24; MIT",
    "user-agents/mthcht_suspicious_http_user_agents_list.csv":
        "mthcht/awesome-lists suspicious_http_user_agents_list.csv via SuspiciousJunter/TestingPOC, commit 3cf6cbfd, 2024-07-30; MIT",
    "tls-fingerprints/ja4plus-mapping.csv":
        "FoxIO-LLC/ja4 ja4plus-mapping.csv, commit f1fea2e2, 2025-09-05; only the ja4 column (JA4 TLS client fingerprint, BSD-3-Clause) is used, no JA4+ column (FoxIO License 1.1)",
    "tls-fingerprints/salesforce_osx-nix-ja3.csv":
        "salesforce/ja3 lists/osx-nix-ja3.csv, commit 756d8769, 2018-01-17; BSD-3-Clause, Copyright (c) 2017 salesforce.com inc.; OLD (2018 clients)",
    "tls-fingerprints/trisul_ja3fingerprint.json":
        "trisulnsm/trisul-scripts lua/frontend_scripts/reassembly/ja3/prints/ja3fingerprint.json, commit 84ad15b9, 2018-12-06; NO LICENCE FILE in the repository; OLD (2016-2018 clients)",
}


def src(path):
    return f"{path} ({SOURCES[path]})"


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------

LOG = []


def log(kind, msg):
    LOG.append((kind, msg))


def toml_str(s):
    """A TOML string: literal ('...') when possible (regexes read better), else basic."""
    if "'" not in s and "\n" not in s and all(ord(c) >= 0x20 and ord(c) != 0x7f for c in s):
        return "'" + s + "'" if "\\" in s else json.dumps(s, ensure_ascii=False)
    return json.dumps(s, ensure_ascii=False)


def toml_list(values):
    return "[" + ", ".join(toml_str(v) for v in values) + "]"


DOMAIN_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z][a-z0-9-]*[a-z0-9]|xn--[a-z0-9-]+)$")
FILE_EXT_TLDS = {"zip", "git", "txt", "exe", "dll", "ps1", "bat", "rar", "py", "js", "php", "html",
                 "htm", "json", "xml", "pdf", "msi", "jar", "vbs", "hta", "lnk", "7z", "gz", "tar"}


def is_domain(d):
    return bool(DOMAIN_RE.match(d)) and d.rsplit(".", 1)[-1] not in FILE_EXT_TLDS


def under(name, parent):
    """True if name equals parent or is a subdomain of it."""
    return name == parent or name.endswith("." + parent)


def domain_suffix_regex(d):
    return r"(^|\.)" + re.escape(d).replace(r"\-", "-")


def esc(d):
    return re.escape(d).replace(r"\-", "-")


# Rust regex crate: no look-around, no backreferences, no atomic groups / possessive quantifiers.
RUST_UNSUPPORTED = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]|\(\?P=|\(\?>|[*+?}]\+")


def rust_regex_problem(rx):
    try:
        re.compile(rx)
    except re.error as e:
        return f"does not compile: {e}"
    if RUST_UNSUPPORTED.search(rx):
        return "uses look-around, a backreference or an atomic/possessive construct"
    return None


# ------------------------------------------------------------------------------------------------
# Id registry (stable ids)
# ------------------------------------------------------------------------------------------------

class IdRegistry:
    def __init__(self, path):
        self.path = path
        self.data = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.data = json.load(f)

    def assign(self, block, keys):
        """Return {key: id} for keys (in sorted order for new keys)."""
        reg = self.data.setdefault(block, {})
        used = set(reg.values())
        nxt = max(used) + 1 if used else ID_BASE[block]
        out = {}
        for k in sorted(set(keys)):
            if k not in reg:
                if nxt > ID_LIMIT[block]:
                    raise SystemExit(f"id block {block} exhausted")
                reg[k] = nxt
                nxt += 1
            out[k] = reg[k]
        return out

    def save(self):
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump({"_comment": "Stable signature ids of the generated packs: key -> id. "
                                   "Ids of keys that disappear are retired, never reused. "
                                   "Maintained by build_packs.py.",
                       **{k: dict(sorted(v.items(), key=lambda kv: kv[1]))
                          for k, v in sorted(self.data.items()) if k != "_comment"}},
                      f, indent=1, ensure_ascii=False)
            f.write("\n")


# ------------------------------------------------------------------------------------------------
# Coverage of the hand-written web-services pack (domain names)
# ------------------------------------------------------------------------------------------------

LITERAL_SEQ = re.compile(r"((?:[a-z0-9-]+\\\.)+[a-z0-9-]+)(?=\||\)|$)")


def regex_tails(rx):
    """Literal domain tails of a domain regex, e.g. 'amazonaws.com' for the S3 regex."""
    body = rx
    if body.startswith("(?i)"):
        body = body[4:]
    for end in (r"\.?$", "$"):
        if body.endswith(end):
            body = body[: -len(end)]
            break
    tails = set()
    for m in LITERAL_SEQ.finditer(body):
        seq = m.group(1).replace("\\.", ".")
        start = m.start(1)
        before = body[:start]
        # a boundary: start, after '\.', '(', '|', '^', or after an optional group such as
        # '([a-z0-9-]+\.)*' (which ends with a dot)
        at_boundary = start == 0 or before.endswith(("\\.", "(", "|", "^", ")*", ")?", ")+"))
        if not at_boundary:
            seq = seq.split(".", 1)[1] if "." in seq else ""
        seq = seq.lstrip("-")
        if seq and "." in seq:
            tails.add(seq)
    return tails


class DomainCoverage:
    """Domain patterns of one or more packs, to test whether a new pattern would duplicate them."""

    def __init__(self):
        self.suffix = []   # (value, owner)
        self.exact = []
        self.regex = []    # (compiled, source, tails, owner)

    def add(self, match, value, owner):
        if match == "suffix":
            self.suffix.append((value.lower(), owner))
        elif match == "exact":
            self.exact.append((value.lower(), owner))
        elif match == "regex":
            self.regex.append((re.compile(value), value, regex_tails(value), owner))

    def add_pack(self, path, owner_prefix):
        with open(path, "rb") as f:
            pack = tomllib.load(f)
        for s in pack.get("signature", []):
            if not set(s["fields"]) & set(DOMAIN_FIELDS):
                continue
            for v in s["values"]:
                self.add(s["match"], v, f"{owner_prefix} {s['id']} ({s.get('service', '')}: {v})")

    def name_owner(self, name):
        for v, o in self.suffix:
            if under(name, v):
                return o
        for v, o in self.exact:
            if name == v:
                return o
        for rx, _, _, o in self.regex:
            if rx.search(name):
                return o
        return None

    def suffix_owner(self, d):
        """Owner if every name under d is already matched."""
        for v, o in self.suffix:
            if under(d, v):
                return o
        for rx, _, _, o in self.regex:
            if all(rx.search(n) for n in (d, "zz0." + d, "zz0-1.zz0." + d)):
                return o
        return None

    def narrower(self, d):
        """Owners of patterns that match some names strictly under (or equal to) d."""
        out = []
        for v, o in self.suffix + self.exact:
            if under(v, d):
                out.append(o)
        for _, _, tails, o in self.regex:
            if any(under(t, d) for t in tails):
                out.append(o)
        return out


# ------------------------------------------------------------------------------------------------
# Pack writer
# ------------------------------------------------------------------------------------------------

def write_pack(path, header_comment, pack, defaults, signatures, imports=()):
    out = io.StringIO()
    for line in header_comment.strip("\n").split("\n"):
        out.write(("# " + line).rstrip() + "\n")
    out.write("# GENERATED by signatures/tools/build_packs.py - do not edit by hand; rebuild instead.\n\n")
    out.write("[pack]\n")
    for k in ("format", "name", "version", "description", "action", "sources", "license_note"):
        v = pack[k]
        if isinstance(v, int):
            out.write(f"{k} = {v}\n")
        elif isinstance(v, list):
            out.write(f"{k} = [\n" + "".join(f"  {toml_str(x)},\n" for x in v) + "]\n")
        else:
            out.write(f"{k} = {toml_str(v)}\n")
    out.write("\n[defaults]\n")
    for k, v in defaults.items():
        out.write(f"{k} = {v}\n" if isinstance(v, int) else f"{k} = {toml_str(v)}\n")
    for imp in imports:
        out.write("\n[[import]]\n")
        for k in ("id", "rev", "msg", "format", "path", "provider", "service", "service_category"):
            if k in imp:
                v = imp[k]
                out.write(f"{k} = {v}\n" if isinstance(v, int) else f"{k} = {toml_str(v)}\n")
    for s in signatures:
        out.write("\n")
        if s.get("_comment"):
            for line in s["_comment"]:
                out.write(f"# {line}\n")
        out.write("[[signature]]\n")
        for k in ("id", "rev", "msg", "action", "severity", "category", "mitre_tactic_id",
                  "mitre_tactic_name", "mitre_technique_id", "mitre_technique_name", "fields",
                  "match", "values", "service", "service_category", "confidence", "rationale",
                  "next_step", "reference"):
            if k not in s:
                continue
            v = s[k]
            if isinstance(v, int):
                out.write(f"{k} = {v}\n")
            elif isinstance(v, list):
                out.write(f"{k} = {toml_list(v)}\n")
            else:
                out.write(f"{k} = {toml_str(v)}\n")
    text = out.getvalue()
    tomllib.loads(text)  # fail early on a syntax error
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return len(signatures), len(imports)


# ------------------------------------------------------------------------------------------------
# 1. cloud-providers.toml
# ------------------------------------------------------------------------------------------------

S3_RX = r"(?i)(^|\.)s3(express)?[.-]([a-z0-9-]+\.)*amazonaws\.com\.?$"

# (service, match, values). Order does not matter for ids (registry, keyed by service).
CLOUD_DOMAINS = [
    ("AWS S3", "regex", [S3_RX]),
    ("AWS API Gateway", "regex", [r"(?i)\.execute-api\.[a-z0-9-]+\.amazonaws\.com\.?$"]),
    ("AWS Lambda function URLs", "regex", [r"(?i)\.lambda-url\.[a-z0-9-]+\.on\.aws\.?$"]),
    ("AWS EC2", "regex", [r"(?i)(^|\.)(compute-1|[a-z0-9-]+\.compute)\.amazonaws\.com\.?$"]),
    ("AWS Elastic Load Balancing", "suffix", ["elb.amazonaws.com"]),
    ("AWS CloudFront", "suffix", ["cloudfront.net"]),
    ("AWS IAM Identity Center (awsapps)", "suffix", ["awsapps.com"]),
    ("AWS Elastic Beanstalk", "suffix", ["elasticbeanstalk.com"]),
    ("AWS Amplify Hosting", "suffix", ["amplifyapp.com"]),
    ("AWS (generic)", "suffix", ["amazonaws.com", "on.aws"]),
    ("Azure Blob Storage", "suffix", ["blob.core.windows.net"]),
    ("Azure Files", "suffix", ["file.core.windows.net"]),
    ("Azure Queue Storage", "suffix", ["queue.core.windows.net"]),
    ("Azure Table Storage", "suffix", ["table.core.windows.net"]),
    ("Azure Storage static website", "suffix", ["web.core.windows.net"]),
    ("Azure Data Lake Storage", "suffix", ["dfs.core.windows.net"]),
    ("Azure App Service", "suffix", ["azurewebsites.net"]),
    ("Azure Container Apps", "suffix", ["azurecontainerapps.io"]),
    ("Azure Front Door", "suffix", ["azurefd.net"]),
    ("Azure CDN", "suffix", ["azureedge.net"]),
    ("Azure Virtual Machines", "suffix", ["cloudapp.azure.com"]),
    ("Azure Cloud Services (classic)", "suffix", ["cloudapp.net"]),
    ("Azure Static Web Apps", "suffix", ["azurestaticapps.net"]),
    ("Azure API Management", "suffix", ["azure-api.net"]),
    ("Azure Service Bus", "suffix", ["servicebus.windows.net"]),
    ("Azure Traffic Manager", "suffix", ["trafficmanager.net"]),
    ("GCP Cloud Storage", "suffix", ["storage.googleapis.com", "storage.cloud.google.com"]),
    ("GCP Cloud Functions", "suffix", ["cloudfunctions.net"]),
    ("GCP Cloud Run", "suffix", ["run.app"]),
    ("GCP App Engine", "suffix", ["appspot.com"]),
    ("GCP Firebase Realtime Database", "suffix", ["firebaseio.com"]),
    ("GCP Firebase Hosting", "suffix", ["web.app", "firebaseapp.com"]),
    ("GCP Firebase Storage", "suffix", ["firebasestorage.googleapis.com"]),
    ("GCP Google APIs (generic)", "suffix", ["googleapis.com"]),
    ("Oracle Cloud Object Storage", "regex",
     [r"(?i)(^|\.)objectstorage\.[a-z0-9-]+\.(oraclecloud\.com|oci\.customer-oci\.com)\.?$"]),
    ("Oracle Cloud (generic)", "suffix", ["oraclecloud.com", "oci.customer-oci.com"]),
    ("DigitalOcean Spaces", "suffix", ["digitaloceanspaces.com"]),
    ("DigitalOcean App Platform", "suffix", ["ondigitalocean.app"]),
    ("Linode Object Storage", "suffix", ["linodeobjects.com"]),
    ("Linode compute", "suffix", ["ip.linodeusercontent.com"]),
    ("Akamai CDN", "suffix", ["akamaized.net", "akamaiedge.net", "edgekey.net", "edgesuite.net"]),
    ("Cloudflare Workers", "suffix", ["workers.dev"]),
    ("Cloudflare Pages", "suffix", ["pages.dev"]),
    ("Cloudflare R2", "suffix", ["r2.dev", "r2.cloudflarestorage.com"]),
    ("Cloudflare Quick Tunnels", "suffix", ["trycloudflare.com"]),
    ("Cloudflare Tunnel", "suffix", ["cfargotunnel.com"]),
    ("Fastly CDN", "suffix", ["fastly.net", "fastlylb.net"]),
    ("Fastly Compute", "suffix", ["edgecompute.app"]),
    ("GitHub user content", "suffix", ["githubusercontent.com"]),
    ("GitHub Pages", "suffix", ["github.io"]),
    ("GitHub static assets", "suffix", ["githubassets.com"]),
    ("Vultr Object Storage", "suffix", ["vultrobjects.com"]),
]

# service_category of each host-name label (the [[import]] address ranges take "provider-range"
# from [defaults]).
CLOUD_CATEGORY = {
    "AWS S3": "cloud-storage", "AWS API Gateway": "cloud-compute",
    "AWS Lambda function URLs": "cloud-compute", "AWS EC2": "cloud-compute",
    "AWS Elastic Load Balancing": "cloud-compute", "AWS CloudFront": "ad-cdn",
    "AWS IAM Identity Center (awsapps)": "cloud-console", "AWS Elastic Beanstalk": "app-hosting",
    "AWS Amplify Hosting": "app-hosting", "AWS (generic)": "cloud-compute",
    "Azure Blob Storage": "cloud-storage", "Azure Files": "cloud-storage",
    "Azure Queue Storage": "cloud-storage", "Azure Table Storage": "cloud-storage",
    "Azure Storage static website": "cloud-storage", "Azure Data Lake Storage": "cloud-storage",
    "Azure App Service": "app-hosting", "Azure Container Apps": "app-hosting",
    "Azure Front Door": "ad-cdn", "Azure CDN": "ad-cdn", "Azure Virtual Machines": "cloud-compute",
    "Azure Cloud Services (classic)": "cloud-compute", "Azure Static Web Apps": "app-hosting",
    "Azure API Management": "cloud-compute", "Azure Service Bus": "cloud-compute",
    "Azure Traffic Manager": "cloud-compute", "GCP Cloud Storage": "cloud-storage",
    "GCP Cloud Functions": "cloud-compute", "GCP Cloud Run": "cloud-compute",
    "GCP App Engine": "app-hosting", "GCP Firebase Realtime Database": "cloud-storage",
    "GCP Firebase Hosting": "app-hosting", "GCP Firebase Storage": "cloud-storage",
    "GCP Google APIs (generic)": "cloud-compute", "Oracle Cloud Object Storage": "cloud-storage",
    "Oracle Cloud (generic)": "cloud-compute", "DigitalOcean Spaces": "cloud-storage",
    "DigitalOcean App Platform": "app-hosting", "Linode Object Storage": "cloud-storage",
    "Linode compute": "cloud-compute", "Akamai CDN": "ad-cdn", "Cloudflare Workers": "cloud-compute",
    "Cloudflare Pages": "app-hosting", "Cloudflare R2": "cloud-storage",
    "Cloudflare Quick Tunnels": "tunnel", "Cloudflare Tunnel": "tunnel", "Fastly CDN": "ad-cdn",
    "Fastly Compute": "cloud-compute", "GitHub user content": "code-hosting",
    "GitHub Pages": "app-hosting", "GitHub static assets": "code-hosting",
    "Vultr Object Storage": "cloud-storage",
}

# (provider, service or None, format, dataset path, note)
CLOUD_IMPORTS = [
    ("AWS", None, "aws-ip-ranges", "cloud-ip-ranges/aws/ip-ranges.json", "AWS address range"),
    ("Google Cloud", None, "google-ip-ranges", "cloud-ip-ranges/google/cloud.json", "Google Cloud address range"),
    ("Google", "Google services (goog.json, all Google-owned ranges including Google Cloud; April 2024)",
     "google-ip-ranges", "cloud-ip-ranges/google/goog.json", "Google address range"),
    ("Azure", None, "azure-service-tags", "cloud-ip-ranges/azure/ServiceTags_Public.json", "Azure address range"),
    ("Oracle Cloud", None, "oracle-ip-ranges", "cloud-ip-ranges/oracle/public_ip_ranges.json", "Oracle Cloud address range"),
    ("DigitalOcean", None, "geofeed", "cloud-ip-ranges/digitalocean/google.csv", "DigitalOcean address range"),
    ("Linode", None, "geofeed", "cloud-ip-ranges/linode/geofeed.txt", "Linode (Akamai) address range"),
    ("Cloudflare", None, "cidr-list", "cloud-ip-ranges/cloudflare/ips-v4.txt", "Cloudflare IPv4 address range"),
    ("Cloudflare", None, "cidr-list", "cloud-ip-ranges/cloudflare/ips-v6.txt", "Cloudflare IPv6 address range"),
    ("GitHub", None, "github-meta", "cloud-ip-ranges/github/meta.json", "GitHub address range"),
    ("Fastly", None, "fastly-ip-list", "cloud-ip-ranges/fastly/public-ip-list.json", "Fastly address range"),
    ("Vultr", None, "cidr-list", "cloud-ip-ranges/derived-lord-alfred/vultr/ipv4_merged.txt", "Vultr IPv4 address range"),
    ("Vultr", None, "cidr-list", "cloud-ip-ranges/derived-lord-alfred/vultr/ipv6_merged.txt", "Vultr IPv6 address range"),
]

CLOUD_DIR = {"AWS": "aws", "Google Cloud": "google", "Google": "google", "Azure": "azure",
             "Oracle Cloud": "oracle", "DigitalOcean": "digitalocean", "Linode": "linode",
             "Cloudflare": "cloudflare", "GitHub": "github", "Fastly": "fastly", "Vultr": "vultr"}

CLOUD_SIZE_BUDGET = 12 * 1024 * 1024


def build_cloud(ds, out, reg, version):
    # Copy the native files byte-for-byte.
    cloud_out = os.path.join(out, "cloud")
    total = 0
    copied = []
    for provider, _, _, path, _ in CLOUD_IMPORTS:
        srcp = os.path.join(ds, path)
        rel = f"cloud/{CLOUD_DIR[provider]}/{os.path.basename(path)}"
        dst = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(srcp, dst)
        total += os.path.getsize(dst)
        copied.append(rel)
    if total > CLOUD_SIZE_BUDGET:
        raise SystemExit(f"signatures/cloud/ would be {total} bytes, over the {CLOUD_SIZE_BUDGET} budget: "
                         "write a reduced Azure file (see the brief) before shipping")
    log("info", f"cloud/: copied {len(copied)} files, {total} bytes (budget {CLOUD_SIZE_BUDGET}); "
                "Azure ServiceTags kept complete")
    # Remove stale files from earlier runs.
    for root, _, files in os.walk(cloud_out):
        for fn in files:
            rel = os.path.relpath(os.path.join(root, fn), out).replace(os.sep, "/")
            if rel not in copied:
                os.remove(os.path.join(root, fn))
                log("info", f"cloud/: removed stale {rel}")

    dom_ids = reg.assign("cloud-providers/domain", [s for s, _, _ in CLOUD_DOMAINS])
    sigs = []
    for service, match, values in sorted(CLOUD_DOMAINS, key=lambda t: dom_ids[t[0]]):
        for v in values:
            if match == "regex":
                assert rust_regex_problem(v) is None, v
        sigs.append({
            "id": dom_ids[service], "rev": REV_TIERS,
            "msg": f"CLOUDTAP LABEL {service} host name",
            "fields": DOMAIN_FIELDS, "match": match, "values": values, "service": service,
            "service_category": CLOUD_CATEGORY[service],
            "next_step": "Context label only (no alert): use it to see which cloud service a flow "
                         "went to when triaging alerts from the same host.",
        })
    imp_keys = [f"{p}|{path}" for p, _, _, path, _ in CLOUD_IMPORTS]
    imp_ids = reg.assign("cloud-providers/import", imp_keys)
    imports = []
    for (provider, service, fmt, path, note), key in sorted(zip(CLOUD_IMPORTS, imp_keys),
                                                           key=lambda t: imp_ids[t[1]]):
        imp = {"id": imp_ids[key], "rev": 1, "msg": f"CLOUDTAP LABEL {note}", "format": fmt,
               "path": f"cloud/{CLOUD_DIR[provider]}/{os.path.basename(path)}", "provider": provider}
        if service:
            imp["service"] = service
        imports.append(imp)
    pack = {
        "format": 1, "name": "cloud-providers", "version": version,
        "description": "Context labels for cloud, CDN and code-hosting providers: well-known service "
                       "host names (DNS, TLS SNI, HTTP Host) and the providers' published IP ranges "
                       "(destination IP). Labels flows, never alerts.",
        "action": "label",
        "sources": [src(p) for _, _, _, p, _ in CLOUD_IMPORTS],
        "license_note": "IP-range files are the providers' own published data, copied byte-for-byte "
                        "from public mirrors into signatures/cloud/ (mirror repositories: seligman MIT, "
                        "berthubert MIT, femueller no licence file; lord-alfred/ipranges CC0-1.0 for "
                        "the derived Vultr lists, as no native Vultr feed was available). The Azure "
                        "ServiceTags_Public.json is the complete July 2025 file (4.1 MB), not a "
                        "reduced one. goog.json is the April 2024 copy (the only one found): Google "
                        "services = goog.json minus cloud.json, so an address can carry both labels. "
                        "Only aws/ip-ranges.json is current (2026-08); the other feeds date from "
                        "2023-2025, see sources. Host names are public facts written for cloudtap. "
                        + ATTACK_NOTICE,
    }
    defaults = {"category": "Misc activity", "severity": 4, "mitre_tactic_id": "TA0042",
                "mitre_tactic_name": "Resource_Development", "mitre_technique_id": "T1583.006",
                "mitre_technique_name": "Web_Services", "service_category": "provider-range"}
    header = f"""cloudtap signature pack: cloud provider context labels (action = "label": matches label flows, never alert).
Tier rule: everything here is context. Big providers' storage, compute, CDN and hosting names and
their address ranges are used by every office; they alert only when the detection stage adds a
signal (script agent, first use, odd hours for the host, unauthorised source, upload volume, burst).
Each host-name label has its own service_category; the address-range imports take
"provider-range" from [defaults].
Host-name signatures {ID_BASE['cloud-providers/domain']}-{ID_LIMIT['cloud-providers/domain']}, IP-range imports {ID_BASE['cloud-providers/import']}-{ID_LIMIT['cloud-providers/import']}.
[[import]] entries point at the publishers' native files in cloud/ (paths relative to this file);
the loader parses each format (see docs/signatures.md, "IP range imports")."""
    return write_pack(os.path.join(out, "cloud-providers.toml"), header, pack, defaults, sigs, imports)


# ------------------------------------------------------------------------------------------------
# Alerting domain packs: candidates, de-duplication
# ------------------------------------------------------------------------------------------------

class Cand:
    """One domain value proposed by a generated pack."""

    def __init__(self, pack, key, kind, value, literal):
        self.pack, self.key, self.kind, self.value, self.literal = pack, key, kind, value, literal
        self.dropped = None


PACK_PRIORITY = ["abused-filehosting", "abused-tunnels", "abused-lots"]


def dedupe(cands, ws):
    """Drop candidates already matched by web-services.toml or by another generated pack."""
    seen = set()
    for c in cands:
        k = (c.pack, c.key, c.kind, c.value)
        if k in seen:
            c.dropped = "duplicate pattern in the source list"
        seen.add(k)
    for c in cands:
        if c.dropped:
            continue
        d = c.literal
        if c.kind == "exact":
            o = ws.name_owner(d)
            if o:
                c.dropped = f"already matched by {o}"
        else:  # suffix, or regex with a literal domain d
            o = ws.suffix_owner(d)
            if o:
                c.dropped = f"already matched by {o}"
                continue
            if c.kind == "regex" and ws.name_owner(d):
                c.dropped = f"its domain {d} is already matched by {ws.name_owner(d)}"
                continue
            nar = ws.narrower(d)
            if nar:
                c.dropped = ("broader than the curated web-services coverage, which matches only part "
                             f"of it: {'; '.join(sorted(set(nar)))}")
            elif c.kind == "suffix":
                # exact web-services names equal to d are handled in narrower(); nothing else to do
                pass
    live = [c for c in cands if not c.dropped]
    rank = {p: i for i, p in enumerate(PACK_PRIORITY)}
    order = {id(c): (rank[c.pack], c.key, i) for i, c in enumerate(live)}
    for c in live:
        for o in live:
            if o is c or o.dropped or o.kind != "suffix" or not under(c.literal, o.literal):
                continue
            if c.kind == "suffix" and c.literal == o.literal:
                if order[id(o)] < order[id(c)]:
                    c.dropped = f"same suffix also in {o.pack} '{o.key}' (kept there)"
            else:
                c.dropped = f"covered by suffix {o.value} in {o.pack} '{o.key}'"
            if c.dropped:
                break
    return cands


def report_dropped(cands):
    for c in sorted(cands, key=lambda c: (c.pack, c.key, c.value)):
        if c.dropped:
            log("skip", f"{c.pack}: '{c.key}' value {c.value!r} ({c.kind}): {c.dropped}")


def group_signature_values(cands):
    """{key: (match, [values])}; mixed exact/suffix/regex groups become one regex signature."""
    groups = {}
    for c in cands:
        if not c.dropped:
            groups.setdefault(c.key, []).append(c)
    out = {}
    for key, cs in groups.items():
        kinds = {c.kind for c in cs}
        if len(kinds) == 1:
            out[key] = (cs[0].kind, sorted({c.value for c in cs}))
        else:
            vals = []
            for c in cs:
                if c.kind == "suffix":
                    vals.append(r"(?i)(^|\.)" + esc(c.value) + r"\.?$")
                elif c.kind == "exact":
                    vals.append(r"(?i)^" + esc(c.value) + r"\.?$")
                else:
                    vals.append(c.value)
            out[key] = ("regex", sorted(set(vals)))
    return out


# ---- LOTS ----------------------------------------------------------------------------------------

TAG_ORDER = ["C&C", "Download", "Exfiltration", "Phishing"]


def lots_candidates(ds):
    path = os.path.join(ds, "abused-services/lots/lots_sites_normalized.csv")
    rows = {}
    cands = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f):
            site = r["website"].strip()
            wild = r["wildcard"].strip() == "yes" or site.startswith("*.")
            d = site[2:] if site.startswith("*.") else site
            d = d.lower()
            if not is_domain(d):
                log("skip", f"abused-lots: site {site!r}: not a domain name")
                continue
            rows[site] = r
            cands.append(Cand("abused-lots", site, "suffix" if wild else "exact", d, d))
    return cands, rows


def lots_next_step(tags):
    parts = ["Find the host and process that contacted the site (EDR, proxy/DNS logs) and pull the full URL."]
    if "Phishing" in tags:
        parts.append("Phishing: check whether the user arrived from an e-mail or chat link and whether credentials were entered (proxy POSTs, sign-in logs).")
    if "Download" in tags:
        parts.append("Download: check what was fetched (file type, hash) and whether it ran.")
    if "C&C" in tags:
        parts.append("C&C: look for regular, beacon-like requests from a non-browser process.")
    if "Exfiltration" in tags:
        parts.append("Exfiltration: check upload volume (bytes out) and the uploading process.")
    parts.append("The service is legitimate and widely used: escalate only when the process, user or volume is unusual.")
    return " ".join(parts)


# service_category of each LOTS site (key = the LOTS 'website' value). Sites not listed here get
# "saas" and are reported, so that a dataset update is reviewed. The whole LOTS catalogue is
# context (action = "label"): these are trusted, popular sites whose abuse cannot be told from
# ordinary use by the name alone.
LOTS_CATEGORY = {
    # web and app hosting, site builders, blogs
    "*.000webhostapp.com": "app-hosting", "*.cloudwaysapps.com": "app-hosting",
    "*.codesandbox.io": "app-hosting", "*.csb.app": "app-hosting", "*.easywp.com": "app-hosting",
    "*.fleek.co": "app-hosting", "*.format.com": "app-hosting", "*.github.io": "app-hosting",
    "*.godaddysites.com": "app-hosting", "*.hostingerapp.com": "app-hosting",
    "*.mybluehost.me": "app-hosting", "*.mybluemix.net": "cloud-compute",
    "*.myportfolio.com": "app-hosting", "*.mystrikingly.com": "app-hosting",
    "*.notion.site": "app-hosting", "*.oraclecloud.com": "cloud-compute",
    "*.pagecloud.com": "app-hosting", "*.plesk.page": "app-hosting", "*.rf.gd": "app-hosting",
    "*.webflow.io": "app-hosting", "*.weebly.com": "app-hosting", "*.wixsite.com": "app-hosting",
    "*.wordpress.com": "app-hosting", "*.blogspot.com": "app-hosting",
    "appdomain.cloud": "cloud-compute", "bitbucket.io": "app-hosting",
    "inmotionhosting.com": "app-hosting", "sites.google.com": "app-hosting",
    # social networks and communities
    "*.instagram.com": "social", "*.twitter.com": "social", "*.tumblr.com": "social",
    "facebook.com": "social", "reddit.com": "social", "youtube.com": "social",
    "genius.com": "social", "teletype.in": "social",
    # ad, analytics, tracking and CDN
    "*.doubleclick.net": "ad-cdn", "*.xiti.com": "ad-cdn", "track.adform.net": "ad-cdn",
    "ct.sendgrid.net": "ad-cdn", "nt.embluemail.com": "ad-cdn", "t.m1.email.samsung.com": "ad-cdn",
    "cdn.fbsbx.com": "ad-cdn", "feedproxy.google.com": "ad-cdn", "i.imgur.com": "ad-cdn",
    # URL shorteners
    "bit.ly": "url-shortener", "cutt.ly": "url-shortener", "rb.gy": "url-shortener",
    "rebrand.ly": "url-shortener", "s.id": "url-shortener", "t.co": "url-shortener",
    "tinyurl.com": "url-shortener", "lnkd.in": "url-shortener", "parg.co": "url-shortener",
    # cloud drives and file sharing
    "*.box.com": "cloud-drive", "4sync.com": "cloud-drive", "icloud.com": "cloud-drive",
    "pcloud.com": "cloud-drive", "filecloudonline.com": "cloud-drive",
    "attachment.outlook.live.net": "cloud-drive", "attachments.office.net": "cloud-drive",
    "slack-files.com": "cloud-drive", "*.dropmark.com": "cloud-drive",
    "www.uplooder.net": "file-drop", "siasky.net": "cloud-storage",
    # code hosting and code playgrounds
    "github.com": "code-hosting", "gitlab.com": "code-hosting", "gitee.com": "code-hosting",
    "codepen.io": "code-hosting", "ideone.com": "code-hosting", "wtools.io": "paste",
    # dynamic DNS (normally taken over by web-services.toml, which alerts on it)
    "*.duckdns.org": "dynamic-dns",
    # popular SaaS: collaboration, documents, forms, design, notes, messaging
    "*.atlassian.net": "saas", "*.axshare.com": "saas", "*.clickfunnels.com": "saas",
    "*.docusign.com": "saas", "*.fyi.to": "saas", "*.nimbusweb.me": "saas", "*.slab.com": "saas",
    "*.typeform.com": "saas", "*.zendesk.com": "saas", "app.milanote.com": "saas",
    "beautiful.ai": "saas", "doc.clickup.com": "saas", "docs.google.com": "saas",
    "docsend.com": "saas", "evernote.com": "saas", "express.adobe.com": "saas",
    "forms.office.com": "saas", "graph.microsoft.com": "saas", "my.visme.co": "saas",
    "nethunt.com": "saas", "notion.so": "saas", "onenoteonlinesync.onenote.com": "saas",
    "slack.com": "saas", "spark.adobe.com": "saas", "stonly.com": "saas",
    "sway.office.com": "saas", "trello.com": "saas", "viewer.joomag.com": "saas",
    "workflowy.com": "saas", "www.canva.com": "saas", "www.surveycake.com": "saas",
    # other: archives, proxies, translation front-ends, blockchain explorers
    "12ft.io": "other", "archive.org": "other", "archive.ph": "other",
    "*.translate.goog": "other", "googleweblight.com": "other", "dogechain.info": "other",
}


def build_lots(ds, out, reg, version, cands, rows):
    groups = group_signature_values(cands)
    ids = reg.assign("abused-lots", groups.keys())
    sigs = []
    for key in sorted(groups, key=lambda k: ids[k]):
        match, values = groups[key]
        r = rows[key]
        tags = [t for t in TAG_ORDER if t in [x.strip() for x in r["tags"].split(";")]]
        sev = 2 if ("C&C" in tags or "Exfiltration" in tags) else 3
        cat = LOTS_CATEGORY.get(key)
        if cat is None:
            cat = "saas"
            log("review", f"abused-lots: site {key!r} has no entry in LOTS_CATEGORY: service_category 'saas'")
        sigs.append({
            "id": ids[key], "rev": REV_TIERS,
            "msg": f"CLOUDTAP LOTS site used for {', '.join(tags)}: {key}",
            "severity": sev, "fields": DOMAIN_FIELDS, "match": match, "values": values,
            "service": r["provider"].strip(), "service_category": cat,
            "next_step": lots_next_step(tags),
            "reference": r["lots_detail_url"].strip(),
        })
    pack = {
        "format": 1, "name": "abused-lots", "version": version,
        "description": "Context labels for sites listed by the LOTS Project (Living Off Trusted Sites) "
                       "as used by attackers for C&C, payload download, exfiltration or phishing, which "
                       "the hand-written web-services pack does not already cover. Labels only: they "
                       "alert when the detection stage adds a signal.",
        "action": "label",
        "sources": [src("abused-services/lots/lots_sites_normalized.csv")],
        "license_note": "The LOTS Project data carries NO STATED LICENCE (it was scraped from "
                        "lots-project.com). This pack lists only the site names, provider names and "
                        "tags (public facts) and links to the LOTS pages; no descriptions are copied. "
                        "If you cannot accept that, delete this file (abused-lots.toml): nothing else "
                        "depends on it. Rebuild with --without abused-lots so the other generated "
                        "packs keep the names this pack took over from them. " + ATTACK_NOTICE,
    }
    defaults = {"category": "Potentially Bad Traffic", "severity": 3, "mitre_tactic_id": "TA0042",
                "mitre_tactic_name": "Resource_Development", "mitre_technique_id": "T1583.006",
                "mitre_technique_name": "Web_Services"}
    header = f"""cloudtap signature pack: LOTS Project sites (ids {ID_BASE['abused-lots']}-{ID_LIMIT['abused-lots']}).
Tier rule: the whole pack is context (action = "label"). LOTS lists trusted, popular sites (social
networks, SaaS, site builders, URL shorteners, ad and CDN names, cloud drives): an office uses them
all day, so a match alone never alerts; it alerts only when the detection stage adds a signal
(script agent, first use, odd hours for the host, unauthorised source, upload volume, burst).
service_category per site comes from LOTS_CATEGORY in build_packs.py.
Wildcard LOTS entries (*.domain) match the domain and its subdomains (suffix); the others match the exact name.
Severity 2 when LOTS tags the site C&C or Exfiltration, else 3. Sites already covered by
web-services.toml (same or parent suffix) or by another generated pack are left out."""
    return write_pack(os.path.join(out, "abused-lots.toml"), header, pack, defaults, sigs)


# ---- LOTTunnels -----------------------------------------------------------------------------------

def tunnel_candidates(ds):
    path = os.path.join(ds, "abused-services/lottunnels/domains.csv")
    cands = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f):
            pat, name = r["domain"].strip(), r["name"].strip()
            p = pat.lower()
            if "/" in p:
                log("skip", f"abused-tunnels: {name} pattern {pat!r}: a URL path, not expressible as a domain")
                continue
            if p.endswith(":*"):          # host:port
                p = p[:-2]
            if p.endswith(".onion"):
                log("skip", f"abused-tunnels: {name} pattern {pat!r}: Tor onion name, never seen in clear DNS/SNI")
                continue
            trailing = p.endswith("*")
            core = p.rstrip("*")
            kind = "exact"
            if core.startswith("*"):
                core = core.lstrip("*").lstrip(".")
                while core.startswith("*."):
                    core = core[2:]
                kind = "suffix"
            if "*" in core or not is_domain(core):
                log("skip", f"abused-tunnels: {name} pattern {pat!r}: not expressible as a domain")
                continue
            if trailing:
                head = r"(?i)(^|\.)" if kind == "suffix" else r"(?i)^"
                rx = head + esc(core) + r"[a-z0-9.-]*\.?$"
                cands.append(Cand("abused-tunnels", name, "regex", rx, core))
            else:
                cands.append(Cand("abused-tunnels", name, kind, core, core))
    return cands


# Tiers of the LOTTunnels services (reviewed by hand). Alert: tunnelling and reverse-proxy
# services an office seldom uses. Label: business VPN / remote-access products used openly by
# organisations. A service not listed in either (a dataset update) becomes a label and is
# reported for review.
TUNNEL_ALERT = {"BTunnels", "Burrow", "Dataplicity", "Expose.sh", "Gsocket", "JPRQ", "LocaltoNet",
                "Loophole", "OpenPort", "PageKite", "PiTunnel", "Qsocket", "SSH-J", "ShellHub",
                "StaqLab", "Telebit", "TunnelTo", "jkuri Bore", "ngrok"}
TUNNEL_LABEL = {"Tailscale"}


def build_tunnels(ds, out, reg, version, cands):
    groups = group_signature_values(cands)
    ids = reg.assign("abused-tunnels", groups.keys())
    sigs = []
    for key in sorted(groups, key=lambda k: ids[k]):
        match, values = groups[key]
        tier = {}
        if key in TUNNEL_ALERT:
            tier["rationale"] = (f"{key} exposes a host behind the firewall to the internet or relays "
                                 "traffic through its servers: ordinary offices seldom use it, "
                                 "while attackers use such tunnels for remote access and C2.")
        else:
            tier["action"] = "label"
            if key not in TUNNEL_LABEL:
                log("review", f"abused-tunnels: service {key!r} is in neither TUNNEL_ALERT nor TUNNEL_LABEL: label")
        sigs.append({
            "id": ids[key], "rev": REV_TIERS, "msg": f"CLOUDTAP Tunnelling service {key} contacted",
            **{k: v for k, v in tier.items() if k == "action"},
            "fields": DOMAIN_FIELDS, "match": match, "values": values, "service": key,
            **{k: v for k, v in tier.items() if k == "rationale"},
            "next_step": "Tunnelling services expose an internal host to the internet or carry C2 "
                         "through a trusted domain. Find the process on the source host (EDR: agent "
                         "binary, command line, parent), check whether the tool is approved for this "
                         "user/host, and look for long-lived or regular connections.",
            "reference": "https://lottunnels.github.io/",
        })
    pack = {
        "format": 1, "name": "abused-tunnels", "version": version,
        "description": "Tunnelling and reverse-proxy services listed by LOTTunnels (Living Off The "
                       "Tunnels) that the hand-written web-services pack does not already cover. "
                       "Tunnels alert on their own; business VPN products are context labels.",
        "action": "alert",
        "sources": [src("abused-services/lottunnels/domains.csv")],
        "license_note": "Derived from the LOTTunnels domain list, which is GPL-3.0. Only the service "
                        "names and their public domain names are used. If a GPL-3.0 derived list is "
                        "not acceptable for your distribution, delete this file (abused-tunnels.toml): "
                        "nothing else depends on it; rebuild with --without abused-tunnels so no "
                        "name is lost from the other generated packs. " + ATTACK_NOTICE,
    }
    defaults = {"category": "Potentially Bad Traffic", "severity": 2, "mitre_tactic_id": "TA0011",
                "mitre_tactic_name": "Command_And_Control", "mitre_technique_id": "T1572",
                "mitre_technique_name": "Protocol_Tunneling", "service_category": "tunnel"}
    header = f"""cloudtap signature pack: tunnelling services from LOTTunnels (ids {ID_BASE['abused-tunnels']}-{ID_LIMIT['abused-tunnels']}).
Tier rule: a tunnelling or reverse-proxy service alerts on its own (action = "alert", with a
rationale): offices seldom use one, attackers use them for remote access and C2. Business VPN /
remote-access products that organisations run openly (Tailscale) are context (action = "label").
The per-service decision is TUNNEL_ALERT / TUNNEL_LABEL in build_packs.py.
One signature per service. '*.x.com' and '*.*.x.com' become suffix 'x.com'; names without a wildcard
match exactly; patterns with a trailing '*' become regexes; a service with mixed kinds is one regex."""
    return write_pack(os.path.join(out, "abused-tunnels.toml"), header, pack, defaults, sigs)


# ---- mthcht FileHosting + PastebinLike ------------------------------------------------------------

def keyword_domain(kw):
    """(kind, domain) for a domain-like mthcht keyword glob, or (None, reason)."""
    k = kw.strip()
    if not k.strip("*"):
        return None, "empty"
    if any(ch.isspace() for ch in k) or "|" in k:
        return None, "command-line string"
    core = k.lstrip("*")
    lead_glob = core != k
    core = re.sub(r"^https?://", "", core)
    if core.startswith("/"):
        return None, "URL path or file name, no host"
    host = re.split(r"[/?#]", core, maxsplit=1)[0]
    host = host.rstrip("*")
    if host.endswith(":"):
        host = host[:-1]
    host = host.lower()
    kind = "exact"
    if host.startswith("*."):
        host = host[2:]
        kind = "suffix"
    elif host.startswith("."):
        host = host[1:]
        kind = "suffix"
    elif lead_glob:
        kind = "suffix"          # '*domain' or '*https://domain/...': any subdomain
    if "*" in host:
        return None, "wildcard inside the host name"
    if host.endswith(".onion"):
        return None, "Tor onion name, never seen in clear DNS/SNI"
    if not is_domain(host):
        return None, "not a domain name (command line, path or file name)"
    return "suffix", host  # URL keywords name the service's host; match it and its subdomains


def filehosting_candidates(ds):
    base = os.path.join(ds, "abused-services/mthcht-threathunting-keywords")
    cands = []
    meta = {}
    for fn, cls in (("FileHosting_Services_tag_detection.csv", "File hosting"),
                    ("PastebinLike_tag_detection.csv", "Paste")):
        with open(os.path.join(base, fn), encoding="utf-8-sig", newline="") as f:
            for r in csv.DictReader(f):
                tool = r["metadata_tool"].strip()
                key = tool
                kind, d = keyword_domain(r["keyword"])
                if kind is None:
                    log("skip", f"abused-filehosting: {tool} keyword {r['keyword']!r}: {d}")
                    continue
                m = meta.setdefault(key, {"class": cls, "links": set(), "files": set()})
                m["files"].add(fn)
                link = r["metadata_link"].strip()
                if link.startswith("https://") or link.startswith("http://"):
                    m["links"].add(link)
                cands.append(Cand("abused-filehosting", key, kind, d, d))
    # one candidate per (key, value)
    seen, uniq = set(), []
    for c in cands:
        if (c.key, c.value) not in seen:
            seen.add((c.key, c.value))
            uniq.append(c)
    return uniq, meta


# Tiers of the mthcht file-hosting and paste services (reviewed by hand): key -> (action,
# service_category). Alert: paste-only sites and anonymous file drops that offices seldom use.
# Label: popular file hosts (4shared is in the top-500 sites), sync software, code hosting,
# premium/cloud downloaders, one-time secret notes used to pass passwords. A key not listed
# here (a dataset update) becomes a label and is reported for review.
FILEHOSTING_TIER = {
    "1ty.me": ("alert", "paste"),
    "4shared.com": ("label", "cloud-drive"),
    "Goodsync": ("label", "cloud-drive"),
    "apaste.info": ("alert", "paste"),
    "bitbucket.org": ("label", "code-hosting"),
    "dropmefiles.com": ("alert", "file-drop"),
    "fex.net": ("alert", "file-drop"),
    "freefilesync": ("label", "other"),
    "myftp.biz": ("alert", "dynamic-dns"),      # normally taken over by web-services.toml
    "myftp.org": ("alert", "dynamic-dns"),      # normally taken over by web-services.toml
    "nopaste.net": ("alert", "paste"),
    "premiumize.me": ("label", "cloud-drive"),
    "privnote.com": ("label", "paste"),
    "put.io": ("label", "cloud-drive"),
    "qaz.im": ("alert", "file-drop"),
    "qaz.is": ("alert", "file-drop"),
    "qaz.su": ("alert", "file-drop"),
    "send.exploit.in": ("alert", "file-drop"),
    "share.riseup.net": ("alert", "file-drop"),
    "transfert-my-files.com": ("alert", "file-drop"),
    "upload.nolog.cz": ("alert", "file-drop"),
    "usaupload": ("alert", "file-drop"),
}
FILEHOSTING_RATIONALE = {
    "paste": "{key} is a paste-only site: offices seldom use it, while malware fetches payloads, "
             "configuration and C2 addresses from pastes and attackers drop stolen data there.",
    "file-drop": "{key} is an anonymous file-drop service: offices seldom use it, while attackers "
                 "stage payloads on it and exfiltrate data through it.",
    "dynamic-dns": "{key} is a dynamic DNS zone: offices seldom visit such names, while attackers "
                   "use them for C2 and phishing hosts whose address changes.",
}


def build_filehosting(ds, out, reg, version, cands, meta):
    groups = group_signature_values(cands)
    ids = reg.assign("abused-filehosting", groups.keys())
    sigs = []
    for key in sorted(groups, key=lambda k: ids[k]):
        match, values = groups[key]
        m = meta[key]
        cls = m["class"]
        action, cat = FILEHOSTING_TIER.get(key, (None, None))
        if action is None:
            action, cat = "label", ("paste" if cls == "Paste" else "file-drop")
            log("review", f"abused-filehosting: {key!r} has no entry in FILEHOSTING_TIER: label, {cat}")
        s = {
            "id": ids[key], "rev": REV_TIERS,
            "msg": f"CLOUDTAP {'Paste site' if cls == 'Paste' else 'File hosting service'} {key} contacted",
            "fields": DOMAIN_FIELDS, "match": match, "values": values, "service": key,
            "service_category": cat,
            "next_step": "Find the host and process that contacted the service (EDR, proxy logs). "
                         "Uploads (large bytes out, POST/PUT) from a non-browser process or a server "
                         "suggest exfiltration; downloads of scripts or binaries suggest payload "
                         "staging. Check whether the user has a business reason to use it.",
        }
        if action == "alert":
            s["rationale"] = FILEHOSTING_RATIONALE[cat].format(key=key)
        else:
            s["action"] = "label"
        links = sorted(l for l in m["links"] if "twitter.com" not in l and "x.com/" not in l)
        if links:
            s["reference"] = links[0]
        sigs.append(s)
    pack = {
        "format": 1, "name": "abused-filehosting", "version": version,
        "description": "File-hosting and paste services from mthcht's ThreatHunting-Keywords lists "
                       "(FileHosting and PastebinLike tags) that the hand-written web-services pack "
                       "does not already cover. Paste-only sites and anonymous file drops alert on "
                       "their own; popular file hosts and sync or code-hosting services are context.",
        "action": "alert",
        "sources": [src("abused-services/mthcht-threathunting-keywords/FileHosting_Services_tag_detection.csv"),
                    src("abused-services/mthcht-threathunting-keywords/PastebinLike_tag_detection.csv")],
        "license_note": "Derived from mthcht/ThreatHunting-Keywords (MIT, Copyright (c) mthcht): only "
                        "the host names of domain-like keywords are used; command-line strings, URL "
                        "paths and file names are left out. To leave the pack out, delete this file "
                        "(abused-filehosting.toml). " + ATTACK_NOTICE,
    }
    defaults = {"category": "Potentially Bad Traffic", "severity": 2, "mitre_tactic_id": "TA0010",
                "mitre_tactic_name": "Exfiltration", "mitre_technique_id": "T1567.002",
                "mitre_technique_name": "Exfiltration_to_Cloud_Storage"}
    header = f"""cloudtap signature pack: file-hosting and paste services from mthcht keyword lists (ids {ID_BASE['abused-filehosting']}-{ID_LIMIT['abused-filehosting']}).
Tier rule: paste-only sites and anonymous file drops alert on their own (action = "alert", with a
rationale): offices seldom use them, attackers stage payloads and exfiltrate through them. Popular
file hosts (4shared is a top-500 site), sync software, code hosting, cloud downloaders and one-time
secret notes are context (action = "label"). The per-service decision is FILEHOSTING_TIER in
build_packs.py.
One signature per tool/service. The host name of each URL or domain keyword is matched as a suffix
(the name and its subdomains); keywords that are command lines or paths are skipped."""
    return write_pack(os.path.join(out, "abused-filehosting.toml"), header, pack, defaults, sigs)


# ------------------------------------------------------------------------------------------------
# 5. script-agents.useragents
# ------------------------------------------------------------------------------------------------

BROWSER_UAS = [
    # the three required mainstream browsers on macOS / iOS
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    # a few more mainstream browsers, for extra safety
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
]

# Sample UAs of the tools script-agents.toml covers, to detect overlaps in both directions.
SCRIPT_AGENT_SAMPLES = [
    "curl/8.5.0", "curl", "Wget/1.21.3", "Wget", "wget2/2.1.0", "python-requests/2.31.0",
    "Python-urllib/3.11", "python-urllib3/2.0.7", "Python/3.11 aiohttp/3.9.1", "python-httpx/0.27.0",
    "PycURL/7.45.2 libcurl/8.4.0", "Go-http-client/1.1", "Go-http-client/2.0",
    "libwww-perl/6.72", "lwp-trivial/6.72", "Java/1.8.0_292", "Java/17.0.2",
    "Apache-HttpClient/4.5.14 (Java/17.0.2)", "okhttp/4.12.0", "axios/1.6.0",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "node-fetch", "node", "undici",
    "Ruby", "rest-client/2.1.0 (linux x86_64) ruby/3.2.2p53", "Faraday v2.7.11",
    "GuzzleHttp/7", "HTTPie/3.2.2", "go-resty/2.10.0 (https://github.com/go-resty/resty)",
    "Scrapy/2.11.0 (+https://scrapy.org)",
    "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.19045; en-US) WindowsPowerShell/5.1.19041.3803",
    "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.19045; en-US) PowerShell/7.4.1",
    "Microsoft-CryptoAPI/10.0", "Microsoft BITS/7.8",
    "Mozilla/4.0 (compatible; Win32; WinHttp.WinHttpRequest.5)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "sqlmap/1.7.8#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "Mozilla/5.0 zgrab/0.x",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "gobuster/3.6", "feroxbuster/2.10.1", "Fuzz Faster U Fool v2.1.0-dev",
    "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
    "Wfuzz/3.1.0", "WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)", "Mozilla/4.0 (Hydra)",
]

# crawler-user-agents entries tagged 'scanner' that are offensive / security tools (the rest of
# that tag is monitoring, certificate validation and research scanners).
CRAWLER_OFFENSIVE = {"[aA]cunetix", "Nessus", "OpenVAS", "WhatWeb\\/", "l9scan", "l9explore", "ZmEu",
                     "Nikto", "sqlmap", "masscan", "WPScan", "[dD]ir[Bb]uster", "zgrab",
                     "Nmap Scripting Engine", "FastDAST", "TLS tester"}
# crawler-user-agents 'http-library' entries that are not scripts/tools (CDN or SaaS fetchers)
CRAWLER_EXCLUDE = {"Amazon CloudFront", "Salesforce\\.com", "BTWebClient"}

# mthcht categories to take entries from (other categories are bots/crawlers, compliance or
# generic payload strings).
MTHCHT_CATEGORIES = {"C2", "Malware", "malware", "Credential Access", "Cryptominer", "Data Exfiltration",
                     "Collection", "Collection - Data Exfiltration", "Discovery", "Exploitation", "LOLBIN",
                     "Network Sniffing", "phishing", "Phishing", "POST Exploitation",
                     "Privilege Escalation", "Reconnaissance", "RMM", "Vulnerability Scanner"}
# Entries that pass the mechanical filters but are names of legitimate products or too generic
# to be precise (substring of many legitimate UAs).
MTHCHT_DENY = {
    "Windows Defender", "ESET NOD32", "ESET SECURITY", "Google Chrome", "Mozilla FireFox",
    "Internet Explorer 6.0", "Microsoft Internet Explorer 6.0", "Internet Explorer 5.01",
    "Internet Explorer (compatible", "Microsoft Internet Browser", "MS Internet Explorer",
    "Microsoft WinRM Client", "AnyDesk", "AnyDesk/", "MeshCentral", "Skype", "AutoHotkey", "QQGame",
    "Download Master", "Windows Updates Manager", "Microsoft Internet Updater", "User Agent",
    "SogouExplorerMiniSetup", "SogouIMEMiniSetup", "Yodao Desktop Dict", "Kali linux",
    "BitTorrent/", "qBittorrent/", "libtorrent/", "uTorrent/", "Wireshark/", "aws-cli/", "rclone/v",
    "Windows NT 123.9", "Microsoft-WebDAV-MiniRedir/", "Windows_Installer", "HeadlessChrome",
    "HeadlessEdg", "Docker-Desktop/", "WinHTTP Example/1.0", "NDES client", "OWASP",
    "Dsreg/10.0 (Windows 10.0.19044.1826)", "UCCAPI/16.0.13328.20130 OC/16.0.13426.20234",
    "SensorsAnalytics CPP SDK 0.3", "Advanced Monitoring Agent HTTP Retriever 1.1",
    "LocusSoftware, NetInstaller", "Locus NetInstaller", "Wyzo/", "Windows+NT+5.x",
    "Agent and 5 or 6 digits", "5.1 ...", "vikiller ctrl...", "Apache (compatible...",
    "SpamBlockerUtility x.x.x",
}


def ua_match(entry, ua):
    if entry.startswith("re:"):
        return re.search(entry[3:], ua) is not None
    return entry in ua


def script_agents_matchers(path):
    with open(path, "rb") as f:
        pack = tomllib.load(f)
    ms = []
    for s in pack["signature"]:
        if "http.user_agent" not in s["fields"]:
            continue
        for v in s["values"]:
            if s["match"] == "regex":
                ms.append((s["id"], lambda ua, rx=re.compile(v): rx.search(ua) is not None, v))
            elif s["match"] == "substring":
                ms.append((s["id"], lambda ua, t=v: t in ua, v))
            elif s["match"] == "exact":
                ms.append((s["id"], lambda ua, t=v: ua == t, v))
    return ms


def distinctive(tok):
    """A token precise enough to use as a case-sensitive substring on its own."""
    if len(tok) < 4:
        return False
    if re.search(r"[0-9/_.:;()\[\]{}$\\@=-]", tok):
        return len(tok) >= 5
    if re.search(r"[a-z][A-Z]", tok):        # CamelCase product/tool names: BunnyLoader, OnionWClient
        return len(tok) >= 6
    return False  # plain words ('Internet', 'update', 'Explorer Toolbar') are too generic


def build_useragents(ds, out, version, sa_path):
    sa = script_agents_matchers(sa_path)
    crawler = json.load(open(os.path.join(ds, "user-agents/crawler-user-agents.json"), encoding="utf-8"))
    samples = list(SCRIPT_AGENT_SAMPLES)
    for e in crawler:
        samples.extend(e.get("instances") or [])

    entries = {}  # entry -> (source, tool)

    def consider(entry, source, tool):
        if len(entry.replace("re:", "", 1)) < 4:
            log("skip", f"useragents: {entry!r} ({source}: {tool}): shorter than 4 characters")
            return
        if entry.startswith("re:"):
            p = rust_regex_problem(entry[3:])
            if p:
                log("skip", f"useragents: {entry!r} ({source}: {tool}): regex {p}")
                return
        elif entry.startswith("#"):
            entry = "re:" + re.escape(entry)
        for b in BROWSER_UAS:
            if ua_match(entry, b):
                log("skip", f"useragents: {entry!r} ({source}: {tool}): matches a browser UA: {b}")
                return
        plain = entry[3:] if entry.startswith("re:") else entry
        for sid, fn, v in sa:
            if not entry.startswith("re:") and fn(plain):
                log("skip", f"useragents: {entry!r} ({source}: {tool}): already covered by script-agents {sid} ({v})")
                return
        for ua in samples:
            if ua_match(entry, ua):
                for sid, fn, v in sa:
                    if fn(ua):
                        log("skip", f"useragents: {entry!r} ({source}: {tool}): overlaps script-agents {sid} ({v}) on {ua!r}")
                        return
        if entry in entries:
            return
        entries[entry] = (source, tool)

    # crawler-user-agents: HTTP libraries and offensive tools
    for e in crawler:
        tags = set(e.get("tags") or [])
        pat = e["pattern"]
        if not (("http-library" in tags and pat not in CRAWLER_EXCLUDE) or pat in CRAWLER_OFFENSIVE):
            continue
        p = pat.replace("\\/", "/")
        lit = p.replace("\\.", ".").replace("\\ ", " ")
        if not re.search(r"[\\^$.|?*+()\[\]{}]", lit.replace(".", "")) and "\\" not in lit:
            entry = lit
        else:
            entry = "re:" + p
        consider(entry, "crawler-user-agents", pat)

    # mthcht suspicious UA list: precise entries of non-bot categories
    with open(os.path.join(ds, "user-agents/mthcht_suspicious_http_user_agents_list.csv"),
              encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f):
            raw = r["http_user_agent"]
            cat, tool, fp = r["metadata_category"].strip(), r["metadata_tool"].strip(), r["metadata_fp_risk"].strip()
            tok = raw.strip()
            why = None
            if cat not in MTHCHT_CATEGORIES:
                why = f"category {cat!r} not used"
            elif tool in ("", "_"):
                why = "no named tool (generic string)"
            elif fp not in ("none", "low"):
                why = f"false-positive risk {fp!r}"
            elif tok in MTHCHT_DENY:
                why = "legitimate product name or too generic (deny list)"
            elif tok.startswith("Mozilla/") and fp != "none":
                why = "browser-like UA string"
            elif re.search(r"(related|\.\.\.|x\.x|digits|spaces?|dash(es)?|slash)$", tok) or \
                    re.fullmatch(r"[0-9.E+]+", tok):
                why = "a description or a spreadsheet-mangled number, not a user-agent string"
            elif not distinctive(tok):
                why = "not distinctive enough as a substring (plain word or too short)"
            if why:
                if cat != "Bots & Vulnerability Scanner":
                    log("skip", f"useragents: {raw!r} (mthcht {cat}: {tool}): {why}")
                continue
            if "*" in tok:
                # glob: '*x*' -> substring x; other globs -> anchored regex
                if tok.startswith("*") and tok.endswith("*") and "*" not in tok[1:-1]:
                    tok = tok[1:-1]
                else:
                    tok = "re:^" + ".*".join(re.escape(p) for p in tok.split("*")) + "$"
            consider(tok, "mthcht", f"{tool} ({cat})")
    log("info", "useragents: mthcht category 'Bots & Vulnerability Scanner' (639 entries: crawlers, SEO bots) not used")

    by_source = {}
    for e, (s, t) in entries.items():
        by_source.setdefault(s, []).append((t.lower(), e, t))
    lines = [
        "# id: 9600001",
        "# message: CLOUDTAP Script or tool user agent (list)",
        "# category: Misc activity",
        "# severity: 3",
        "# action: label",
        "# service_category: script-agent",
        "# mitre_technique_id: T1071.001",
        "# mitre_technique_name: Web_Protocols",
        "# mitre_tactic_id: TA0011",
        "# mitre_tactic_name: Command_And_Control",
        "# pack: script-agents-extra",
        f"# version: {version}",
        "# source: " + src("user-agents/crawler-user-agents.json") + "; "
        + src("user-agents/mthcht_suspicious_http_user_agents_list.csv"),
        "# license: MIT (crawler-user-agents: Copyright (c) 2014 Martin Monperrus; "
        "awesome-lists: Copyright (c) mthcht). Delete this file to leave it out.",
        "#",
        "# GENERATED by signatures/tools/build_packs.py - do not edit by hand; rebuild instead.",
        "# Tier rule: context (action = label). A script agent alerts only when it reaches a web",
        "# service (a web-service name or a provider address range), which the detection stage",
        "# decides; a script agent reaching anything else (package managers, update agents,",
        "# monitoring scripts) stays a label.",
        "# User agents of HTTP client libraries, scripting tools, offensive tools and malware that the",
        "# hand-written script-agents.toml does not cover. One entry per line: a case-sensitive",
        "# substring, or 're:' + a Rust regex. Every entry was checked not to match mainstream browser",
        "# UAs (Chrome, Firefox, Safari on macOS/iOS, and Edge/Chrome/Firefox elsewhere) and not to",
        "# overlap script-agents.toml.",
    ]
    n = 0
    for s in sorted(by_source):
        lines.append("")
        lines.append(f"# --- from {s} ---")
        for _, e, t in sorted(by_source[s]):
            lines.append(f"# {t}")
            lines.append(e)
            n += 1
    with open(os.path.join(out, "script-agents.useragents"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return n


# ------------------------------------------------------------------------------------------------
# 6. cloud-consoles.toml (hand-picked list, stable ids from the registry)
# ------------------------------------------------------------------------------------------------

CONSOLE_FIELDS = ["dns.query", "tls.sni", "http.host"]

# (service, match, values, fields or None for CONSOLE_FIELDS, note for the comment or None).
# Console, sign-up and identity endpoints of cloud and app-hosting providers, for the burst
# detection (issue 11 point 6). login.microsoftonline.com, accounts.google.com and other
# identity hosts that every Microsoft 365 / Google Workspace login uses are deliberately left
# out. "exact" where the provider serves its dashboard on the same host as its web site (a visit
# to the site counts too; the burst needs several distinct providers), "suffix" where regional
# or per-account subdomains exist.
CLOUD_CONSOLES = [
    ("AWS Management Console", "suffix",
     ["signin.aws.amazon.com", "console.aws.amazon.com", "portal.aws.amazon.com"], None, None),
    ("Azure portal", "suffix", ["portal.azure.com", "signup.azure.com"], None,
     "login.microsoftonline.com is left out on purpose: every Microsoft 365 sign-in uses it."),
    ("Google Cloud console", "suffix", ["console.cloud.google.com"], None,
     "accounts.google.com is left out on purpose: every Google Workspace sign-in uses it."),
    ("Firebase console", "suffix", ["console.firebase.google.com"], None, None),
    ("Heroku dashboard", "suffix", ["signup.heroku.com", "dashboard.heroku.com", "id.heroku.com"], None, None),
    ("Netlify app", "suffix", ["app.netlify.com"], None, None),
    ("Vercel dashboard", "exact", ["vercel.com"], None,
     "vercel.com serves both the web site and the dashboard; deployed apps (*.vercel.app) are not consoles."),
    ("ngrok dashboard", "suffix", ["dashboard.ngrok.com"], None, None),
    ("DigitalOcean control panel", "suffix", ["cloud.digitalocean.com"], None, None),
    ("Linode Cloud Manager", "suffix", ["login.linode.com", "cloud.linode.com"], None, None),
    ("Vultr customer portal", "suffix", ["my.vultr.com"], None, None),
    ("Cloudflare dashboard", "suffix", ["dash.cloudflare.com"], None, None),
    ("Replit workspace", "exact", ["replit.com"], None,
     "replit.com serves both the web site and the workspace; deployed apps (*.replit.app) are not consoles."),
    ("GitHub sign-up", "regex", [r"(?i)^github\.com/signup([/?#]|$)"], ["http.full_url"],
     "A URL, not a host: it matches only where the full URL is visible (cleartext HTTP before the "
     "redirect to HTTPS, or URL logs fed to cloudtap); github.com itself is far too common to count."),
    ("Oracle Cloud console", "exact", ["cloud.oracle.com", "signup.cloud.oracle.com"], None,
     "exact: docs.cloud.oracle.com and other subdomains are documentation, not the console."),
    ("Render dashboard", "suffix", ["dashboard.render.com"], None, None),
    ("Fly.io dashboard", "exact", ["fly.io"], None,
     "The dashboard is fly.io/dashboard on the web-site host; deployed apps (*.fly.dev) are not consoles."),
    ("Railway dashboard", "exact", ["railway.app", "railway.com"], None,
     "exact: deployed apps live under up.railway.app."),
    ("IBM Cloud console", "exact", ["cloud.ibm.com"], None, None),
    ("Alibaba Cloud console", "suffix", ["signin.alibabacloud.com", "account.alibabacloud.com"], None, None),
    ("Hetzner Cloud console", "suffix", ["console.hetzner.cloud", "accounts.hetzner.com"], None, None),
    ("Scaleway console", "suffix", ["console.scaleway.com"], None, None),
    ("Deno Deploy dashboard", "suffix", ["dash.deno.com"], None, None),
    ("Koyeb control panel", "suffix", ["app.koyeb.com"], None, None),
    ("Glitch dashboard", "exact", ["glitch.com"], None,
     "exact: projects live under *.glitch.me."),
]


def build_consoles(out, reg, version):
    ids = reg.assign("cloud-consoles", [c[0] for c in CLOUD_CONSOLES])
    sigs = []
    for service, match, values, fields, note in sorted(CLOUD_CONSOLES, key=lambda c: ids[c[0]]):
        for v in values:
            if match == "regex":
                assert rust_regex_problem(v) is None, v
        s = {
            "id": ids[service], "rev": 1,
            "msg": f"CLOUDTAP LABEL Cloud console or sign-up {service}",
            "fields": fields or CONSOLE_FIELDS, "match": match, "values": values,
            "service": service,
            "next_step": "Context label for the burst detection (many distinct cloud console, "
                         "sign-up and identity endpoints from one host in a short window). A "
                         "single visit is normal for administrators and developers. In a burst "
                         "alert, ask the user whether cloud or hosting accounts were created, and "
                         "look for new-account and verification e-mails to company addresses.",
        }
        if note:
            s["_comment"] = [note]
        sigs.append(s)
    pack = {
        "format": 1, "name": "cloud-consoles", "version": version,
        "description": "Context labels for cloud and app-hosting providers' console, sign-up and "
                       "identity endpoints (AWS, Azure, Google Cloud, Heroku, Netlify, Vercel, ngrok, "
                       "DigitalOcean, Linode, Vultr, Cloudflare, Replit, GitHub sign-up, ...), used by "
                       "the burst detection. Labels only.",
        "action": "label",
        "sources": ["Hand-picked public host names of the providers' consoles (written for cloudtap, "
                    "2026-12-04)"],
        "license_note": "Host names are public facts written for cloudtap. " + ATTACK_NOTICE,
    }
    defaults = {"category": "Misc activity", "severity": 3, "mitre_tactic_id": "TA0042",
                "mitre_tactic_name": "Resource_Development", "mitre_technique_id": "T1583.006",
                "mitre_technique_name": "Web_Services", "service_category": "cloud-console"}
    header = f"""cloudtap signature pack: cloud console, sign-up and identity endpoints (ids {ID_BASE['cloud-consoles']}-{ID_LIMIT['cloud-consoles']}).
Tier rule: the whole pack is context (action = "label"). One visit to a console is normal; the
detection stage counts distinct console/sign-up endpoints per source host in a sliding window
(default 5 in 10 minutes) and raises one "burst" alert (9190006) listing them.
One signature per provider, service = the console's name. Fields dns.query, tls.sni, http.host
(no dns.answer: consoles are reached directly, not through customers' CNAMEs); GitHub sign-up is
a URL (http.full_url). Identity hosts that every office login uses (login.microsoftonline.com,
accounts.google.com) are left out on purpose."""
    return write_pack(os.path.join(out, "cloud-consoles.toml"), header, pack, defaults, sigs)


# ------------------------------------------------------------------------------------------------
# 7. script-tls-fingerprints.toml (JA3 / JA4 of script and automation tools)
# ------------------------------------------------------------------------------------------------

JA3_RE = re.compile(r"^[0-9a-f]{32}$")
JA4_RE = re.compile(r"^[tqd](1[0-3]|00|s[23]|d[0-9])[di][0-9]{2}[0-9]{2}[a-z0-9]{2}(_[0-9a-f]{12}_[0-9a-f]{12})?$")

# JA3 descriptions -> tool. First match wins; the tool names below are the services.
JA3_TOOLS = [
    (re.compile(r"APT-CURL|urlgrabber|yum", re.I), None),         # package managers: normal
    (re.compile(r"python-requests|Python Requests", re.I), "Python requests"),
    (re.compile(r"\bsqlmap\b", re.I), "sqlmap"),
    (re.compile(r"\bNikto\b", re.I), "Nikto"),
    (re.compile(r"\bMetasploit\b", re.I), "Metasploit"),
    (re.compile(r"\bBurpSuite\b", re.I), "Burp Suite"),
    (re.compile(r"\bzgrab\b", re.I), "ZGrab"),
    (re.compile(r"\bcurl\b", re.I), "curl"),
    (re.compile(r"\bwget\b", re.I), "Wget"),
    (re.compile(r"\(python ", re.I), "Python"),
    (re.compile(r"^golang\b", re.I), "Go (crypto/tls)"),
    (re.compile(r"^php script", re.I), "PHP"),
    (re.compile(r"^ruby( script)?\b", re.I), "Ruby"),
    (re.compile(r"^node\.js$", re.I), "Node.js"),
    (re.compile(r"(^|, ?)java$", re.I), "Java (JSSE)"),
    (re.compile(r"openssl s_client", re.I), "OpenSSL s_client"),
    (re.compile(r"^Malware: (Gootkit|TBot)"), "MALWARE"),
]
# Descriptions naming a browser (or a browser engine) or a malware-test false positive: left out.
JA3_EXCLUDE = re.compile(r"Chrome|Firefox|Safari|MSIE|Trident|Internet Explorer|Konqueror|"
                         r"Tor Browser|Opera|WebKit|links 2|Test FP|Used by many", re.I)
# Several programs named in one description: the fingerprint is shared (low confidence).
JA3_SHARED = re.compile(r" / |,|\bor\b", re.I)

# What else sends the same ClientHello (for next_step).
TLS_LIBRARY = {
    "curl": "libcurl with the same TLS backend and version (OpenSSL, NSS, SecureTransport): git, package managers and many updaters",
    "Wget": "the same OpenSSL/GnuTLS build: other command-line downloaders and updaters",
    "Python requests": "Python's ssl module (OpenSSL) of that version: pip, Ansible, the AWS and Azure CLIs and every other Python program",
    "Python": "Python's ssl module (OpenSSL): requests, urllib3, urllib, aiohttp, pip, Ansible, cloud CLIs and every other Python program",
    "Go (crypto/tls)": "Go's crypto/tls of that version: every Go program (Docker, Terraform, kubectl, monitoring agents, and implants such as Sliver)",
    "Sliver": "Go's crypto/tls: the Sliver implant's JA4 equals the generic Go fingerprint, so every Go program matches too",
    "Java (JSSE)": "Java's JSSE: every Java application of that version (IDEs, build tools, enterprise and desktop apps)",
    "Node.js": "Node.js's OpenSSL: npm, Electron tooling and every other Node.js program",
    "Ruby": "Ruby's OpenSSL binding: gem, Bundler, Metasploit and every other Ruby program",
    "PHP": "PHP's OpenSSL streams: Composer and every other PHP program",
    "OpenSSL s_client": "OpenSSL's default ClientHello: msmtp and other plain OpenSSL clients",
    "sqlmap": "Python's ssl module (sqlmap is a Python program): other Python programs of that version",
    "Nikto": "Perl's Net::SSLeay/OpenSSL: other Perl programs",
    "Metasploit": "Ruby's OpenSSL binding: other Ruby programs",
    "Burp Suite": "Java's JSSE (Burp is a Java program): other Java applications",
    "ZGrab": "Go's crypto/tls (ZGrab uses a fork): other Go programs",
    "Cobalt Strike beacon": "Windows WinINET/WinHTTP (SChannel): other Windows programs that use the same API and options",
    "IcedID": "Windows SChannel: other Windows programs with the same TLS options",
    "Gootkit": "its TLS library (2016 samples): other programs on the same library",
    "TBot / Skynet": "its TLS library (2016 samples): other programs on the same library",
}
JA4_LIBRARIES = {"Python": "Python", "GoLang": "Go (crypto/tls)", "GoLang net package": "Go (crypto/tls)",
                 "GoLang webhooks": "Go (crypto/tls)"}
JA4_APPLICATIONS = {"Sliver Agent": "Sliver", "Cobalt Strike v4.9.1 beacon": "Cobalt Strike beacon",
                    "IcedID": "IcedID"}


def fingerprint_candidates(ds):
    """[(field, value, service, confidence, source, description)] and the skipped rows."""
    base = os.path.join(ds, "tls-fingerprints")
    out = []
    # --- JA4 (FoxIO mapping; the ja4 column only) ---
    rows = []
    with open(os.path.join(base, "ja4plus-mapping.csv"), encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f):
            ja4 = (r.get("ja4") or "").strip()
            if ja4:
                rows.append((r["Application"].strip(), r["Library"].strip(), r["OS"].strip(), ja4,
                             (r.get("Notes") or "").strip()))
    by_value = {}
    for app, lib, os_, ja4, notes in rows:
        by_value.setdefault(ja4, []).append(app or lib)
    for app, lib, os_, ja4, notes in rows:
        owners = sorted(set(by_value[ja4]))
        desc = ", ".join(x for x in (app, lib, os_, notes) if x)
        if app in JA4_APPLICATIONS:
            service = JA4_APPLICATIONS[app]
            conf = "low" if len(owners) > 1 or service == "Cobalt Strike beacon" else "medium"
        elif not app and lib in JA4_LIBRARIES:
            service = JA4_LIBRARIES[lib]
            if any(o not in JA4_LIBRARIES and o not in JA4_APPLICATIONS for o in owners):
                log("skip", f"fingerprints: JA4 {ja4} ({desc}): also listed for {', '.join(owners)} "
                            "(WinINET: every Windows application), too broad")
                continue
            # A language runtime's TLS library (Python ssl, Go crypto/tls) is named reliably,
            # but every program built on it shares the fingerprint: pip, aws-cli, Terraform and
            # Docker as much as a Python or Go implant. Medium: evidence on an alert, never a
            # signal on its own (the detection stage lets only `high` join).
            conf = "medium"
        else:
            log("skip", f"fingerprints: JA4 {ja4} ({desc}): not a script/automation tool or implant")
            continue
        if not JA4_RE.match(ja4):
            log("skip", f"fingerprints: JA4 {ja4!r}: not a JA4 value")
            continue
        out.append(("tls.ja4", ja4, service, conf, "tls-fingerprints/ja4plus-mapping.csv", desc))
    # --- JA3 (salesforce first, then trisul) ---
    descs = {}
    order = []
    with open(os.path.join(base, "salesforce_osx-nix-ja3.csv"), encoding="utf-8") as f:
        for r in csv.reader(f):
            if len(r) == 2 and JA3_RE.match(r[0].strip().lower()):
                h = r[0].strip().lower()
                descs.setdefault(h, []).append(("tls-fingerprints/salesforce_osx-nix-ja3.csv", r[1].strip()))
                order.append(h)
    with open(os.path.join(base, "trisul_ja3fingerprint.json"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            h = str(d.get("ja3_hash", "")).strip().lower()
            if JA3_RE.match(h):
                descs.setdefault(h, []).append(("tls-fingerprints/trisul_ja3fingerprint.json", d["desc"].strip()))
                order.append(h)
    seen = set()
    for h in order:
        if h in seen:
            continue
        seen.add(h)
        source, _ = descs[h][0]
        desc = " | ".join(d for _, d in descs[h])
        tool = None
        for _, one in descs[h]:
            for rx, name in JA3_TOOLS:
                if rx.search(one):
                    tool = name
                    break
            if tool is not None:
                break
        if tool is None:
            continue
        if JA3_EXCLUDE.search(desc):
            log("skip", f"fingerprints: JA3 {h} ({desc[:100]}): names a browser, a malware-test false positive or many programs")
            continue
        if tool == "MALWARE":
            tool = "Gootkit" if "Gootkit" in desc else "TBot / Skynet"
            conf = "low"
        elif tool in ("Java (JSSE)", "Burp Suite") or JA3_SHARED.search(desc):
            conf = "low"
        else:
            conf = "medium"
        out.append(("tls.ja3", h, tool, conf, source, desc))
    return out


def build_fingerprints(ds, out, reg, version):
    cands = fingerprint_candidates(ds)
    groups = {}
    for field, value, service, conf, source, desc in cands:
        kind = "JA3" if field == "tls.ja3" else "JA4"
        key = f"{kind}|{service}|{conf}|{os.path.basename(source)}"
        g = groups.setdefault(key, {"field": field, "kind": kind, "service": service, "conf": conf,
                                    "source": source, "values": [], "descs": []})
        if value not in g["values"]:
            g["values"].append(value)
            g["descs"].append(f"{value}: {desc}")
    ids = reg.assign("script-tls-fingerprints", groups.keys())
    sigs = []
    for key in sorted(groups, key=lambda k: ids[k]):
        g = groups[key]
        lib = TLS_LIBRARY[g["service"]]
        old = (" The source list dates from 2016-2018: current versions send other ClientHellos."
               if g["kind"] == "JA3" else "")
        sigs.append({
            "_comment": [f"source: {g['source']}"] + [f"  {d[:110]}" for d in g["descs"]],
            "id": ids[key], "rev": 1,
            "msg": f"CLOUDTAP LABEL TLS {g['kind']} fingerprint of {g['service']} ({g['conf']} confidence)",
            "fields": [g["field"]], "match": "exact", "values": sorted(g["values"]),
            "service": g["service"], "confidence": g["conf"],
            "next_step": f"Context label only: the TLS ClientHello ({g['kind']}) looks like "
                         f"{g['service']}, i.e. a script or tool rather than a browser; the detection "
                         "stage alerts only when such a client reaches a web service. Library "
                         f"fingerprints collide: the same ClientHello is sent by {lib}, so "
                         "legitimate software matches too." + old + " Confirm the process on the "
                         "host (EDR: binary, command line, parent) before acting.",
        })
    pack = {
        "format": 1, "name": "script-tls-fingerprints", "version": version,
        "description": "Context labels for TLS client fingerprints (JA3, JA4) of script and automation "
                       "tools, HTTP libraries, offensive tools and a few implants, for when TLS hides "
                       "the user agent. Labels only; each entry has a confidence.",
        "action": "label",
        "sources": [src("tls-fingerprints/ja4plus-mapping.csv"),
                    src("tls-fingerprints/salesforce_osx-nix-ja3.csv"),
                    src("tls-fingerprints/trisul_ja3fingerprint.json")],
        "license_note": "JA4 values come from the ja4 column of FoxIO's mapping (JA4 is BSD-3-Clause); "
                        "no JA4+ value (JA4S/JA4H/JA4X/JA4T, FoxIO License 1.1, non-commercial) is used. "
                        "salesforce/ja3 lists are BSD-3-Clause (Copyright (c) 2017 salesforce.com inc.). "
                        "The trisul-scripts repository has no licence file: only fingerprint hashes "
                        "(values computed from a client's behaviour), tool names and, in a comment for "
                        "provenance, the short note of each row used; if that is not acceptable, "
                        "rebuild without the trisul entries or delete this file (nothing depends on "
                        "it). " + ATTACK_NOTICE,
    }
    defaults = {"category": "Misc activity", "severity": 3, "mitre_tactic_id": "TA0011",
                "mitre_tactic_name": "Command_And_Control", "mitre_technique_id": "T1071.001",
                "mitre_technique_name": "Web_Protocols", "service_category": "script-fingerprint"}
    header = f"""cloudtap signature pack: TLS fingerprints of script and automation tools (ids {ID_BASE['script-tls-fingerprints']}-{ID_LIMIT['script-tls-fingerprints']}).
Tier rule: the whole pack is context (action = "label"), like the script user agents. A script
fingerprint joins a web-service match (name or provider address range) to make an alert in the
detection stage; to anything else (package managers, update agents, monitoring) it stays a label.
Fields: tls.ja3 (JA3 MD5, lower-case hex) and tls.ja4 (full JA4), both match = "exact".
confidence = how reliably the fingerprint names the tool or library, not how malicious it is:
  high   JA4 FoxIO lists for exactly one library (Python, Go);
  medium one tool named for the fingerprint in its source (JA3 lists from 2016-2018, IcedID JA4);
  low    the source names several programs, the library is shared by a whole platform (Java JSSE,
         Burp), the implant's JA4 equals a generic library's (Sliver = Go) or the OS's TLS stack
         (Cobalt Strike over WinINET/WinHTTP), or old malware samples.
Library fingerprints collide with legitimate software on the same TLS library: each next_step
says with what. Left out: browsers, package managers (APT, yum), descriptions that name a browser
or a malware-test false positive, JA4 values also listed for WinINET (every Windows program),
and all JA4+ values (JA4H/JA4S/JA4X/JA4T: FoxIO License 1.1). PowerShell/.NET and Rust reqwest
have no fingerprint in the datasets (PowerShell and .NET use Windows SChannel, which every
Windows program shares). Each signature's comment names its source file and source rows."""
    return write_pack(os.path.join(out, "script-tls-fingerprints.toml"), header, pack, defaults, sigs), len(cands)


# ------------------------------------------------------------------------------------------------
# 8. Validation of the whole signatures/ directory
# ------------------------------------------------------------------------------------------------

def parse_list_header(path):
    hdr = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#\s*([a-z_]+):\s*(.*)$", line.rstrip("\n"))
            if m:
                hdr.setdefault(m.group(1), m.group(2))
            elif line.strip() and not line.startswith("#"):
                break
    return hdr


def validate(out):
    errors = []
    ids = {}

    def add_id(i, where):
        if i in ids:
            errors.append(f"duplicate id {i}: {ids[i]} and {where}")
        ids[i] = where

    for fn in sorted(os.listdir(out)):
        p = os.path.join(out, fn)
        if fn.endswith(".toml"):
            try:
                with open(p, "rb") as f:
                    pack = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                errors.append(f"{fn}: TOML error {e}")
                continue
            for imp in pack.get("import", []) if "pack" in pack else []:
                add_id(imp["id"], f"{fn} import")
                for k in ("id", "msg", "format", "path", "provider"):
                    if k not in imp:
                        errors.append(f"{fn} import {imp.get('id')}: missing {k}")
                if not os.path.exists(os.path.join(out, imp["path"])):
                    errors.append(f"{fn} import {imp['id']}: missing file {imp['path']}")
            if "pack" not in pack:
                continue  # an exception file
            pack_action = pack["pack"].get("action", "alert")
            dflt = pack.get("defaults", {})
            for imp in pack.get("import", []):
                cat = imp.get("service_category", dflt.get("service_category"))
                if cat not in SERVICE_CATEGORIES:
                    errors.append(f"{fn} import {imp['id']}: service_category {cat!r} missing or not in the vocabulary")
            for s in pack.get("signature", []):
                add_id(s["id"], fn)
                action = s.get("action", pack_action)
                cat = s.get("service_category", dflt.get("service_category"))
                if cat not in SERVICE_CATEGORIES:
                    errors.append(f"{fn} {s['id']}: service_category {cat!r} missing or not in the vocabulary")
                if action == "alert" and not str(s.get("rationale", "")).strip():
                    errors.append(f"{fn} {s['id']}: action alert without a rationale")
                conf = s.get("confidence", dflt.get("confidence"))
                if conf is not None and conf not in CONFIDENCES:
                    errors.append(f"{fn} {s['id']}: confidence {conf!r} not one of {CONFIDENCES}")
                tls_fp = set(s["fields"]) & {"tls.ja3", "tls.ja4"}
                if tls_fp:
                    if conf is None:
                        errors.append(f"{fn} {s['id']}: TLS fingerprint signature without confidence")
                    if s["match"] != "exact" or len(set(s["fields"])) != 1:
                        errors.append(f"{fn} {s['id']}: tls.ja3/tls.ja4 need match exact and one field")
                    for v in s["values"]:
                        ok = JA3_RE.match(v) if "tls.ja3" in tls_fp else JA4_RE.match(v)
                        if not ok:
                            errors.append(f"{fn} {s['id']}: {v!r} is not a {'JA3 (32 lower-case hex)' if 'tls.ja3' in tls_fp else 'JA4'} value")
                if not s.get("values"):
                    errors.append(f"{fn} {s['id']}: no values")
                if not s["msg"].startswith("CLOUDTAP "):
                    errors.append(f"{fn} {s['id']}: msg must start with CLOUDTAP")
                dom = bool(set(s["fields"]) & set(DOMAIN_FIELDS))
                for v in s["values"]:
                    if not v:
                        errors.append(f"{fn} {s['id']}: empty value")
                    if s["match"] == "regex":
                        prob = rust_regex_problem(v)
                        if prob:
                            errors.append(f"{fn} {s['id']}: regex {v!r} {prob}")
                    if s["match"] in ("suffix", "exact") and "*" in v:
                        errors.append(f"{fn} {s['id']}: '*' in {s['match']} value {v!r}")
                    if dom and s["match"] in ("suffix", "exact") and (" " in v or "/" in v):
                        errors.append(f"{fn} {s['id']}: space or '/' in domain value {v!r}")
                    if dom and s["match"] in ("suffix", "exact") and v != v.lower():
                        errors.append(f"{fn} {s['id']}: domain value not lower case {v!r}")
        elif fn.endswith((".useragents", ".domains", ".cidrs")):
            hdr = parse_list_header(p)
            if "id" in hdr:
                add_id(int(hdr["id"]), fn)
            else:
                errors.append(f"{fn}: no '# id:' header")
            if hdr.get("service_category") not in SERVICE_CATEGORIES:
                errors.append(f"{fn}: '# service_category:' header missing or not in the vocabulary")
            if hdr.get("action", "alert") == "alert" and not hdr.get("rationale"):
                errors.append(f"{fn}: action alert without a '# rationale:' header")
            with open(p, encoding="utf-8") as f:
                for ln, line in enumerate(f, 1):
                    e = line.rstrip("\n")
                    if not e.strip() or e.startswith("#"):
                        continue
                    if e != e.strip():
                        errors.append(f"{fn}:{ln}: surrounding whitespace in {e!r}")
                    if e.startswith("re:"):
                        prob = rust_regex_problem(e[3:])
                        if prob:
                            errors.append(f"{fn}:{ln}: regex {e!r} {prob}")
                    elif fn.endswith(".useragents"):
                        if len(e) < 4:
                            errors.append(f"{fn}:{ln}: entry shorter than 4 characters")
                    if fn.endswith(".useragents"):
                        for b in BROWSER_UAS:
                            if ua_match(e, b):
                                errors.append(f"{fn}:{ln}: {e!r} matches browser UA {b}")
    return errors, len(ids)


# ------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", required=True, help="path to the shared datasets folder")
    ap.add_argument("--out", required=True, help="the signatures/ directory")
    ap.add_argument("--without", action="append", default=[],
                    choices=["abused-lots", "abused-tunnels", "abused-filehosting"],
                    help="leave out a generated alerting pack (deletes its file) and let the other "
                         "packs keep the names it would have taken; repeatable")
    ap.add_argument("--version", default=PACK_VERSION_DEFAULT,
                    help=f"pack version to write (default {PACK_VERSION_DEFAULT})")
    ap.add_argument("--quiet", action="store_true", help="print only the summary")
    a = ap.parse_args()
    ds, out = a.datasets, a.out
    ws_path = os.path.join(out, "web-services.toml")
    sa_path = os.path.join(out, "script-agents.toml")
    reg = IdRegistry(os.path.join(out, "tools", "id-registry.json"))
    summary = []

    n, m = build_cloud(ds, out, reg, a.version)
    summary.append(("cloud-providers.toml", f"{n} host-name label signatures, {m} IP-range imports"))

    ws = DomainCoverage()
    ws.add_pack(ws_path, "web-services")
    lots_c, lots_rows = lots_candidates(ds)
    tun_c = tunnel_candidates(ds)
    fh_c, fh_meta = filehosting_candidates(ds)
    allc = []
    for name, cs in (("abused-lots", lots_c), ("abused-tunnels", tun_c), ("abused-filehosting", fh_c)):
        if name in a.without:
            log("info", f"{name}: left out (--without)")
        else:
            allc.extend(cs)
    dedupe(allc, ws)
    report_dropped(allc)

    builders = {
        "abused-lots": lambda: build_lots(ds, out, reg, a.version, lots_c, lots_rows),
        "abused-tunnels": lambda: build_tunnels(ds, out, reg, a.version, tun_c),
        "abused-filehosting": lambda: build_filehosting(ds, out, reg, a.version, fh_c, fh_meta),
    }
    for name in ("abused-lots", "abused-tunnels", "abused-filehosting"):
        path = os.path.join(out, name + ".toml")
        if name in a.without:
            if os.path.exists(path):
                os.remove(path)
            summary.append((name + ".toml", "left out"))
            continue
        n, _ = builders[name]()
        summary.append((name + ".toml", f"{n} signatures"))

    n = build_useragents(ds, out, a.version, sa_path)
    summary.append(("script-agents.useragents", f"{n} entries (one signature, id 9600001)"))
    n, _ = build_consoles(out, reg, a.version)
    summary.append(("cloud-consoles.toml", f"{n} label signatures"))
    (n, _), nvals = build_fingerprints(ds, out, reg, a.version)
    summary.append(("script-tls-fingerprints.toml", f"{n} label signatures, {nvals} fingerprints"))
    reg.save()

    for kind, msg in LOG:
        if not a.quiet or kind == "error":
            print(f"[{kind}] {msg}")
    print("\nSummary:")
    for fn, what in summary:
        p = os.path.join(out, fn)
        size = os.path.getsize(p) if os.path.exists(p) else 0
        print(f"  {fn:28} {size:>9} bytes  {what}")
    errors, nids = validate(out)
    if errors:
        print("\nVALIDATION FAILED:")
        for e in errors:
            print("  " + e)
        sys.exit(1)
    print(f"\nValidation OK: every pack parses, {nids} ids unique across {out}/, regexes compile "
          "without look-around/backreferences, domain values clean, no UA entry matches a browser.")


if __name__ == "__main__":
    main()
