#!/bin/bash
# Oracle files for tests/parsers14.rs, from tshark 4.0 and openssl (never from cloudtap):
#   tests/expected/i14/chromium-tls.hellos.tsv  per ClientHello: client port, signature
#       algorithms as sent (hex, GREASE included), and JA4 computed here in Python from
#       tshark's fields per the FoxIO spec (an implementation independent of src/)
#   tests/expected/i14/tls12-server.server.tsv  per ServerHello: client port, tshark's JA3S
#       string and hash, and for the leaf certificate: tshark's serial and SAN dNSNames, and
#       openssl's subject, issuer, dates and SHA-1 fingerprint of the DER tshark extracted
#   tests/expected/i14/tls-hrr.tsv  per ClientHello/ServerHello: client port, handshake type,
#       HelloRetryRequest flag
# usage: tests/gen-expected-i14.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/tests/expected/i14
mkdir -p "$OUT"
export LC_ALL=C
T=(-n -2 -o tcp.desegment_tcp_streams:TRUE -o tls.desegment_ssl_records:TRUE)
tsh() { tshark "${T[@]}" "$@" 2>/dev/null; }

# ---- Chromium ClientHellos and their JA4
tsh -r "$ROOT/captures/chromium-tls.pcap" -Y "tls.handshake.type == 1" -T fields \
  -E occurrence=a -E aggregator=, \
  -e tcp.srcport -e tls.handshake.ciphersuite -e tls.handshake.extension.type \
  -e tls.handshake.sig_hash_alg -e tls.handshake.extensions.supported_version \
  -e tls.handshake.extensions_alpn_str -e tls.handshake.extensions_server_name |
python3 -c '
import hashlib, sys
def grease(v): return (v & 0x0f0f) == 0x0a0a and (v >> 8) == (v & 0xff)
def nums(s): return [int(x, 0) for x in s.split(",") if x]
print("# client_port\tsig_algs_as_sent\tja4 (computed from tshark fields, FoxIO spec)")
for line in sys.stdin:
    port, ciph, ext, sig, ver, alpn, sni = line.rstrip("\n").split("\t")
    ciph = [c for c in nums(ciph) if not grease(c)]
    ext = [e for e in nums(ext) if not grease(e)]
    sig_all = nums(sig)
    sig = [s for s in sig_all if not grease(s)]
    vers = [v for v in nums(ver) if not grease(v)]
    v = max(vers) if vers else 0x0303
    vs = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10"}.get(v, "00")
    a1 = alpn.split(",")[0] if alpn else ""
    al = (a1[0] + a1[-1]) if a1 else "00"
    a = "t%s%s%02d%02d%s" % (vs, "d" if 0 in ext else "i", min(len(ciph), 99), min(len(ext), 99), al)
    b = hashlib.sha256(",".join("%04x" % c for c in sorted(ciph)).encode()).hexdigest()[:12]
    es = ",".join("%04x" % e for e in sorted(e for e in ext if e not in (0, 16)))
    if sig: es += "_" + ",".join("%04x" % s for s in sig)
    c = hashlib.sha256(es.encode()).hexdigest()[:12]
    print("%s\t%s\t%s_%s_%s" % (port, ",".join("%04x" % s for s in sig_all), a, b, c))
' >"$OUT/chromium-tls.hellos.tsv"

# ---- TLS 1.2 server flights
{
  printf '# client_port\tja3s_string\tja3s_hash\tserial_hex\tsan_dns\tsubject\tissuer\tnotbefore\tnotafter\tsha1\n'
  tsh -r "$ROOT/captures/tls12-server.pcap" -Y "tls.handshake.type == 2" -T fields \
    -e tcp.dstport -e tls.handshake.ja3s_full -e tls.handshake.ja3s | sort >"$OUT/.sh"
  tsh -r "$ROOT/captures/tls12-server.pcap" -Y "tls.handshake.type == 11" -T fields \
    -E occurrence=f -e tcp.dstport -e x509af.serialNumber -e tls.handshake.certificate | sort >"$OUT/.cert"
  tsh -r "$ROOT/captures/tls12-server.pcap" -Y "tls.handshake.type == 11" -T fields \
    -E occurrence=a -E aggregator=, -e tcp.dstport -e x509ce.dNSName | sort >"$OUT/.san"
  while IFS=$'\t' read -r port ja3s ja3sh; do
    IFS=$'\t' read -r _ serial der < <(grep -P "^$port\t" "$OUT/.cert")
    IFS=$'\t' read -r _ san < <(grep -P "^$port\t" "$OUT/.san")
    echo -n "$der" | xxd -r -p >"$OUT/.der"
    o() { openssl x509 -inform DER -in "$OUT/.der" -noout "$@"; }
    subj=$(o -subject -nameopt sep_comma_plus_space,sname,esc_2253,esc_ctrl,utf8 | sed 's/^subject=//')
    iss=$(o -issuer -nameopt sep_comma_plus_space,sname,esc_2253,esc_ctrl,utf8 | sed 's/^issuer=//')
    nb=$(date -u -d "$(o -startdate | sed 's/^notBefore=//')" +%Y-%m-%dT%H:%M:%S)
    na=$(date -u -d "$(o -enddate | sed 's/^notAfter=//')" +%Y-%m-%dT%H:%M:%S)
    fp=$(o -fingerprint -sha1 | sed 's/^.*=//' | tr 'A-F' 'a-f')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$port" "$ja3s" "$ja3sh" "$serial" "$san" "$subj" "$iss" "$nb" "$na" "$fp"
  done <"$OUT/.sh"
} >"$OUT/tls12-server.server.tsv"
rm -f "$OUT/.sh" "$OUT/.cert" "$OUT/.san" "$OUT/.der"

# ---- HelloRetryRequest flow
{
  printf '# client_port\thandshake_type\tis_hello_retry_request\n'
  tsh -r "$ROOT/captures/tls-hrr.pcap" -Y "tls.handshake.type == 1 || tls.handshake.type == 2" -T fields \
    -E occurrence=f -e tcp.srcport -e tcp.dstport -e tls.handshake.type -e tls.handshake.random |
  awk -F'\t' '{ port = ($3 == 1) ? $1 : $2;
    hrr = ($4 == "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c") ? "yes" : "no";
    print port "\t" $3 "\t" hrr }'
} >"$OUT/tls-hrr.tsv"
echo "wrote $OUT" >&2
