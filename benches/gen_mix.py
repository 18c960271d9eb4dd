#!/usr/bin/env python3
"""Deterministic, realistic capture generator for the cloudtap vs Suricata benchmark (issue 4).

    python3 benches/gen_mix.py --out FILE.pcap [--scale 1.0] [--seed 1] --lists-dir DIR

Writes a classic pcap (Ethernet, microsecond timestamps) and, in --lists-dir, the signature
lists the benchmark loads (bench.domains, bench.useragents, bench.cidrs), expected.json (the
exact set of (field, value, flow) matches those lists must produce on the capture) and
mix-summary.json (what the capture contains).  Standard library only (Python 3.11+).

At --scale 1.0: ~1.5 GB, ~1.64 M packets, ~59 k flows, ~66 % of bytes in TCP/443 (TLS) flows,
~85 % of bytes in ~670 long bulk downloads, ~11 % of packets IPv6.  Everything but the lists
scales linearly with --scale (the lists are always 2,000 / 100 / 5,000 entries), plus a fixed
"battery" of edge cases (every list kind: exact names, subdomains, mixed case, near misses that
must not match, every user-agent pattern, addresses at CIDR edges and just outside them).

Determinism: all randomness comes from random.Random(seed) (one derived generator per flow),
the capture starts at a fixed time (2024-05-01T12:00:00Z); same seed + scale => identical bytes.

What the traffic is:
- bulk TCP downloads (TLS 1.3 over 443 mostly, plain HTTP/1.1 over 80): SYN/SYN-ACK/ACK, a
  real ClientHello or GET, full-MSS segments (1500-byte MTU, TCP timestamps), delayed ACKs
  every second segment, correct sequence/ack numbers and checksums, FIN handshake;
- short TLS 1.2/1.3 sessions with browser/tool ClientHellos (Chrome with GREASE, shuffled
  extensions, padding or X25519MLKEM768 + ECH GREASE; Firefox; curl/OpenSSL 3; Python
  requests; a TLS-1.2-only legacy client), ServerHello, certificates (TLS 1.2, structurally
  valid DER), encrypted records;
- DNS over UDP (A/AAAA/HTTPS queries with EDNS, responses with CNAME chains and name
  compression, NXDOMAIN with SOA), often just before the TLS/HTTP session that uses the name;
- short HTTP/1.1 sessions (GET/POST, keep-alive, Content-Length bodies);
- NTP and UDP noise (WireGuard tunnels); IPv6 for part of every kind.
"""
import argparse
import base64
import bisect
import heapq
import ipaddress
import json
import math
import os
import random
import re
import struct
import sys
import time

START_TS = 1714564800  # 2024-05-01T12:00:00Z
pack = struct.pack
pack_into = struct.pack_into

FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16

# Base counts at --scale 1.0 (calibrated to the targets in the docstring).
BASE = dict(
    bulk=670, tls=8600, http=3000, dns_solo=33800, ntp=1500, udp=1500,
    duration=300.0,
)
P_DNS_BEFORE = 0.75        # a TLS/HTTP session is preceded by its DNS lookup
P_V6_SHORT = 0.28          # short flows over IPv6 (when the server has an AAAA)
BULK_V6_BYTES = 0.085      # share of bulk bytes over IPv6
BULK_TLS_BYTES = 0.655     # share of bulk bytes that are TLS (the rest plain HTTP)
TARGET_BYTES = 1.5e9
BULK_SHARE = 0.85

# --------------------------------------------------------------------------------------------
# checksums (computed in the little-endian word domain: RFC 1071 byte-order independence)


def csum_le(b):
    n = len(b)
    if n & 1:
        return sum(memoryview(b)[:n - 1].cast('H')) + b[n - 1]
    return sum(memoryview(b).cast('H'))


def fold(s):
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def sw(v):
    return ((v & 0xff) << 8) | (v >> 8)


# --------------------------------------------------------------------------------------------
# names, user agents, address ranges

ONSET = ("b c d f g h j k l m n p r s t v w z br cr dr fl gr kl pl pr st tr sk sl sn sp th ch "
         "sh qu").split()
NUCL = "a e i o u a e i o ai ea io ou".split()
CODA = ["", "", "", "", "n", "r", "l", "s", "x", "m", "t", "k", "nd", "st"]
TLDS = [("com", 40), ("net", 15), ("io", 12), ("dev", 8), ("org", 6), ("app", 6), ("co", 4),
        ("cloud", 3), ("xyz", 3), ("info", 3), ("co.uk", 2)]
TLD_NAMES = [t for t, _ in TLDS]
TLD_W = [w for _, w in TLDS]
SVC = ("files api cdn dl static upload drop sync relay tunnel hooks paste share store edge "
       "blob s3 content raw gw push msg bin").split()
REGIONS = "eu us ap sa af me eu1 us2 west east".split()
HOSTSUBS = ("www www www api cdn static img m login app assets media edge s mail auth "
            "content data video gw").split()


def mkword(rng, nsyl=None):
    n = nsyl or rng.choice((2, 2, 2, 3, 3))
    return ''.join(rng.choice(ONSET) + rng.choice(NUCL) + rng.choice(CODA) for _ in range(n))


BROWSER_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
]
TOOL_UAS = ["curl/8.5.0", "Wget/1.21.3", "python-requests/2.31.0", "Go-http-client/1.1",
            "okhttp/4.12.0", "Debian APT-HTTP/1.3 (2.6.1)", "Microsoft-CryptoAPI/10.0",
            "Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.50"]


class Truth:
    """The reference semantics of the three plain lists (docs/signatures.md)."""

    def __init__(self, domains, uas, cidrs):
        self.suffix = set()
        self.exact = set()
        for d in domains:
            if d.startswith('='):
                self.exact.add(d[1:].lower())
            else:
                self.suffix.add(d.lower())
        self.subs = [u for u in uas if not u.startswith('re:')]
        self.res = [re.compile(u[3:]) for u in uas if u.startswith('re:')]
        self.v4 = {}
        self.v6 = {}
        for c in cidrs:
            n = ipaddress.ip_network(c, strict=False)
            tab = self.v4 if n.version == 4 else self.v6
            tab.setdefault(n.prefixlen, set()).add(int(n.network_address) >> (n.max_prefixlen - n.prefixlen))
        self.v4l = sorted(self.v4, reverse=True)
        self.v6l = sorted(self.v6, reverse=True)

    def domain(self, name):
        n = name.lower()
        if n.endswith('.'):
            n = n[:-1]
        if n in self.exact:
            return n
        labels = n.split('.')
        for i in range(len(labels)):
            s = '.'.join(labels[i:])
            if s in self.suffix:
                return s
        return None

    def ua(self, ua):
        for s in self.subs:
            if s in ua:
                return s
        for r in self.res:
            if r.search(ua):
                return 're:' + r.pattern
        return None

    def ip(self, addr):
        a = ipaddress.ip_address(addr)
        v = int(a)
        if a.version == 4:
            tab, lens, bits = self.v4, self.v4l, 32
        else:
            tab, lens, bits = self.v6, self.v6l, 128
        for p in lens:
            if (v >> (bits - p)) in tab[p]:
                return p
        return None


def build_lists(rng):
    """2,000 domain suffixes, 100 user-agent patterns (82 substrings, 18 regexes), 5,000 CIDRs,
    plus the benign name pools the traffic uses."""
    used = set()

    def fresh_word(n=None):
        while True:
            w = mkword(rng, n)
            if w not in used and 4 <= len(w) <= 14:
                used.add(w)
                return w

    def tld():
        return rng.choices(TLD_NAMES, TLD_W)[0]

    listed2, listed3, listed4 = [], [], []
    for _ in range(1500):
        listed2.append(f"{fresh_word()}.{tld()}")
    parents = []
    for _ in range(400):
        p = f"{fresh_word()}.{tld()}"
        parents.append(p)
        listed3.append(f"{rng.choice(SVC)}.{p}")
    for _ in range(100):
        p = f"{fresh_word()}.{tld()}"
        parents.append(p)
        listed4.append(f"{rng.choice(REGIONS)}.{rng.choice(SVC)}.{p}")
    domains = listed2 + listed3 + listed4
    benign = [f"{fresh_word()}.{tld()}" for _ in range(3000)] + parents
    cdn = [f"{fresh_word(2)}{rng.choice(['cdn', 'edge', 'static', 'dns'])}.net" for _ in range(24)]

    # user agents
    suffixes = ["Agent", "Client", "Fetch", "Sync", "Loader", "Shell", "Probe", "Crawler",
                "Bot", "Kit", "Grabber", "Uploader"]
    subs = []
    forms = 0
    while len(subs) < 82:
        w = fresh_word().capitalize()
        f = forms % 6
        forms += 1
        if f == 0:
            p = f"{w}/"
        elif f == 1:
            p = f"{w}-{rng.choice(suffixes)}"
        elif f == 2:
            p = f"{w.lower()}_{fresh_word()}"
        elif f == 3:
            p = f"; {w}{rng.choice(suffixes)}"
        elif f == 4:
            p = f"{w} {rng.choice(suffixes)}/"
        else:
            p = f"({w} "
        subs.append(p)
    regexes = []
    rtemplates = [
        lambda W, w: rf"^{W}/[0-9]+\.[0-9]+",
        lambda W, w: rf"^{W}-(cli|sdk|agent)/[0-9.]+$",
        lambda W, w: rf"{w}[_-]?loader",
        lambda W, w: rf"\({W} [0-9]{{1,2}}\.[0-9]\)",
        lambda W, w: rf"^Mozilla/5\.0 \(compatible; {W}/[0-9]+",
        lambda W, w: rf"(?i){w}-?bot/",
        lambda W, w: rf"{W}/v?[0-9]+ \([a-z]+; [a-z0-9_]+\)$",
        lambda W, w: rf"^{W}[A-Z][a-z]+/[0-9]",
        lambda W, w: rf"{w}\.(exe|dll|ps1) [0-9]+",
    ]
    for i in range(18):
        w = fresh_word()
        regexes.append(rtemplates[i % len(rtemplates)](w.capitalize(), w))
    uas = subs + ['re:' + r for r in regexes]
    for u in uas:  # no pattern may hit a browser or common tool
        t = Truth([], [u], [])
        assert not any(t.ua(b) for b in BROWSER_UAS + TOOL_UAS), u

    # CIDRs
    bad_first = {0, 10, 100, 127, 169, 172, 192, 198, 203}
    firsts = [i for i in range(1, 224) if i not in bad_first]
    cidrs = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]
    seen = set(cidrs)
    while len(cidrs) < 4500:
        r = rng.random()
        if r < 0.25:
            p = 32
        elif r < 0.65:
            p = 24
        elif r < 0.75:
            p = rng.randint(20, 23)
        elif r < 0.80:
            p = rng.randint(16, 19)
        else:
            p = rng.randint(25, 31)
        a = (rng.choice(firsts) << 24) | rng.getrandbits(24)
        n = ipaddress.ip_network((a >> (32 - p) << (32 - p), p))
        s = str(n.network_address) if p == 32 and rng.random() < 0.5 else str(n)
        if str(n) not in seen:
            seen.add(str(n))
            cidrs.append(s)
    while len(cidrs) < 5000:
        r = rng.random()
        p = 32 if r < 0.1 else 48 if r < 0.5 else 56 if r < 0.65 else 64 if r < 0.9 else 128
        a = (0x2 << 124) | rng.getrandbits(125)  # 2000::/3 .. 3fff::
        a = (0x2000 + rng.getrandbits(12)) << 112 | rng.getrandbits(112)
        n = ipaddress.ip_network((a >> (128 - p) << (128 - p), p))
        s = str(n.network_address) if p == 128 and rng.random() < 0.5 else str(n)
        if str(n) not in seen:
            seen.add(str(n))
            cidrs.append(s)
    rng.shuffle(cidrs)
    return dict(domains=domains, listed2=listed2, listed3=listed3, listed4=listed4,
                parents=parents, benign=benign, cdn=cdn, uas=uas, subs=subs, regexes=regexes,
                cidrs=cidrs, used_words=used, fresh_word=fresh_word)


def write_lists(d, L):
    os.makedirs(d, exist_ok=True)
    rng = random.Random(7)
    with open(os.path.join(d, 'bench.domains'), 'w') as f:
        f.write("# id: 9900001\n# message: CLOUDTAP BENCH domain list\n# severity: 2\n"
                "# action: alert\n# pack: bench-domains\n"
                "# Generated by benches/gen_mix.py: invented names; each line matches the name\n"
                "# and its subdomains (label boundary).\n")
        for i, x in enumerate(L['domains']):
            if i % 500 == 250:
                f.write("\n# --- block ---\n")
            f.write(x + "\n")
    with open(os.path.join(d, 'bench.useragents'), 'w') as f:
        f.write("# id: 9900002\n# message: CLOUDTAP BENCH user-agent list\n# severity: 3\n"
                "# action: alert\n# pack: bench-useragents\n"
                "# Generated by benches/gen_mix.py: case-sensitive substrings, re: regexes.\n")
        for x in L['uas']:
            f.write(x + "\n")
    with open(os.path.join(d, 'bench.cidrs'), 'w') as f:
        f.write("# id: 9900003\n# message: CLOUDTAP BENCH address list\n# severity: 2\n"
                "# action: alert\n# pack: bench-cidrs\n"
                "# Generated by benches/gen_mix.py: random public and documentation ranges.\n")
        for x in L['cidrs']:
            f.write(x + "\n")
    del rng


# --------------------------------------------------------------------------------------------
# TLS

GREASE = [0x0a0a + 0x1010 * i for i in range(16)]


def u8(x):
    return bytes((x,))


def u16(x):
    return pack('!H', x)


def v8(b):
    return u8(len(b)) + b


def v16(b):
    return u16(len(b)) + b


def v24(b):
    return pack('!I', len(b))[1:] + b


def ext(t, data=b''):
    return pack('!HH', t, len(data)) + data


def hs(t, body):
    return u8(t) + v24(body)


def rec(ct, body, ver=0x0303):
    out = []
    for i in range(0, max(len(body), 1), 16384):
        chunk = body[i:i + 16384]
        out.append(pack('!BHH', ct, ver, len(chunk)) + chunk)
    return b''.join(out)


def u16s(vals):
    return b''.join(u16(v) for v in vals)


def sni_ext(name):
    n = name.encode()
    return ext(0, v16(u8(0) + v16(n)))


def alpn_ext(protos):
    return ext(16, v16(b''.join(v8(p.encode()) for p in protos)))


SIG_CHROME = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
SIG_FF = [0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201]
SIG_OSSL = [0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x081a, 0x081b, 0x081c, 0x0809, 0x080a, 0x080b,
            0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502,
            0x0602]
SIG_PY = [0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0804, 0x0805, 0x0806,
          0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602]
SIG_LEGACY = [0x0603, 0x0601, 0x0503, 0x0501, 0x0403, 0x0401, 0x0303, 0x0301, 0x0203, 0x0201,
              0x0402, 0x0202]

CS_CHROME = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
             0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
CS_FF = [0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc009,
         0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
CS_OSSL = [0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f, 0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f,
           0x009e, 0xc024, 0xc028, 0x006b, 0xc023, 0xc027, 0x0067, 0xc00a, 0xc014, 0x0039, 0xc009,
           0xc013, 0x0033, 0x009d, 0x009c, 0x003d, 0x003c, 0x0035, 0x002f, 0x00ff]
CS_PY = [0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0x009f, 0x009e,
         0xccaa, 0xc0af, 0xc0ad, 0xc0ae, 0xc0ac, 0xc024, 0xc028, 0xc023, 0xc027, 0xc00a, 0xc014,
         0xc009, 0xc013, 0xc0a3, 0xc09f, 0xc0a2, 0xc09e, 0x006b, 0x0067, 0x0039, 0x0033, 0x009d,
         0x009c, 0xc0a1, 0xc09d, 0xc0a0, 0xc09c, 0x003d, 0x003c, 0x0035, 0x002f, 0x00ff]
CS_LEGACY = [0xc02c, 0xc02b, 0xc030, 0xc02f, 0xc024, 0xc023, 0xc028, 0xc027, 0xc00a, 0xc009,
             0xc014, 0xc013, 0x009d, 0x009c, 0x003d, 0x003c, 0x0035, 0x002f, 0x000a, 0x00ff]


def client_hello(rng, profile, sni):
    """Returns (record bytes, offers_tls13, alpn list)."""
    rnd = rng.randbytes(32)
    S = [sni_ext(sni)] if sni is not None else []
    if profile in ('chrome', 'chrome_pq'):
        g = rng.sample(GREASE, 5)
        cs = [g[0]] + CS_CHROME
        groups = [g[1]] + ([0x11ec] if profile == 'chrome_pq' else []) + [0x1d, 0x17, 0x18]
        ks = [(g[1], b'\x00')]
        if profile == 'chrome_pq':
            ks.append((0x11ec, rng.randbytes(1216)))
        ks.append((0x1d, rng.randbytes(32)))
        alpn = ['h2', 'http/1.1']
        exts = [
            *S,
            ext(23), ext(0xff01, b'\x00'), ext(10, v16(u16s(groups))), ext(11, b'\x01\x00'),
            ext(35), alpn_ext(alpn), ext(5, b'\x01\x00\x00\x00\x00'),
            ext(13, v16(u16s(SIG_CHROME))), ext(18),
            ext(51, v16(b''.join(u16(gr) + v16(k) for gr, k in ks))),
            ext(45, b'\x01\x01'), ext(43, v8(u16s([g[2], 0x0304, 0x0303]))),
            ext(27, b'\x02\x00\x02'),
            ext(0x44cd if profile == 'chrome_pq' else 0x4469, v16(v8(b'h2'))),
        ]
        if profile == 'chrome_pq':
            ech = (b'\x00' + u16(1) + u16(1) + u8(rng.randrange(256)) + v16(rng.randbytes(32)) +
                   v16(rng.randbytes(rng.choice((144, 176, 208, 240)))))
            exts.append(ext(0xfe0d, ech))
        rng.shuffle(exts)
        exts = [ext(g[3])] + exts + [ext(g[4], b'\x00')]
        pad = True
        sid = rng.randbytes(32)
        tls13 = True
    elif profile == 'firefox':
        cs = CS_FF
        alpn = ['h2', 'http/1.1']
        exts = [
            *S, ext(23), ext(0xff01, b'\x00'),
            ext(10, v16(u16s([0x1d, 0x17, 0x18, 0x19, 0x100, 0x101]))), ext(11, b'\x01\x00'),
            ext(35), alpn_ext(alpn), ext(5, b'\x01\x00\x00\x00\x00'),
            ext(34, v16(u16s([0x0403, 0x0503, 0x0603, 0x0203]))),
            ext(51, v16(u16(0x1d) + v16(rng.randbytes(32)) + u16(0x17) + v16(b'\x04' + rng.randbytes(64)))),
            ext(43, v8(u16s([0x0304, 0x0303]))), ext(13, v16(u16s(SIG_FF))), ext(45, b'\x01\x01'),
            ext(28, u16(0x4001)),
        ]
        pad = True
        sid = rng.randbytes(32)
        tls13 = True
    elif profile in ('curl', 'python'):
        py = profile == 'python'
        cs = CS_PY if py else CS_OSSL
        alpn = ['http/1.1'] if py else ['h2', 'http/1.1']
        groups = [0x1d, 0x17, 0x1e, 0x19, 0x18] + ([] if py else [0x100, 0x101, 0x102, 0x103, 0x104])
        exts = [
            *S, ext(11, b'\x03\x00\x01\x02'), ext(10, v16(u16s(groups))), ext(35),
            alpn_ext(alpn), ext(22), ext(23), ext(13, v16(u16s(SIG_PY if py else SIG_OSSL))),
            ext(43, v8(u16s([0x0304, 0x0303]))), ext(45, b'\x01\x01'),
            ext(51, v16(u16(0x1d) + v16(rng.randbytes(32)))),
        ]
        if py:
            exts.append(ext(49))
        pad = False
        sid = rng.randbytes(32)
        tls13 = True
    else:  # legacy TLS 1.2 only
        cs = CS_LEGACY
        alpn = []
        exts = [*S, ext(5, b'\x01\x00\x00\x00\x00'),
                ext(10, v16(u16s([0x17, 0x18, 0x19]))), ext(11, b'\x01\x00'),
                ext(13, v16(u16s(SIG_LEGACY))), ext(23), ext(0xff01, b'\x00'), ext(35)]
        pad = False
        sid = b''
        tls13 = False
    body_wo = pack('!H', 0x0303) + rnd + v8(sid) + v16(u16s(cs)) + b'\x01\x00'
    extb = b''.join(exts)
    n = 4 + len(body_wo) + 2 + len(extb)
    if pad and 0xff < n < 0x200:
        padlen = 0x200 - n - 4
        if padlen < 1:
            padlen = 1
        extb += ext(21, bytes(padlen))
    body = body_wo + v16(extb)
    return rec(22, hs(1, body), 0x0301), tls13, alpn, sid


# DER (certificates for TLS 1.2 sessions)

def der(tag, content):
    n = len(content)
    if n < 0x80:
        ln = u8(n)
    elif n < 0x100:
        ln = b'\x81' + u8(n)
    else:
        ln = b'\x82' + u16(n)
    return u8(tag) + ln + content


def oid(s):
    p = [int(x) for x in s.split('.')]
    out = bytearray([40 * p[0] + p[1]])
    for v in p[2:]:
        enc = [v & 0x7f]
        v >>= 7
        while v:
            enc.append(0x80 | (v & 0x7f))
            v >>= 7
        out += bytes(reversed(enc))
    return der(6, bytes(out))


def seq(*items):
    return der(0x30, b''.join(items))


def name_der(pairs):
    return seq(*[der(0x31, seq(oid(o), der(t, v.encode()))) for o, t, v in pairs])


SHA256RSA = seq(oid('1.2.840.113549.1.1.11'), b'\x05\x00')


def cert_der(rng, subject_cn, issuer_cn, san):
    serial = bytearray(rng.randbytes(16))
    serial[0] = (serial[0] & 0x7f) | 0x10
    modulus = b'\x00' + bytes([0x80 | rng.randrange(128)]) + rng.randbytes(255)
    spki = seq(seq(oid('1.2.840.113549.1.1.1'), b'\x05\x00'),
               der(3, b'\x00' + seq(der(2, modulus), der(2, b'\x01\x00\x01'))))
    exts = []
    if san:
        exts.append(seq(oid('2.5.29.17'), der(4, seq(der(0x82, san.encode())))))
    exts.append(seq(oid('2.5.29.15'), der(1, b'\xff'), der(4, der(3, b'\x05\xa0'))))
    tbs = seq(der(0xa0, der(2, b'\x02')), der(2, bytes(serial)), SHA256RSA,
              name_der([('2.5.4.6', 0x13, 'US'), ('2.5.4.10', 0x13, 'Bench Trust Services'),
                        ('2.5.4.3', 0x13, issuer_cn)]),
              seq(der(0x17, b'240401000000Z'), der(0x17, b'240630235959Z')),
              name_der([('2.5.4.3', 0x0c, subject_cn)]), spki, der(0xa3, seq(*exts)))
    return seq(tbs, SHA256RSA, der(3, b'\x00' + rng.randbytes(256)))


def server_flight(rng, tls13, ch_sid, alpn, sni, inter):
    """Server's first flight after the ClientHello (bytes)."""
    srnd = rng.randbytes(32)
    if tls13:
        exts = ext(43, u16(0x0304)) + ext(51, u16(0x1d) + v16(rng.randbytes(32)))
        sh = pack('!H', 0x0303) + srnd + v8(ch_sid) + u16(rng.choice((0x1301, 0x1302))) + b'\x00' + v16(exts)
        out = rec(22, hs(2, sh)) + rec(20, b'\x01')
        # EncryptedExtensions + Certificate + CertificateVerify + Finished, encrypted
        out += rec(23, rng.randbytes(rng.randint(2000, 4200)))
        return out
    exts = ext(0xff01, b'\x00') + ext(11, b'\x01\x00') + ext(23)
    if alpn:
        exts += alpn_ext([alpn[0] if rng.random() < 0.7 else alpn[-1]])
    sh = pack('!H', 0x0303) + srnd + v8(rng.randbytes(32)) + u16(0xc02f) + b'\x00' + v16(exts)
    cn = sni or 'server.invalid'
    leaf = cert_der(rng, cn, 'Bench CA R3', sni)
    certs = v24(v24(leaf) + v24(inter))
    ske = b'\x03' + u16(0x1d) + v8(rng.randbytes(32)) + u16(0x0804) + v16(rng.randbytes(256))
    return rec(22, hs(2, sh) + hs(11, certs) + hs(12, ske) + hs(14, b''))


# --------------------------------------------------------------------------------------------
# DNS

QTYPES = {'A': 1, 'AAAA': 28, 'CNAME': 5, 'SOA': 6, 'HTTPS': 65}


class DnsMsg:
    def __init__(self):
        self.buf = bytearray()
        self.comp = {}

    def name(self, n):
        labels = n.split('.') if n else []
        for i in range(len(labels)):
            suf = '.'.join(labels[i:]).lower()
            p = self.comp.get(suf)
            if p is not None:
                self.buf += u16(0xc000 | p)
                return
            if len(self.buf) < 0x3fff:
                self.comp[suf] = len(self.buf)
            lab = labels[i].encode()
            self.buf += u8(len(lab)) + lab
        self.buf += b'\x00'

    def rr(self, owner, typ, ttl, rdata_fn):
        self.name(owner)
        self.buf += pack('!HHI', typ, 1, ttl)
        at = len(self.buf)
        self.buf += b'\x00\x00'
        rdata_fn()
        pack_into('!H', self.buf, at, len(self.buf) - at - 2)


OPT_RR = b'\x00' + pack('!HHIH', 41, 1232, 0, 0)


def dns_query(qid, name, qtype, edns):
    m = DnsMsg()
    m.buf += pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    m.name(name)
    m.buf += pack('!HH', qtype, 1)
    if edns:
        m.buf += OPT_RR
    return bytes(m.buf)


def dns_response(rng, qid, name, qtype, edns, chain, addrs, rcode=0, zone=None):
    """chain: CNAME targets; addrs: packed addresses of the final name."""
    m = DnsMsg()
    an = 0
    m.buf += pack('!HHHHHH', qid, 0x8180 | rcode, 1, 0, 0, 0)
    m.name(name)
    m.buf += pack('!HH', qtype, 1)
    owner = name
    for tgt in chain:
        m.rr(owner, 5, rng.choice((60, 300, 3600)), lambda t=tgt: m.name(t))
        owner = tgt
        an += 1
    if qtype in (1, 28):
        for a in addrs:
            m.rr(owner, qtype, rng.choice((20, 60, 300)), lambda a=a: m.buf.extend(a))
            an += 1
    elif qtype == 65 and addrs:
        def svcb():
            m.buf += u16(1) + b'\x00'
            m.buf += u16(1) + v16(v8(b'h2') + v8(b'h3'))
        m.rr(owner, 65, 300, svcb)
        an += 1
    ns = 0
    if (rcode == 3 or an == 0 or (qtype == 65 and not addrs)) and zone:
        def soa():
            m.name('ns1.' + zone)
            m.name('hostmaster.' + zone)
            m.buf += pack('!IIIII', 2024050101, 7200, 900, 1209600, 300)
        m.rr(zone, 6, 300, soa)
        ns = 1
    ar = 0
    if edns:
        m.buf += OPT_RR
        ar = 1
    pack_into('!HHH', m.buf, 6, an, ns, ar)
    return bytes(m.buf)


# --------------------------------------------------------------------------------------------
# packet building


class Host:
    __slots__ = ('ip', 'ipb', 'v6', 'mac')

    def __init__(self, ip, mac):
        a = ipaddress.ip_address(ip)
        self.ip = str(a)
        self.ipb = a.packed
        self.v6 = a.version == 6
        self.mac = mac


GW_MAC = bytes.fromhex('00163e5a0c01')


class Path:
    """Link and IP headers for both directions between a client and a server."""
    __slots__ = ('v6', 'eth_c', 'eth_s', 'sd_c', 'sd_s', 'pbase', 'ipb_c', 'ipb_s', 'id_c', 'id_s',
                 'ttl_c', 'ttl_s', 'fl_c', 'fl_s')

    def __init__(self, rng, cli, srv, proto):
        self.v6 = cli.v6
        et = b'\x86\xdd' if self.v6 else b'\x08\x00'
        self.eth_c = GW_MAC + cli.mac + et
        self.eth_s = cli.mac + GW_MAC + et
        self.sd_c = cli.ipb + srv.ipb
        self.sd_s = srv.ipb + cli.ipb
        self.pbase = csum_le(self.sd_c) + (proto << 8)
        self.ttl_c = 64
        self.ttl_s = rng.choice((49, 52, 53, 56, 57, 58, 118, 121, 245))
        if self.v6:
            self.fl_c = 0x60000000 | rng.getrandbits(20)
            self.fl_s = 0x60000000 | rng.getrandbits(20)
        else:
            self.id_c = rng.getrandbits(16)
            self.id_s = rng.getrandbits(16)
            self.ipb_c = csum_le(pack('!BBHHHBBH', 0x45, 0, 0, 0, 0x4000, self.ttl_c, proto, 0) + self.sd_c)
            self.ipb_s = csum_le(pack('!BBHHHBBH', 0x45, 0, 0, 0, 0x4000, self.ttl_s, proto, 0) + self.sd_s)

    def ip(self, fromc, proto, l4len):
        if self.v6:
            if fromc:
                return pack('!IHBB', self.fl_c, l4len, proto, self.ttl_c) + self.sd_c
            return pack('!IHBB', self.fl_s, l4len, proto, self.ttl_s) + self.sd_s
        tot = 20 + l4len
        if fromc:
            ident = self.id_c = (self.id_c + 1) & 0xffff
            c = fold(self.ipb_c + sw(tot) + sw(ident))
            return pack('!BBHHHBBH', 0x45, 0, tot, ident, 0x4000, self.ttl_c, proto, sw(c)) + self.sd_c
        ident = self.id_s = (self.id_s + 1) & 0xffff
        c = fold(self.ipb_s + sw(tot) + sw(ident))
        return pack('!BBHHHBBH', 0x45, 0, tot, ident, 0x4000, self.ttl_s, proto, sw(c)) + self.sd_s


class Tcp:
    def __init__(self, rng, cli, srv, cport, sport):
        self.p = Path(rng, cli, srv, 6)
        self.cport, self.sport = cport, sport
        self.cseq = rng.getrandbits(32)
        self.sseq = rng.getrandbits(32)
        self.cto = rng.getrandbits(32)
        self.sto = rng.getrandbits(32)
        self.ctv = 0
        self.stv = 0
        self.mss = 1428 if self.p.v6 else 1448
        self.cwin = rng.choice((501, 502, 2052, 1026))
        self.swin = rng.choice((235, 509, 1040, 64240 >> 7))

    def seg(self, t, fromc, flags, payload=b'', psum=None):
        p = self.p
        if fromc:
            seq, ack, sport, dport, win = self.cseq, self.sseq, self.cport, self.sport, self.cwin
            tsval = ((t // 1000) + self.cto) & 0xffffffff
            tsecr = self.stv
            self.ctv = tsval
        else:
            seq, ack, sport, dport, win = self.sseq, self.cseq, self.sport, self.cport, self.swin
            tsval = ((t // 1000) + self.sto) & 0xffffffff
            tsecr = self.ctv
            self.stv = tsval
        if flags & SYN:
            mss = 1440 if p.v6 else 1460
            opts = pack('!BBHBBBBIIBBBB', 2, 4, mss, 4, 2, 8, 10, tsval, tsecr, 1, 3, 3, 7)
            win = 64800 if fromc else 65160
            if not flags & ACK:
                ack = 0
        else:
            opts = pack('!BBBBII', 1, 1, 8, 10, tsval, tsecr)
        hl = 20 + len(opts)
        hdr = pack('!HHIIBBHHH', sport, dport, seq, ack, hl << 2, flags, win, 0, 0) + opts
        pl = len(payload)
        tl = hl + pl
        if psum is None:
            psum = csum_le(payload) if pl else 0
        c = fold(p.pbase + sw(tl) + csum_le(hdr) + psum)
        hdr = hdr[:16] + pack('<H', c) + hdr[18:]
        adv = pl + (1 if flags & (SYN | FIN) else 0)
        if fromc:
            self.cseq = (seq + adv) & 0xffffffff
            eth = p.eth_c
        else:
            self.sseq = (seq + adv) & 0xffffffff
            eth = p.eth_s
        return (t, b''.join((eth, p.ip(fromc, 6, tl), hdr, payload)))


class Udp:
    def __init__(self, rng, cli, srv, cport, sport):
        self.p = Path(rng, cli, srv, 17)
        self.cport, self.sport = cport, sport

    def dgram(self, t, fromc, payload):
        p = self.p
        ul = 8 + len(payload)
        sp, dp = (self.cport, self.sport) if fromc else (self.sport, self.cport)
        c = fold(p.pbase + sw(ul) + sw(sp) + sw(dp) + sw(ul) + csum_le(payload)) or 0xffff
        return (t, b''.join((p.eth_c if fromc else p.eth_s, p.ip(fromc, 17, ul),
                             pack('!HHH', sp, dp, ul), pack('<H', c), payload)))


# --------------------------------------------------------------------------------------------
# bulk payload rings (precomputed segments and their checksums)


class Ring:
    def __init__(self, rng, mss, nseg, tls):
        total = mss * nseg
        buf = bytearray()
        bounds = [0]
        if tls:
            while len(buf) < total:
                rem = total - len(buf)
                rl = 16401
                if rem <= 5 + rl:
                    rl = rem - 5
                elif rem - (5 + rl) < 5 + 64:
                    rl = rem - 5 - (5 + 64)
                buf += pack('!BHH', 23, 0x0303, rl) + rng.randbytes(rl)
                bounds.append(len(buf))
        else:
            buf += rng.randbytes(total)
            bounds.append(total)
        assert len(buf) == total
        self.mss, self.nseg, self.total, self.bounds = mss, nseg, total, bounds
        self.segs = [bytes(buf[i * mss:(i + 1) * mss]) for i in range(nseg)]
        self.sums = [csum_le(s) for s in self.segs]

    def snap(self, n):
        """Largest length <= n (>= one record) ending on a record boundary."""
        w, r = divmod(n, self.total)
        i = bisect.bisect_right(self.bounds, r) - 1
        out = w * self.total + self.bounds[i]
        return out if out > 0 else self.bounds[1]


# --------------------------------------------------------------------------------------------
# flows (generators of (t_us, frame)); t in microseconds since START_TS


def rtt_of(rng):
    return int(rng.choice((rng.uniform(3, 15), rng.uniform(15, 60), rng.uniform(60, 180))) * 1000)


def send(c, t, fromc, data, gap, acks=False):
    """Sends data in MSS segments from t (one every gap us); with acks, the peer ACKs every
    second segment and the last one.  Generator; returns the time of the last segment."""
    mss = c.mss
    n = len(data)
    ack_d = max(1, min(40, gap // 2))
    i = k = 0
    while i < n:
        chunk = data[i:i + mss]
        i += mss
        last = i >= n
        yield c.seg(t, fromc, (PSH | ACK) if last else ACK, chunk)
        if acks and (k & 1 or last):
            yield c.seg(t + ack_d, not fromc, ACK)
        k += 1
        if not last:
            t += gap
    return t


def tcp_close(c, t, rng, client_first=True):
    out = []
    a = rng.randint(200, 3000)
    out.append(c.seg(t, client_first, FIN | ACK))
    t += a
    out.append(c.seg(t, not client_first, FIN | ACK))
    t += rng.randint(30, 400)
    out.append(c.seg(t, client_first, ACK))
    return out


def flow_tls(s, rng, ctx):
    """Short TLS session (also used for the start of bulk TLS downloads)."""
    c = Tcp(rng, s['cli'], s['srv'], s['cport'], s['sport'])
    t = s['t']
    rtt = s['rtt']
    yield c.seg(t, True, SYN)
    t += rtt
    yield c.seg(t, False, SYN | ACK)
    t += rng.randint(20, 120)
    yield c.seg(t, True, ACK)
    t += rng.randint(50, 400)
    ch, tls13, alpn, sid = client_hello(rng, s['profile'], s['sni'])
    if not s.get('tls13', True):
        tls13 = False
    t = yield from send(c, t, True, ch, 15)
    t += rtt + rng.randint(200, 3000)
    flight = server_flight(rng, tls13, sid, alpn, s['sni'], ctx['inter'])
    t = yield from send(c, t, False, flight, rng.randint(40, 120), acks=True)
    t += rng.randint(300, 5000)
    if tls13:
        cfin = rec(20, b'\x01') + rec(23, rng.randbytes(53))
    else:
        cfin = rec(22, hs(16, v8(rng.randbytes(32)))) + rec(20, b'\x01') + rec(22, rng.randbytes(40))
    if not tls13:
        t = yield from send(c, t, True, cfin, 10)
        t += rtt + rng.randint(100, 800)
        t = yield from send(c, t, False, rec(20, b'\x01') + rec(22, rng.randbytes(40)), 10)
        t += rng.randint(100, 2000)
        cfin = b''
    bulk = s['kind'].startswith('bulk')
    nreq = 1 if bulk else rng.choice((1, 1, 1, 1, 2))
    for r in range(nreq):
        req = cfin + rec(23, rng.randbytes(rng.randint(90, 700)))
        cfin = b''
        t = yield from send(c, t, True, req, 10)
        t += rtt + rng.randint(500, 30000)
        if bulk:
            yield from bulk_stream(c, t, rng, s, ctx['tls_rings'][s['ring']], s['len'])
            return
        size = s['resp'][r]
        data = rec(23, rng.randbytes(size)) if size <= 16384 else b''.join(
            rec(23, rng.randbytes(min(16401, size - i))) for i in range(0, size, 16384))
        t = yield from send(c, t, False, data, rng.randint(40, 400), acks=True)
        t += rng.randint(1000, 200000)
    t += rng.randint(1000, 500000)
    yield from tcp_close(c, t, rng, client_first=rng.random() < 0.7)


def bulk_stream(c, t, rng, s, ring, length):
    """Server->client bulk data (ring slices), delayed ACKs, close."""
    rate = s['rate']  # bits per second
    hdr = 66 if not c.p.v6 else 86
    gap = max(1, int((c.mss + hdr) * 8 * 1e6 / rate))
    ack_d = min(30, gap // 2)
    mss = c.mss
    nfull, rem = divmod(length, mss)
    segs, sums, nseg = ring.segs, ring.sums, ring.nseg
    seg = c.seg
    jit = rng.randint
    for k in range(nfull):
        i = k % nseg
        fr = seg(t, False, ACK if k + 1 < nfull or rem else PSH | ACK, segs[i], sums[i])
        yield fr
        if k & 1:
            yield seg(t + ack_d, True, ACK)
        t += gap + (jit(0, gap >> 2) if k & 7 == 0 else 0)
    if rem:
        yield seg(t, False, PSH | ACK, segs[nfull % nseg][:rem])
        yield seg(t + ack_d, True, ACK)
        t += gap
    t += rng.randint(1000, 50000)
    if s['kind'] == 'bulk_tls':
        yield seg(t, True, PSH | ACK, rec(23, rng.randbytes(19)))
        t += rng.randint(10, 100)
    yield from tcp_close(c, t, rng, client_first=True)


def http_request(rng, method, host_hdr, path, ua, body=None, browser=False):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_hdr}"]
    if browser:
        lines += ["Connection: keep-alive", "Upgrade-Insecure-Requests: 1", f"User-Agent: {ua}",
                  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                  "Accept-Encoding: gzip, deflate", "Accept-Language: en-US,en;q=0.9"]
    else:
        if ua is not None:
            lines.append(f"User-Agent: {ua}")
        lines.append("Accept: */*")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b'')


WORDS_TXT = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
             "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud").split()


def http_body(rng, size, ctype):
    if ctype == 'application/json':
        items = []
        n = 0
        while n < size:
            it = '{"id":%d,"name":"%s","value":%d}' % (rng.randrange(10**6), rng.choice(WORDS_TXT), rng.randrange(1000))
            items.append(it)
            n += len(it) + 1
        return ('{"items":[' + ','.join(items) + ']}').encode()
    if ctype == 'text/html; charset=utf-8':
        words = ' '.join(rng.choice(WORDS_TXT) for _ in range(size // 6 + 1))
        return f"<!DOCTYPE html><html><head><title>page</title></head><body><p>{words}</p></body></html>\n".encode()
    return rng.randbytes(size)


def http_response(rng, status, ctype, body):
    reason = {200: 'OK', 404: 'Not Found', 301: 'Moved Permanently', 204: 'No Content'}[status]
    lines = [f"HTTP/1.1 {status} {reason}", "Date: Wed, 01 May 2024 12:00:00 GMT",
             rng.choice(["Server: nginx/1.24.0", "Server: Apache", "Server: envoy", "Server: cloudfront"])]
    if status != 204:
        lines += [f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body if status != 204 else b'')


def flow_http(s, rng, ctx):
    c = Tcp(rng, s['cli'], s['srv'], s['cport'], s['sport'])
    t = s['t']
    rtt = s['rtt']
    yield c.seg(t, True, SYN)
    t += rtt
    yield c.seg(t, False, SYN | ACK)
    t += rng.randint(20, 120)
    yield c.seg(t, True, ACK)
    t += rng.randint(50, 400)
    bulk = s['kind'].startswith('bulk')
    for r, (method, path, resp_size, ctype) in enumerate(s['reqs']):
        body = None
        if method == 'POST':
            body = http_body(rng, rng.randint(40, 900), 'application/json')
        req = http_request(rng, method, s['host_hdr'], path, s['ua'], body, s['browser'])
        t = yield from send(c, t, True, req, 10)
        t += rtt + rng.randint(300, 20000)
        if bulk:
            hdr = ("HTTP/1.1 200 OK\r\nDate: Wed, 01 May 2024 12:00:00 GMT\r\nServer: nginx/1.24.0\r\n"
                   "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
                   "Accept-Ranges: bytes\r\nConnection: keep-alive\r\n\r\n" % s['len']).encode()
            yield c.seg(t, False, PSH | ACK, hdr)
            t += 200
            yield from bulk_stream(c, t, rng, s, ctx['http_rings'][s['ring']], s['len'])
            return
        status = 200 if method == 'GET' else rng.choice((200, 204))
        if rng.random() < 0.05:
            status = 404
        rbody = http_body(rng, resp_size, ctype) if status != 204 else b''
        data = http_response(rng, status, ctype, rbody)
        t = yield from send(c, t, False, data, rng.randint(40, 400), acks=True)
        t += rng.randint(1000, 300000)
    yield from tcp_close(c, t, rng, client_first=rng.random() < 0.6)


def flow_dns(s, rng, ctx):
    """Queries back to back from one socket, each answered after its own delay."""
    u = Udp(rng, s['cli'], s['srv'], s['cport'], 53)
    t = s['t']
    ev = []
    for j, q in enumerate(s['queries']):
        qid = rng.getrandbits(16)
        ev.append((t, j, True, dns_query(qid, q['name'], q['qtype'], q['edns'])))
        rb = dns_response(rng, qid, q['name'], q['qtype'], q['edns'], q['chain'], q['addrs'],
                          q['rcode'], q['zone'])
        ev.append((t + rng.randint(300, 40000), j, False, rb))
        t += rng.randint(20, 400)
    ev.sort(key=lambda e: (e[0], e[1], e[2]))
    for tt, _, fromc, payload in ev:
        yield u.dgram(tt, fromc, payload)


def flow_ntp(s, rng, ctx):
    u = Udp(rng, s['cli'], s['srv'], s['cport'], 123)
    t = s['t']
    for _ in range(s['n']):
        secs = START_TS + t // 1000000 + 2208988800
        xmit = pack('!II', secs & 0xffffffff, rng.getrandbits(32))
        req = pack('!BBbbII', 0x23, 0, 6, -24, 0, 0) + b'\x00' * 4 + b'\x00' * 24 + xmit
        yield u.dgram(t, True, req)
        t2 = t + rng.randint(5000, 80000)
        secs2 = START_TS + t2 // 1000000 + 2208988800
        rx = pack('!II', secs2 & 0xffffffff, rng.getrandbits(32))
        resp = (pack('!BBbbII', 0x24, 2, 6, -24, rng.randint(50, 3000), rng.randint(50, 3000)) +
                bytes(ipaddress.ip_address(rng.choice(['216.239.35.0', '162.159.200.1', '129.6.15.28'])).packed) +
                pack('!II', (secs2 - 1000) & 0xffffffff, 0) + xmit + rx + rx)
        yield u.dgram(t2, False, resp)
        t = t2 + rng.randint(1_000_000, 8_000_000)


def flow_udp(s, rng, ctx):
    """UDP noise: a WireGuard tunnel (handshake, then encrypted transport data both ways)."""
    u = Udp(rng, s['cli'], s['srv'], s['cport'], s['sport'])
    t = s['t']
    si, ri = rng.getrandbits(32), rng.getrandbits(32)
    yield u.dgram(t, True, pack('<II', 1, si) + rng.randbytes(140))
    t += rng.randint(5000, 90000)
    yield u.dgram(t, False, pack('<III', 2, ri, si) + rng.randbytes(80))
    ctr = [0, 0]
    for i in range(s['n']):
        t += rng.randint(500, 60000)
        fromc = i % 3 != 2
        n = 16 * rng.randint(4, 80) + 16
        yield u.dgram(t, fromc, pack('<IIQ', 4, ri if fromc else si, ctr[fromc]) + rng.randbytes(n))
        ctr[fromc] += 1


FLOWS = {'tls': flow_tls, 'bulk_tls': flow_tls, 'http': flow_http, 'bulk_http': flow_http,
         'dns': flow_dns, 'ntp': flow_ntp, 'udp': flow_udp}


# --------------------------------------------------------------------------------------------
# planning


class Planner:
    def __init__(self, seed, scale):
        self.seed, self.scale = seed, scale
        self.rng = random.Random(seed)
        rng = self.rng
        self.L = build_lists(rng)
        L = self.L
        self.truth = Truth(L['domains'], L['uas'], L['cidrs'])
        self.dur = int(max(30.0, BASE['duration'] * scale) * 1e6)
        # clients
        self.clients4 = []
        self.clients6 = []
        for i in range(240):
            mac = bytes([0x02, 0x42, 0xac, 0x11, i >> 8, i & 0xff])
            ip4 = f"10.1.{1 + i // 200}.{10 + i % 200}" if i < 200 else f"192.168.1.{i - 190}"
            self.clients4.append(Host(ip4, mac))
            self.clients6.append(Host(f"2a0e:8f02:21c0:1::{0x100 + i:x}", mac))
        self.res4 = Host('10.1.0.53', GW_MAC)
        self.res6 = Host('2a0e:8f02:21c0:1::53', GW_MAC)
        self.ports = {}
        self.addr_cache = {}
        self.sessions = []
        self.expected = {}
        self.nearmiss = {}
        self.flow_keys = set()

    # ---- addresses
    def pub4(self, rng):
        while True:
            a = (rng.randint(1, 223) << 24) | rng.getrandbits(24)
            ip = ipaddress.IPv4Address(a)
            if ip.is_global and not self.truth.ip(str(ip)) and (a >> 24) not in (100, 198, 203, 192):
                return str(ip)

    def pub6(self, rng):
        while True:
            a = (rng.choice((0x2600, 0x2606, 0x2a00, 0x2a02, 0x2a04, 0x2001, 0x2400, 0x2620)) << 112) | (rng.getrandbits(32) << 80) | rng.getrandbits(16)
            ip = ipaddress.IPv6Address(a)
            if ip.is_global and not self.truth.ip(str(ip)):
                return str(ip)

    def addrs_for(self, host):
        """Stable (v4, v6 or None) for a host name (by registered domain)."""
        if host not in self.addr_cache:
            r = random.Random(f"{self.seed}:{host}")
            v4 = self.pub4(r)
            v6 = self.pub6(r) if r.random() < 0.6 else None
            self.addr_cache[host] = (v4, v6)
        return self.addr_cache[host]

    def port(self, cli):
        p = self.ports.get(cli.ip)
        if p is None:
            p = self.rng.randint(32768, 45000)
        p += self.rng.randint(1, 7)
        if p > 60999:
            p = 32768 + (p - 61000)
        self.ports[cli.ip] = p
        return p

    def client(self, v6):
        i = self.rng.randrange(240)
        return (self.clients6 if v6 else self.clients4)[i]

    # ---- names
    def match_name(self, rng, kind=None):
        L = self.L
        e = rng.choice(L['listed2'] if rng.random() < 0.7 else (L['listed3'] if rng.random() < 0.8 else L['listed4']))
        k = kind or rng.choices(['self', 'www', 'sub', 'deep', 'case'], [3, 2, 3, 1, 1])[0]
        if k == 'self':
            n = e
        elif k == 'www':
            n = 'www.' + e
        elif k == 'sub':
            n = f"{rng.choice(HOSTSUBS + SVC)}.{e}"
        elif k == 'deep':
            n = f"{mkword(rng, 1)}.{rng.choice(REGIONS)}.{rng.choice(SVC)}.{e}"
        else:
            n = ''.join(ch.upper() if rng.random() < 0.5 else ch for ch in f"{rng.choice(HOSTSUBS)}.{e}")
        return n

    def near_name(self, rng, kind=None):
        L = self.L
        for _ in range(50):
            e = rng.choice(L['listed2'])
            k = kind or rng.choice(['glue', 'extend', 'tld', 'parent', 'hyphen', 'longtld'])
            if k == 'glue':
                n = rng.choice(['bad', 'my', 'get', 'the', 'x', 'e', 'i']) + e
            elif k == 'extend':
                n = f"{e}.{rng.choice(L['benign'])}"
            elif k == 'tld':
                w, _, t = e.partition('.')
                n = f"{w}.{rng.choice([x for x in TLD_NAMES if x != t])}"
            elif k == 'parent':
                p = rng.choice(L['listed3'] + L['listed4'])
                parent = p.split('.', 1)[1]
                n = rng.choice([parent, 'www.' + parent, f"{rng.choice(['auth', 'login', 'mail'])}.{parent}"])
            elif k == 'hyphen':
                n = e.replace('.', '-', 1) + '.' + rng.choice(['io', 'net', 'com'])
            else:
                n = e + rng.choice(['pany', 'munity', 'x', 'z'])
            if not self.truth.domain(n):
                self.nearmiss[k] = self.nearmiss.get(k, 0) + 1
                return n
        raise RuntimeError('no near miss')

    def benign_name(self, rng):
        d = rng.choice(self.L['benign'])
        r = rng.random()
        return d if r < 0.15 else f"{rng.choice(HOSTSUBS)}.{d}"

    def pick_name(self, rng, pm, pn):
        r = rng.random()
        if r < pm:
            return self.match_name(rng)
        if r < pm + pn:
            return self.near_name(rng)
        return self.benign_name(rng)

    def cidr_addr(self, rng, where='inside', v6=None):
        cs = self.L['cidrs']
        for _ in range(1000):
            c = ipaddress.ip_network(rng.choice(cs), strict=False)
            if v6 is not None and (c.version == 6) != v6:
                continue
            n = c.num_addresses
            if where == 'inside':
                a = c.network_address + (rng.randrange(n) if n > 1 else 0)
            elif where == 'first':
                a = c.network_address
            elif where == 'last':
                a = c.broadcast_address
            elif where == 'below':
                a = c.network_address - 1
            else:
                a = c.broadcast_address + 1
            if not a.is_global and str(c) not in ('192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'):
                continue
            hit = self.truth.ip(str(a))
            if (where in ('inside', 'first', 'last')) == bool(hit):
                if not hit:
                    self.nearmiss['ip_' + where] = self.nearmiss.get('ip_' + where, 0) + 1
                return str(a)
        raise RuntimeError('cidr')

    def ua_match(self, rng, pat=None):
        L = self.L
        p = pat or rng.choice(L['uas'])
        for _ in range(100):
            if not p.startswith('re:'):
                ver = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}"
                f = rng.randrange(3)
                if p.startswith(';') or p.startswith('('):
                    ua = f"Mozilla/5.0 (compatible{p}{ver}; +https://example.invalid/bot)" if p.startswith(';') else f"Tool/{ver} {p}{ver})"
                elif f == 0:
                    ua = f"{p}{ver}" if p.endswith('/') else f"{p}/{ver}"
                elif f == 1:
                    ua = f"Mozilla/5.0 (X11; Linux x86_64) {p}{ver}"
                else:
                    ua = f"{p}{ver} (linux; amd64)" if p.endswith('/') else f"{p}/{ver} (+https://example.invalid)"
            else:
                ua = self.ua_for_regex(rng, p[3:])
            if self.truth.ua(ua):
                return ua
        raise RuntimeError(f'cannot match {p}')

    def ua_for_regex(self, rng, r):
        m = re.match(r'\^(\w+)/\[0-9\]\+\\\.\[0-9\]\+$', r)
        if m:
            return f"{m.group(1)}/{rng.randint(1, 20)}.{rng.randint(0, 9)} (linux)"
        m = re.match(r'\^(\w+)-\(cli\|sdk\|agent\)', r)
        if m:
            return f"{m.group(1)}-{rng.choice(['cli', 'sdk', 'agent'])}/{rng.randint(1, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
        m = re.match(r'(\w+)\[_-\]\?loader', r)
        if m:
            return f"Mozilla/5.0 {m.group(1)}{rng.choice(['_', '-', ''])}loader/{rng.randint(1, 9)}"
        m = re.match(r'\\\((\w+) ', r)
        if m:
            return f"Updater/{rng.randint(1, 9)}.0 ({m.group(1)} {rng.randint(1, 19)}.{rng.randint(0, 9)})"
        m = re.match(r'\^Mozilla/5\\\.0 \\\(compatible; (\w+)/', r)
        if m:
            return f"Mozilla/5.0 (compatible; {m.group(1)}/{rng.randint(1, 12)}; +https://example.invalid)"
        m = re.match(r'\(\?i\)(\w+)-\?bot/', r)
        if m:
            w = m.group(1)
            w = rng.choice([w, w.upper(), w.capitalize()])
            return f"{w}{rng.choice(['-', ''])}{rng.choice(['bot', 'Bot', 'BOT'])}/{rng.randint(1, 4)}.0"
        m = re.match(r'(\w+)/v\?\[0-9\]\+ ', r)
        if m:
            return f"{m.group(1)}/v{rng.randint(1, 9)} ({rng.choice(['linux', 'windows', 'darwin'])}; {rng.choice(['amd64', 'arm64', 'x86_64'])})"
        m = re.match(r'\^(\w+)\[A-Z\]', r)
        if m:
            return f"{m.group(1)}{rng.choice(['Pro', 'Lite', 'Max'])}/{rng.randint(1, 9)}.{rng.randint(0, 9)}"
        m = re.match(r'(\w+)\\\.\(exe', r)
        if m:
            return f"WinHttp {m.group(1)}.{rng.choice(['exe', 'dll', 'ps1'])} {rng.randint(100, 9999)}"
        raise RuntimeError(r)

    def ua_near(self, rng):
        L = self.L
        for _ in range(100):
            p = rng.choice(L['uas'])
            ua = self.ua_match(rng, p)
            if p.startswith('re:'):
                if '^' in p:
                    ua = 'X' + ua
                elif p.endswith('$'):
                    ua = ua + ' extra'
                else:
                    continue
            else:
                core = p.strip('/;( ')
                alt = core.swapcase()
                ua = ua.replace(core, alt)
            if not self.truth.ua(ua):
                self.nearmiss['ua'] = self.nearmiss.get('ua', 0) + 1
                return ua
        raise RuntimeError('ua near')

    # ---- expectations
    def expect(self, field, value, cli, cport, srv, sport, proto, indicator):
        key = (field, value, cli.ip, cport, srv.ip, sport)
        if key not in self.expected:
            self.expected[key] = dict(field=field, value=value, src_ip=cli.ip, src_port=cport,
                                      dest_ip=srv.ip, dest_port=sport, proto=proto,
                                      indicator=indicator)

    def add(self, s):
        key = (s['cli'].ip, s['cport'], s['srv'].ip, s['sport'], 'udp' if s['kind'] in ('dns', 'ntp', 'udp') else 'tcp')
        assert key not in self.flow_keys, key
        self.flow_keys.add(key)
        self.sessions.append(s)

    def check_values(self, s):
        """Adds to expected every list match of the values this session puts on the wire."""
        T = self.truth
        k = s['kind']
        # Every flow's server address is checked once, whatever its protocol (issue 14).
        m = T.ip(s['srv'].ip)
        if m:
            self.expect('ip.dst', s['srv'].ip, s['cli'], s['cport'], s['srv'], s['sport'],
                        'UDP' if k in ('dns', 'ntp', 'udp') else 'TCP', m)
        if k == 'dns':
            for q in s['queries']:
                m = T.domain(q['name'])
                if m:
                    self.expect('dns.query', q['name'], s['cli'], s['cport'], s['srv'], 53, 'UDP', m)
                for tg in q['chain']:
                    assert not T.domain(tg), tg
        elif k in ('tls', 'bulk_tls'):
            if s['sni'] is not None:
                m = T.domain(s['sni'])
                if m:
                    self.expect('tls.sni', s['sni'], s['cli'], s['cport'], s['srv'], s['sport'], 'TCP', m)
        elif k in ('http', 'bulk_http'):
            host = s['host_hdr'].rsplit(':', 1)[0] if ':' in s['host_hdr'] and not s['host_hdr'].startswith('[') else s['host_hdr']
            m = T.domain(host)
            if m:
                self.expect('http.host', host, s['cli'], s['cport'], s['srv'], s['sport'], 'TCP', m)
            if s['ua'] is not None:
                m = T.ua(s['ua'])
                if m:
                    self.expect('http.user_agent', s['ua'], s['cli'], s['cport'], s['srv'], s['sport'], 'TCP', m)

    # ---- session builders
    def dns_for(self, rng, t, name, cli6, v4, v6, rcode=0):
        """A DNS lookup flow (A, maybe AAAA/HTTPS from the same socket)."""
        v6t = cli6 and rng.random() < 0.7
        cli = self.client(v6t) if not hasattr(self, '_cli_hint') else self._cli_hint
        srv = self.res6 if cli.v6 else self.res4
        reg = '.'.join(name.lower().split('.')[-2:]) if not name.lower().endswith('.co.uk') else '.'.join(name.lower().split('.')[-3:])
        chain = []
        if rcode == 0 and rng.random() < 0.35:
            chain = [f"{name.split('.')[0].lower()}-{rng.randrange(1000)}.{rng.choice(self.L['cdn'])}"]
            if rng.random() < 0.3:
                chain.append(f"e{rng.randrange(10000)}.a.{rng.choice(self.L['cdn'])}")
        edns = rng.random() < 0.8
        qs = []
        r = rng.random()
        types = [1] if r < 0.55 else ([1, 28] if r < 0.93 else [1, 28, 65])
        for qt in types:
            addrs = []
            if rcode == 0:
                if qt == 1:
                    addrs = [ipaddress.ip_address(v4).packed] + [ipaddress.ip_address(self.pub4(rng)).packed for _ in range(rng.choice((0, 0, 1, 3)))]
                elif qt == 28 and v6:
                    addrs = [ipaddress.ip_address(v6).packed]
                elif qt == 65 and rng.random() < 0.5:
                    addrs = [b'x']
            qs.append(dict(name=name, qtype=qt, edns=edns, chain=chain if (qt != 65) else [],
                           addrs=addrs, rcode=rcode, zone=reg))
        s = dict(kind='dns', t=t, cli=cli, srv=srv, cport=self.port(cli), sport=53, queries=qs)
        return s

    def tls_session(self, rng, t, name, cli_v6=None, dst=None, profile=None, bulk=None, sni_none=False):
        v4, v6 = self.addrs_for(name.lower()) if name else (self.pub4(rng), None)
        if dst:
            d = ipaddress.ip_address(dst)
            if d.version == 6:
                v6 = dst
                use6 = True
            else:
                v4 = dst
                use6 = False
        else:
            if cli_v6 and v6 is None:
                v6 = self.pub6(rng)
            use6 = (cli_v6 if cli_v6 is not None else rng.random() < P_V6_SHORT) and v6 is not None
        cli = self.client(use6)
        srv = Host(v6 if use6 else v4, GW_MAC)
        prof = profile or rng.choices(['chrome', 'chrome_pq', 'firefox', 'curl', 'python', 'legacy'],
                                      [25, 30, 18, 10, 9, 8])[0]
        s = dict(kind='bulk_tls' if bulk else 'tls', t=t, cli=cli, srv=srv, cport=self.port(cli),
                 sport=443, rtt=rtt_of(rng), profile=prof, sni=None if sni_none else name,
                 tls13=(prof != 'legacy' and rng.random() < 0.88))
        if bulk:
            s.update(bulk)
        else:
            s['resp'] = [self.resp_size(rng) for _ in range(3)]
        return s, v4, v6

    def resp_size(self, rng):
        r = rng.random()
        if r < 0.55:
            return rng.randint(300, 4000)
        if r < 0.90:
            return rng.randint(4000, 20000)
        return rng.randint(20000, 60000)

    def http_session(self, rng, t, host, ua, browser, dst=None, port=80, host_hdr=None, bulk=None, v6pref=None):
        v4, v6 = self.addrs_for(host.lower())
        if dst:
            d = ipaddress.ip_address(dst)
            use6 = d.version == 6
            if use6:
                v6 = dst
            else:
                v4 = dst
        else:
            if v6pref and v6 is None:
                v6 = self.pub6(rng)
            use6 = (v6pref if v6pref is not None else rng.random() < P_V6_SHORT) and v6 is not None
        cli = self.client(use6)
        srv = Host(v6 if use6 else v4, GW_MAC)
        reqs = []
        n = 1 if bulk else rng.choice((1, 1, 1, 2, 3))
        for i in range(n):
            method = 'POST' if rng.random() < 0.15 else 'GET'
            if bulk:
                path = f"/files/{mkword(rng)}-{rng.randrange(100)}.bin"
            elif method == 'POST':
                path = rng.choice(['/api/v1/events', '/collect', '/upload', '/login'])
            else:
                path = rng.choice(['/', '/index.html', f'/{mkword(rng)}', f'/api/v2/{mkword(rng)}?id={rng.randrange(10**6)}', f'/static/{mkword(rng)}.js'])
            ctype = rng.choice(['text/html; charset=utf-8', 'application/json', 'application/octet-stream'])
            reqs.append((method, path, self.resp_size(rng) // 2, ctype))
        s = dict(kind='bulk_http' if bulk else 'http', t=t, cli=cli, srv=srv, cport=self.port(cli),
                 sport=port, rtt=rtt_of(rng), host_hdr=host_hdr or host, ua=ua, browser=browser,
                 reqs=reqs)
        if bulk:
            s.update(bulk)
        return s, v4, v6

    def with_dns(self, rng, s, name, v4, v6, p=P_DNS_BEFORE):
        """Schedules the session's DNS lookup just before it (same client)."""
        self.add(s)
        self.check_values(s)
        if name and rng.random() < p:
            self._cli_hint = s['cli'] if rng.random() < 0.5 else self.client(s['cli'].v6)
            d = self.dns_for(rng, max(0, s['t'] - rng.randint(2000, 60000)), name, s['cli'].v6,
                             s['srv'].ip if not s['srv'].v6 else v4,
                             s['srv'].ip if s['srv'].v6 else v6)
            del self._cli_hint
            self.add(d)
            self.check_values(d)

    def plan(self, rings):
        rng = self.rng
        sc = self.scale
        D = self.dur
        L = self.L
        cnt = {k: max(1, round(v * sc)) for k, v in BASE.items() if k != 'duration'}
        cnt['bulk'] = max(3, round(BASE['bulk'] * sc))

        # --- bulk downloads: sizes scaled so bulk frame bytes ~ BULK_SHARE * total
        sizes = [math.exp(rng.uniform(math.log(200e3), math.log(12e6))) for _ in range(cnt['bulk'])]
        target_payload = BULK_SHARE * TARGET_BYTES * sc / 1.0695
        f = target_payload / sum(sizes)
        sizes = [max(60000, int(x * f)) for x in sizes]
        tot = sum(sizes)
        order = list(range(len(sizes)))
        rng.shuffle(order)
        v6set, tlsset = set(), set()
        acc6 = acc_tls = 0
        for i in order:  # greedy, never above the target share
            if acc_tls + sizes[i] <= BULK_TLS_BYTES * tot:
                tlsset.add(i)
                acc_tls += sizes[i]
        rng.shuffle(order)
        for i in order:
            if acc6 + sizes[i] <= BULK_V6_BYTES * tot:
                v6set.add(i)
                acc6 += sizes[i]
        for i, size in enumerate(sizes):
            t = rng.randrange(0, int(D * 0.9))
            rate = math.exp(rng.uniform(math.log(8e6), math.log(250e6)))
            r = rng.random()
            if r < 0.02:
                name = self.match_name(rng)
            else:
                name = f"{rng.choice(['dl', 'download', 'cdn', 'video', 'updates', 'objects', 'media'])}.{rng.choice(L['benign'])}"
            dst = self.cidr_addr(rng, 'inside', v6=(i in v6set)) if rng.random() < 0.02 else None
            if i in tlsset:
                ring = rng.randrange(3)
                s, v4, v6 = self.tls_session(rng, t, name, cli_v6=i in v6set, dst=dst,
                                             profile=rng.choice(['chrome', 'chrome_pq', 'firefox', 'firefox', 'curl']),
                                             bulk=dict(ring=ring, rate=rate))
                s['len'] = rings['tls'][s['cli'].v6][ring].snap(size)
                s['tls13'] = True
            else:
                ua = rng.choice(BROWSER_UAS + TOOL_UAS[:3]) if rng.random() > 0.03 else self.ua_match(rng)
                s, v4, v6 = self.http_session(rng, t, name, ua, False, dst=dst,
                                              bulk=dict(len=size, ring=rng.randrange(len(rings['http'][0])), rate=rate),
                                              v6pref=i in v6set)
            self.with_dns(rng, s, name, v4, v6, p=0.5)

        # --- short TLS
        for _ in range(cnt['tls']):
            t = rng.randrange(0, D)
            r = rng.random()
            dst = self.cidr_addr(rng, 'inside') if r < 0.012 else (self.cidr_addr(rng, rng.choice(['below', 'above'])) if r < 0.016 else None)
            name = self.pick_name(rng, 0.02, 0.02)
            s, v4, v6 = self.tls_session(rng, t, name, dst=dst, sni_none=rng.random() < 0.004)
            self.with_dns(rng, s, name, v4, v6)
        # --- short HTTP
        for _ in range(cnt['http']):
            t = rng.randrange(0, D)
            r = rng.random()
            dst = self.cidr_addr(rng, 'inside') if r < 0.015 else None
            name = self.pick_name(rng, 0.03, 0.03)
            r = rng.random()
            if r < 0.03:
                ua, browser = self.ua_match(rng), False
            elif r < 0.05:
                ua, browser = self.ua_near(rng), False
            elif r < 0.7:
                ua, browser = rng.choice(BROWSER_UAS), True
            elif r < 0.99:
                ua, browser = rng.choice(TOOL_UAS), False
            else:
                ua, browser = None, False
            port = 8080 if rng.random() < 0.04 else 80
            hh = f"{name}:{port}" if port != 80 and rng.random() < 0.7 else name
            s, v4, v6 = self.http_session(rng, t, name, ua, browser, dst=dst, port=port, host_hdr=hh)
            self.with_dns(rng, s, name, v4, v6)
        # --- standalone DNS
        for _ in range(cnt['dns_solo']):
            t = rng.randrange(0, D)
            name = self.pick_name(rng, 0.03, 0.02)
            if rng.random() < 0.08:
                name = f"{mkword(rng)}.{rng.choice(L['benign'])}"
                rc = 3
            else:
                rc = 0
            v4, v6 = self.addrs_for(name.lower())
            s = self.dns_for(rng, t, name, rng.random() < P_V6_SHORT, v4, v6, rcode=rc)
            self.add(s)
            self.check_values(s)
        # --- NTP and UDP noise
        ntp4 = ['216.239.35.0', '162.159.200.1', '129.6.15.28', '94.130.49.186', '51.178.79.86']
        for _ in range(cnt['ntp']):
            v6 = rng.random() < 0.1
            cli = self.client(v6)
            srv = Host(self.pub6(rng) if v6 else rng.choice(ntp4), GW_MAC)
            s = dict(kind='ntp', t=rng.randrange(0, D), cli=cli, srv=srv, cport=self.port(cli), n=rng.choice((1, 1, 2)))
            s['sport'] = 123
            self.add(s)
            self.check_values(s)
        for _ in range(cnt['udp']):
            v6 = rng.random() < P_V6_SHORT
            cli = self.client(v6)
            srv = Host(self.pub6(rng) if v6 else self.pub4(rng), GW_MAC)
            s = dict(kind='udp', t=rng.randrange(0, D), cli=cli, srv=srv, cport=self.port(cli),
                     sport=51820, n=rng.randint(2, 16))
            self.add(s)
            self.check_values(s)
        self.battery(rng)

    def battery(self, rng):
        """Fixed edge cases, whatever the scale."""
        D = self.dur
        L = self.L
        kinds = ['self', 'www', 'sub', 'deep', 'case']
        nk = ['glue', 'extend', 'tld', 'parent', 'hyphen', 'longtld']
        for i in range(10):
            for k in kinds:
                for fld in ('dns', 'tls', 'http'):
                    name = self.match_name(rng, k)
                    self._bat(rng, fld, name)
            for k in nk:
                for fld in ('dns', 'tls', 'http'):
                    self._bat(rng, fld, self.near_name(rng, k))
        for p in L['uas']:
            name = self.benign_name(rng)
            s, v4, v6 = self.http_session(rng, rng.randrange(0, D), name, self.ua_match(rng, p), False)
            self.with_dns(rng, s, name, v4, v6, p=0)
        for _ in range(40):
            name = self.benign_name(rng)
            s, v4, v6 = self.http_session(rng, rng.randrange(0, D), name, self.ua_near(rng), False)
            self.with_dns(rng, s, name, v4, v6, p=0)
        for where in ('inside', 'first', 'last', 'below', 'above'):
            for v6 in (False, True):
                for j in range(6):
                    dst = self.cidr_addr(rng, where, v6=v6)
                    name = self.benign_name(rng)
                    if j % 2:
                        s, v4, v6a = self.tls_session(rng, rng.randrange(0, D), name, dst=dst)
                    else:
                        s, v4, v6a = self.http_session(rng, rng.randrange(0, D), name, rng.choice(BROWSER_UAS), True, dst=dst)
                    self.with_dns(rng, s, name, v4, v6a, p=0)
        for doc in ('192.0.2.77', '198.51.100.200', '203.0.113.5', '2001:db8:1::10'):
            name = self.benign_name(rng)
            s, v4, v6a = self.tls_session(rng, rng.randrange(0, D), name, dst=doc)
            self.with_dns(rng, s, name, v4, v6a, p=0)

    def _bat(self, rng, fld, name):
        t = rng.randrange(0, self.dur)
        if fld == 'dns':
            v4, v6 = self.addrs_for(name.lower())
            s = self.dns_for(rng, t, name, rng.random() < 0.3, v4, v6)
            self.add(s)
            self.check_values(s)
        elif fld == 'tls':
            s, v4, v6 = self.tls_session(rng, t, name)
            self.with_dns(rng, s, name, v4, v6, p=0)
        else:
            s, v4, v6 = self.http_session(rng, t, name, rng.choice(BROWSER_UAS), True)
            self.with_dns(rng, s, name, v4, v6, p=0)


# --------------------------------------------------------------------------------------------
# main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', required=True)
    ap.add_argument('--scale', type=float, default=1.0)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--lists-dir', required=True)
    ap.add_argument('--quiet', action='store_true', help='no summary on stdout')
    a = ap.parse_args()
    t_start = time.monotonic()

    pl = Planner(a.seed, a.scale)
    rr = random.Random(a.seed * 7919 + 17)
    rings = {'tls': ([Ring(rr, 1448, 2048, True) for _ in range(3)],
                     [Ring(rr, 1428, 2048, True) for _ in range(3)]),
             'http': ([Ring(rr, 1448, 1024, False) for _ in range(2)],
                      [Ring(rr, 1428, 1024, False) for _ in range(2)])}
    pl.plan(rings)
    write_lists(a.lists_dir, pl.L)
    ir = random.Random(a.seed * 31 + 5)
    ctx = {'inter': cert_der(ir, 'Bench CA R3', 'Bench Root X1', None)}

    sessions = sorted(pl.sessions, key=lambda s: s['t'])
    for i, s in enumerate(sessions):
        s['idx'] = i
    # per-kind counters
    stats = {}
    pkts = bytes_ = v6pkts = tlsbytes = bulkbytes = 0
    out = open(a.out, 'wb', buffering=1 << 24)
    out.write(pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
    heap = []
    i = 0
    n = len(sessions)
    last_t = 0
    clamped = 0  # packets a flow produced out of time order (must stay 0)
    seed = a.seed
    while heap or i < n:
        if i < n and (not heap or sessions[i]['t'] <= heap[0][0]):
            s = sessions[i]
            k = s['kind']
            if k == 'bulk_tls':
                s['_ctx'] = dict(ctx, tls_rings=rings['tls'][s['cli'].v6])
            elif k == 'bulk_http':
                s['_ctx'] = dict(ctx, http_rings=rings['http'][s['cli'].v6])
            else:
                s['_ctx'] = ctx
            frng = random.Random(seed * 1000003 + s['idx'])
            g = FLOWS[k](s, frng, s['_ctx'])
            first = next(g, None)
            if first is not None:
                heapq.heappush(heap, (first[0], s['idx'], first[1], g, s))
            i += 1
            continue
        t, idx, frame, g, s = heap[0]
        if t < last_t:
            t = last_t
            clamped += 1
        last_t = t
        ln = len(frame)
        sec, usec = divmod(t, 1000000)
        out.write(pack('<IIII', START_TS + sec, usec, ln, ln))
        out.write(frame)
        pkts += 1
        bytes_ += ln
        st = s.get('_st')
        if st is None:
            st = s['_st'] = [0, 0]
        st[0] += 1
        st[1] += ln
        nxt = next(g, None)
        if nxt is None:
            heapq.heappop(heap)
            s.pop('_ctx', None)
        else:
            heapq.heapreplace(heap, (nxt[0], idx, nxt[1], g, s))
    out.close()
    file_bytes = os.path.getsize(a.out)
    flows = len(sessions)
    for s in sessions:
        p, b = s.get('_st', (0, 0))
        k = s['kind']
        d = stats.setdefault(k, dict(flows=0, packets=0, bytes=0))
        d['flows'] += 1
        d['packets'] += p
        d['bytes'] += b
        if s['cli'].v6:
            v6pkts += p
        if k in ('tls', 'bulk_tls'):
            tlsbytes += b
        if k.startswith('bulk'):
            bulkbytes += b
    totals = {}
    for e in pl.expected.values():
        totals[e['field']] = totals.get(e['field'], 0) + 1
    totals['all'] = len(pl.expected)
    matches = sorted(pl.expected.values(), key=lambda e: (e['field'], e['value'], e['src_ip'], e['src_port']))
    exp = dict(
        description="Exact expected list matches on the capture: one per (field, value, flow); "
                    "flow = src/dest of the client->server direction. Domain matches are "
                    "case-insensitive (value as on the wire), user agents case-sensitive; "
                    "ip.dst once on every flow (TCP and UDP), whatever it carries.",
        seed=a.seed, scale=a.scale, capture=os.path.basename(a.out),
        lists=dict(domains=len(pl.L['domains']), useragents=len(pl.L['uas']),
                   useragent_regexes=len(pl.L['regexes']), cidrs=len(pl.L['cidrs'])),
        totals=totals, near_misses_generated=dict(sorted(pl.nearmiss.items())), matches=matches)
    with open(os.path.join(a.lists_dir, 'expected.json'), 'w') as f:
        json.dump(exp, f, indent=1)
    summary = dict(
        capture=os.path.basename(a.out), seed=a.seed, scale=a.scale, file_bytes=file_bytes,
        packets=pkts, frame_bytes=bytes_, flows=flows,
        duration_s=round(last_t / 1e6, 3),
        tls_byte_share=round(tlsbytes / bytes_, 4),
        bulk_byte_share=round(bulkbytes / bytes_, 4),
        bulk_flows=sum(v['flows'] for k, v in stats.items() if k.startswith('bulk')),
        ipv6_packet_share=round(v6pkts / pkts, 4),
        by_kind=dict(sorted(stats.items())),
        expected_matches=totals,
        definitions=dict(
            tls_byte_share="frame bytes of TCP flows to port 443 (all carry TLS) / all frame bytes",
            bulk_byte_share="frame bytes of the bulk download flows / all frame bytes",
            ipv6_packet_share="IPv6 packets / all packets",
            flows="distinct 5-tuples (TCP connections, UDP client sockets)"))
    with open(os.path.join(a.lists_dir, 'mix-summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    el = time.monotonic() - t_start
    if clamped:
        print(f"WARNING: {clamped} packets were out of time order (clamped)", file=sys.stderr)
    if a.quiet:
        return
    print(f"wrote {a.out}: {file_bytes / 1e9:.3f} GB, {pkts:,} packets, {flows:,} flows, "
          f"{summary['duration_s']:.1f} s of traffic")
    print(f"  TLS (tcp/443) byte share {summary['tls_byte_share']:.1%}, bulk byte share "
          f"{summary['bulk_byte_share']:.1%} in {summary['bulk_flows']} flows, IPv6 packet share "
          f"{summary['ipv6_packet_share']:.1%}")
    print("  by kind: " + ", ".join(f"{k} {v['flows']}f/{v['packets']}p/{v['bytes'] / 1e6:.1f}MB" for k, v in sorted(stats.items())))
    print(f"  expected matches: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    print(f"  lists, expected.json, mix-summary.json in {a.lists_dir}; generated in {el:.1f} s")


if __name__ == '__main__':
    main()
