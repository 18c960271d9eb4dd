#!/bin/bash
# Regenerate tests/expected/<capture>.json from captures/*.pcap* with tshark (the oracle).
# usage: tests/gen-expected.sh [capture ...]      (default: every capture in captures/)
# Deterministic and idempotent: sorted unique values, fixed key order, trailing newline.
#
# Fields (tshark, two-pass, TCP reassembly + IP defragmentation on):
#   dns_queries      dns.qry.name of DNS messages with dns.flags.response==0   (lowercased)
#   dns_answers      dns.cname of DNS responses (CNAME targets)                (lowercased)
#   tls_sni          tls.handshake.extensions_server_name of ClientHellos      (lowercased)
#   http_user_agents http.user_agent of HTTP requests                          (as is)
#   http_hosts       http.host of HTTP requests, lowercased, ":port" stripped
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAPDIR=$ROOT/captures
OUTDIR=${OUTDIR:-$ROOT/tests/expected}
PY=${PY:-python3}
mkdir -p "$OUTDIR"
export LC_ALL=C

# Ports used by the lab that tshark does not map by default (8081 http, 8443 tls);
# Teredo (udp 3544), VXLAN (4789), Geneve (6081), ERSPAN II/III, VN-Tag and E-Tag
# are decoded by tshark 4.0 without help, and so are the issue-14 captures: 802.11
# (plain, radiotap, PPI, AVS, Prism), NFLOG, GTP-U (udp 2152), GRE-in-UDP (udp 4754),
# Aruba GRE 0x8200/0x8210 and AYIYA (udp 5072). Default: every capture in captures/.
TSHARK_OPTS=(-n -2
  -d tcp.port==8081,http -d tcp.port==8443,tls
  -o tcp.desegment_tcp_streams:TRUE -o tcp.reassemble_out_of_order:TRUE
  -o ip.defragment:TRUE -o ipv6.defragment:TRUE
  -o tls.desegment_ssl_records:TRUE -o tls.desegment_ssl_application_data:TRUE
  -o http.desegment_headers:TRUE -o http.desegment_body:TRUE
  -o dns.desegment_dns_messages:TRUE)

TSHARK_VERSION=$(tshark --version 2>/dev/null | head -1)

field() { # capture display-filter field
  tshark "${TSHARK_OPTS[@]}" -r "$1" -Y "$2" -T fields -E occurrence=a -E aggregator=$'\x1f' -e "$3" 2>/dev/null
}

if [ $# -gt 0 ]; then
  CAPS=("$@")
else
  mapfile -t CAPS < <(cd "$CAPDIR" && ls -1 -- *.pcap *.pcapng 2>/dev/null | sort)
fi

for c in "${CAPS[@]}"; do
  name=$(basename "$c")
  path=$CAPDIR/$name
  [ -f "$path" ] || { echo "missing $path" >&2; exit 1; }
  tmp=$(mktemp -d)
  field "$path" "dns && dns.flags.response == 0" dns.qry.name >"$tmp/q"
  field "$path" "dns && dns.flags.response == 1" dns.cname >"$tmp/a"
  field "$path" "tls.handshake.type == 1" tls.handshake.extensions_server_name >"$tmp/s"
  field "$path" "http.request" http.user_agent >"$tmp/u"
  field "$path" "http.request" http.host >"$tmp/h"
  "$PY" - "$name" "$TSHARK_VERSION" "$tmp" "$OUTDIR/$name.json" <<'EOF'
import json, re, sys
name, version, tmp, out = sys.argv[1:5]

def vals(fn):
    res = []
    with open(f"{tmp}/{fn}", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            for v in line.rstrip("\n").split("\x1f"):
                if v != "":
                    res.append(v)
    return res

def host(h):
    h = h.strip().lower()
    if h.startswith("["):                      # [v6]:port
        return h[1:h.index("]")] if "]" in h else h
    if h.count(":") == 1:
        h = re.sub(r":\d*$", "", h)
    return h

doc = {
    "capture": name,
    "tshark_version": version,
    "dns_queries": sorted({v.lower() for v in vals("q")}),
    "dns_answers": sorted({v.lower() for v in vals("a")}),
    "tls_sni": sorted({v.lower() for v in vals("s")}),
    "http_user_agents": sorted(set(vals("u"))),
    "http_hosts": sorted({host(v) for v in vals("h")}),
}
with open(out, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=2, ensure_ascii=False)
    f.write("\n")
EOF
  rm -rf "$tmp"
  echo "wrote tests/expected/$name.json" >&2
done
