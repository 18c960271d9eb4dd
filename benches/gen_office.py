#!/usr/bin/env python3
"""Deterministic office-day capture generator for the cloudtap alert-quality benchmark (issue 11).

    python3 benches/gen_office.py --out DIR [--days 1|2] [--hosts 150] [--seed 1]

Writes DIR/day1.pcap (and DIR/day2.pcap with --days 2) and DIR/scenarios.json.  Standard library
only (Python 3.11+); packet builders (TCP/UDP/IP with valid checksums, TLS ClientHellos of real
browser and library profiles, DNS messages, HTTP heads) come from benches/gen_mix.py.

The office (Europe/Berlin, UTC+1 in December): day 1 is Tue 2026-12-01 00:00 UTC, day 2 Wed.
  - workstations 10.20.x.y (80 % of --hosts), present about 07:30-18:30 local with a lunch dip:
    browsing the public top-500 list (tests/data/top-sites-500.txt, Zipf by rank) plus a long
    tail of unlisted sites, each page with its own static host and ad/CDN/analytics third
    parties (doubleclick, googlesyndication, gstatic, fbcdn, akamaihd, cloudfront, ...); DNS to
    the resolver 10.20.0.53 before each name (5-minute host cache); TLS with the host's browser
    ClientHello (Chrome, Chrome with ML-KEM, Firefox); Microsoft 365 (Outlook, Teams, SharePoint,
    OneDrive, sign-in), Google Workspace for part of the staff, one team (10 hosts) on Dropbox,
    Zoom, the company Jira; ~15 developers on GitHub (git = libcurl/OpenSSL ClientHello), PyPI
    (pip = Python ClientHello; plus cleartext requests with pip's UA), npm; Windows Update / Delivery
    Optimization, CryptoAPI, NCSI and telemetry; a few plain-HTTP pages with browser UAs;
  - 5 CI servers 10.99.9.11-15, day and night: every 10 minutes a pipeline (git fetch from GitHub,
    pip downloads now and then, a 2-8 MB upload to ci-artifacts-<n>.s3.amazonaws.com with the
    botocore/Python ClientHello; a cleartext aws-cli request every few hours);
  - 1 monitoring host 10.99.8.10: every minute curl/7.88.1 to http://status.corp.local (10.20.0.80)
    and python-requests to http://api.corp.local:8080 (10.20.0.81), each after a DNS lookup;
  - the remaining hosts are servers 10.99.7.x (Debian apt, Windows Update, telemetry).
Planted scenarios (both days, other hosts and times on day 2; scenarios.json says host, UTC
start/end, names, addresses and the detections expected from the design note): script-paste,
tunnel-night, filedrop-upload-script, bot-api, console-burst, odd-hours-upload,
script-to-provider-ip, and on day 2 only workstation-new-storage (only visible with a baseline).

Capture size: payload bytes are real only where a parser needs them (DNS, ClientHello, HTTP
request and response heads); bulk data goes in large (GRO-sized, up to 64000 bytes) TCP
segments of zero padding written as snaplen-truncated records (caplen <= 128, orig_len the full
frame), as a snaplen-limited capture of a host with receive offload shows them.  Volumes
(orig_len, IP total length, TCP sequence numbers) stay realistic; checksums are valid for the
full (zero-padded) segments.  Determinism: all randomness from random.Random derived from --seed;
same seed, hosts and day => identical bytes.
"""
import argparse
import datetime
import hashlib
import heapq
import ipaddress
import json
import math
import multiprocessing
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_mix as gm  # noqa: E402  (packet builders; importing runs nothing)
from gen_mix import (ACK, FIN, PSH, SYN, GW_MAC, Host, Tcp, Udp, client_hello, csum_le,  # noqa: E402
                     dns_query, dns_response, fold, mkword, sw)

pack = struct.pack
DAY0 = 1796083200          # 2026-12-01T00:00:00Z, a Tuesday
LOCAL_OFF = 3600           # Europe/Berlin in December (CET, UTC+1)
H = 3600 * 1_000_000       # one hour in microseconds
MIN = 60 * 1_000_000
SEC = 1_000_000
KEEP = 62                  # payload bytes kept in truncated records (frame caplen 128)
ZEROS = bytes(KEEP)
CHUNK = 64000              # largest (offloaded) segment payload
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ORG = "examplecorp"

RESOLVER = '10.20.0.53'
STATUS_IP, API_IP = '10.20.0.80', '10.20.0.81'

# --------------------------------------------------------------------------------------------
# user agents

UA_CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
UA_EDGE = UA_CHROME + " Edg/131.0.2903.70"
UA_FF = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
UA_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
UA_PIP = ('pip/23.3.1 {"ci":null,"cpu":"x86_64","distro":{"id":"bookworm","libc":{"lib":"glibc",'
          '"version":"2.36"},"name":"Debian GNU/Linux","version":"12"},"implementation":{"name":"CPython",'
          '"version":"3.11.2"},"installer":{"name":"pip","version":"23.3.1"},"openssl_version":'
          '"OpenSSL 3.0.15 3 Sep 2024","python":"3.11.2","rustc_version":"1.63.0","setuptools_version":'
          '"66.1.1","system":{"name":"Linux","release":"6.1.0-28-amd64"}}')
UA_NPM = "npm/10.8.2 node/v20.18.1 linux x64 workspaces/false"
UA_DO = "Microsoft-Delivery-Optimization/10.0"
UA_CRYPTOAPI = "Microsoft-CryptoAPI/10.0"
UA_NCSI = "Microsoft NCSI"
UA_APT = "Debian APT-HTTP/1.3 (2.6.1)"
UA_AWSCLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-28-amd64 exe/x86_64.debian.12 prompt/off command/s3.cp"
UA_CURL = "curl/7.88.1"
UA_PYREQ = "python-requests/2.31.0"

# --------------------------------------------------------------------------------------------
# names and third parties

AD_CDN = [  # (name, weight); '{h}' = a per-site hash word
    ("securepubads.g.doubleclick.net", 8), ("stats.g.doubleclick.net", 6), ("ad.doubleclick.net", 4),
    ("googleads.g.doubleclick.net", 5), ("pagead2.googlesyndication.com", 7),
    ("tpc.googlesyndication.com", 4), ("fonts.gstatic.com", 10), ("www.gstatic.com", 8),
    ("fonts.googleapis.com", 10), ("ajax.googleapis.com", 4), ("www.googletagmanager.com", 12),
    ("www.google-analytics.com", 9), ("static.xx.fbcdn.net", 4), ("scontent-fra5-1.xx.fbcdn.net", 3),
    ("connect.facebook.net", 6), ("c.amazon-adsystem.com", 3), ("aax.amazon-adsystem.com", 2),
    ("d{h}.cloudfront.net", 8), ("{w}-a.akamaihd.net", 3), ("{w}.akamaized.net", 2),
    ("cdn.jsdelivr.net", 5), ("cdnjs.cloudflare.com", 6), ("static.cloudflareinsights.com", 4),
    ("bat.bing.com", 3), ("platform.twitter.com", 2), ("abs.twimg.com", 2), ("pbs.twimg.com", 1),
    ("t.co", 1), ("s.yimg.com", 2), ("cdn.shopify.com", 2), ("js.hs-scripts.com", 2),
    ("cdn.cookielaw.org", 5), ("geolocation.onetrust.com", 3), ("static.hotjar.com", 3),
    ("script.hotjar.com", 2), ("cdn.segment.com", 2), ("widget.intercom.io", 1), ("js.stripe.com", 2),
    ("player.vimeo.com", 1), ("i.ytimg.com", 3), ("www.youtube.com", 2), ("ib.adnxs.com", 3),
    ("pixel.rubiconproject.com", 2), ("ads.pubmatic.com", 2), ("sb.scorecardresearch.com", 3),
    ("cdn.optimizely.com", 1), ("assets.adobedtm.com", 2), ("dpm.demdex.net", 2),
    ("use.typekit.net", 2), ("p.typekit.net", 1), ("unpkg.com", 1), ("maps.googleapis.com", 2),
    ("www.recaptcha.net", 1), ("cdn.ampproject.org", 1), ("s0.wp.com", 1), ("i0.wp.com", 2),
]
SECOND_LEVEL = {"co.uk", "com.br", "co.jp", "com.au", "gov.uk", "ac.uk", "co.in", "com.cn", "ne.jp",
                "or.jp", "com.tw", "co.kr", "com.mx", "gov.br", "org.uk", "gc.ca", "go.jp", "com.tr",
                "ac.jp", "nic.in", "gov.in"}

CONSOLES = ["signin.aws.amazon.com", "portal.azure.com", "console.cloud.google.com",
            "dashboard.heroku.com", "app.netlify.com", "dashboard.ngrok.com"]


def regdom(name):
    labels = name.lower().rstrip('.').split('.')
    if len(labels) >= 3 and '.'.join(labels[-2:]) in SECOND_LEVEL:
        return '.'.join(labels[-3:])
    return '.'.join(labels[-2:])


def hword(s, n=8):
    return hashlib.sha256(s.encode()).hexdigest()[:n]


def hint(s):
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], 'big')


# --------------------------------------------------------------------------------------------
# server addresses: deterministic per name, inside realistic public ranges

POOLS = {
    'cloudflare': ["104.16.0.0/13", "172.64.0.0/13", "188.114.96.0/20"],
    'cloudfront': ["13.32.0.0/15", "18.160.0.0/15", "108.138.0.0/15", "3.160.0.0/14"],
    'akamai': ["23.32.0.0/11", "184.24.0.0/13", "2.16.0.0/13", "95.100.0.0/15"],
    'fastly': ["151.101.0.0/16", "146.75.0.0/17", "199.232.0.0/16"],
    'google': ["142.250.0.0/15", "172.217.0.0/16", "216.58.192.0/19", "209.85.128.0/17"],
    'gcp': ["34.64.0.0/10", "35.190.0.0/17"],
    'microsoft': ["13.107.0.0/16"],                          # Microsoft 365 front doors, NCSI
    'ms-login': ["20.190.128.0/18", "40.126.0.0/18"],        # login.microsoftonline.com
    'ms-exchange': ["52.96.0.0/14"],                         # outlook.office365.com
    'ms-telemetry': ["20.42.64.0/18", "13.69.0.0/16"],       # *.data.microsoft.com, update services
    'ms-bing': ["204.79.197.0/24"],
    'meta': ["157.240.0.0/16", "31.13.64.0/18"],
    'edgecast': ["192.229.128.0/17", "152.195.0.0/16"],
    'github': ["140.82.112.0/20"],
    'githubusercontent': ["185.199.108.0/22"],
    'dropbox': ["162.125.0.0/16"],
    'telegram': ["149.154.160.0/20"],
    'aws-ec2': ["3.64.0.0/12", "18.192.0.0/11", "52.57.0.0/16"],
    'hosting': ["5.9.0.0/16", "88.198.0.0/16", "144.76.0.0/16", "51.15.0.0/16", "212.227.0.0/16",
                "217.160.0.0/16", "81.169.128.0/17", "185.230.60.0/22", "192.0.78.0/24",
                "198.185.159.0/24", "93.184.215.0/24", "185.60.216.0/22", "77.88.55.0/24",
                "87.250.250.0/24", "213.180.204.0/22", "46.4.0.0/16", "194.150.168.0/22",
                "199.59.148.0/22", "66.220.144.0/20", "203.208.32.0/19", "45.60.0.0/16",
                "192.229.128.0/17", "64.233.160.0/19"],
}
OVERRIDES = [  # registered domain (or full-name suffix) -> pool
    (("google.com", "youtube.com", "gstatic.com", "googleapis.com", "googlesyndication.com",
      "doubleclick.net", "googletagmanager.com", "google-analytics.com", "blogger.com",
      "googleusercontent.com", "ytimg.com", "youtu.be", "ggpht.com", "recaptcha.net",
      "googlevideo.com", "google.de", "ampproject.org", "blogspot.com"), 'google'),
    (("microsoft.com", "office.com", "sharepoint.com", "live.com", "windows.net", "skype.com",
      "msftconnecttest.com", "azure.com", "office.net", "microsoft365.com", "linkedin.com",
      "licdn.com", "azureedge.net", "msedge.net"), 'microsoft'),
    (("microsoftonline.com", "login.live.com"), 'ms-login'),
    (("office365.com",), 'ms-exchange'),
    (("data.microsoft.com", "update.microsoft.com"), 'ms-telemetry'),
    (("bing.com", "msn.com"), 'ms-bing'),
    # Windows Update / Delivery Optimization content and CRLs come from CDNs (Akamai here)
    (("windowsupdate.com", "delivery.mp.microsoft.com"), 'akamai'),
    (("digicert.com",), 'edgecast'),
    (("facebook.com", "fbcdn.net", "instagram.com", "whatsapp.com", "whatsapp.net",
      "facebook.net"), 'meta'),
    (("akamaihd.net", "akamaized.net", "akamaiedge.net", "edgekey.net", "apple.com", "adobedtm.com"), 'akamai'),
    (("cloudfront.net", "amazon-adsystem.com", "amazon.com", "amazon.de", "primevideo.com"), 'cloudfront'),
    (("github.com",), 'github'),
    (("githubusercontent.com", "github.io"), 'githubusercontent'),
    (("pypi.org", "pythonhosted.org", "debian.org", "jsdelivr.net", "shopify.com", "reddit.com",
      "redditstatic.com", "wikipedia.org", "wikimedia.org", "vimeo.com", "twimg.com", "twitter.com",
      "x.com", "t.co"), 'fastly'),
    (("npmjs.org", "cloudflare.com", "cloudflareinsights.com", "pastebin.com", "trycloudflare.com",
      "discord.com", "unpkg.com", "cookielaw.org", "onetrust.com", "hotjar.com", "ngrok.com"), 'cloudflare'),
    (("dropbox.com", "dropboxapi.com"), 'dropbox'),
    (("telegram.org",), 'telegram'),
    (("heroku.com", "netlify.com", "aws.amazon.com", "zoom.us", "atlassian.net", "segment.com",
      "intercom.io", "stripe.com"), 'aws-ec2'),
    (("transfer.sh",), 'hosting'),
]
OVERRIDE = {}
for names, pool in OVERRIDES:
    for n in names:
        OVERRIDE[n] = pool
GENERIC = [('cloudflare', 30), ('cloudfront', 14), ('akamai', 9), ('fastly', 9), ('gcp', 7),
           ('aws-ec2', 10), ('hosting', 21)]


def _load_s3_prefixes():
    p = os.path.join(REPO, '..', 'shared', 'datasets', 'cloud-ip-ranges', 'aws', 'ip-ranges.json')
    try:
        d = json.load(open(p))
        s3 = sorted({x['ip_prefix'] for x in d['prefixes'] if x['service'] == 'S3' and x['region'] == 'us-east-1'})
        ec2 = sorted({x['ip_prefix'] for x in d['prefixes'] if x['service'] == 'EC2' and x['region'] == 'eu-central-1'
                      and int(x['ip_prefix'].split('/')[1]) <= 20})
        if s3 and ec2:
            return s3, ec2, os.path.relpath(p, REPO)
    except (OSError, ValueError, KeyError):
        pass
    # fallback: a few real us-east-1 S3 / eu-central-1 EC2 prefixes
    return (["52.216.0.0/15", "54.231.0.0/16", "3.5.0.0/19"], ["3.64.0.0/12", "18.192.0.0/11"], None)


S3_PREFIXES, EC2_PREFIXES, AWS_SOURCE = _load_s3_prefixes()
POOLS['s3'] = S3_PREFIXES
POOLS['aws-ec2'] = EC2_PREFIXES[:12] + POOLS['aws-ec2']


def addr_in(prefixes, key):
    h = hint(key)
    net = ipaddress.ip_network(prefixes[h % len(prefixes)])
    n = net.num_addresses
    off = 1 + (h >> 20) % max(1, n - 2) if n > 2 else 0
    return str(net.network_address + off)


def pool_for(name):
    n = name.lower()
    if n.endswith('.s3.amazonaws.com') or n.startswith('s3-') and n.endswith('.amazonaws.com'):
        return 's3'
    labels = n.split('.')
    for i in range(len(labels) - 1):
        p = OVERRIDE.get('.'.join(labels[i:]))
        if p:
            return p
    rd = regdom(n)
    h = hint('pool:' + rd) % sum(w for _, w in GENERIC)
    for p, w in GENERIC:
        if h < w:
            return p
        h -= w
    return 'hosting'


ADDR_CACHE = {'status.corp.local': STATUS_IP, 'api.corp.local': API_IP}


def addr_for(name):
    a = ADDR_CACHE.get(name)
    if a is None:
        pool = pool_for(name)
        # one address per registered domain for most, per full name on CDNs
        key = name if pool in ('cloudfront', 'akamai', 'google', 's3', 'cloudflare') or pool.startswith('m') else regdom(name)
        a = ADDR_CACHE[name] = addr_in(POOLS[pool], pool + ':' + key)
    return a


def cname_chain(name):
    """A CNAME chain as the resolver returns it, by provider (deterministic)."""
    if name.endswith('.corp.local'):
        return []
    pool = pool_for(name)
    h = hint('cn:' + name)
    if pool == 's3':
        return ['s3-1-w.amazonaws.com']
    if h % 3:
        return []
    w = name.split('.')[0].replace('*', 'x')
    if pool == 'akamai' and not name.endswith(('akamaihd.net', 'akamaiedge.net')):
        return [f"{name}.edgekey.net", f"e{h % 9000 + 1000}.a.akamaiedge.net"]
    if pool == 'cloudfront' and not name.endswith('cloudfront.net'):
        return [f"d{hword(name, 13)}.cloudfront.net"]
    if pool == 'fastly':
        return [f"{regdom(name).split('.')[0]}.map.fastly.net"]
    if pool in ('microsoft', 'ms-exchange') and name.endswith(('office365.com', 'sharepoint.com', 'office.com')):
        return [f"{w}.ha.office365.com" if 'outlook' in name else f"{ORG}.sharepoint.com.dual-spo-0005.spo-msedge.net"
                if 'sharepoint' in name else f"{w}.cdn.office.net"]
    if pool == 'google' and name.startswith(('docs.', 'drive.', 'mail.')):
        return []
    return []


# --------------------------------------------------------------------------------------------
# packets: a truncated large segment (zero payload after an optional real prefix)


def zseg(c, t, fromc, flags, n, prefix=b''):
    """TCP segment carrying n payload bytes (prefix, then zeros); captured up to KEEP payload
    bytes (or the whole prefix).  Returns (t, captured frame, original frame length)."""
    p = c.p
    if fromc:
        seq, ack, sport, dport, win = c.cseq, c.sseq, c.cport, c.sport, c.cwin
        tsval = ((t // 1000) + c.cto) & 0xffffffff
        tsecr = c.stv
        c.ctv = tsval
        c.cseq = (seq + n) & 0xffffffff
        eth = p.eth_c
    else:
        seq, ack, sport, dport, win = c.sseq, c.cseq, c.sport, c.cport, c.swin
        tsval = ((t // 1000) + c.sto) & 0xffffffff
        tsecr = c.ctv
        c.stv = tsval
        c.sseq = (seq + n) & 0xffffffff
        eth = p.eth_s
    hdr = pack('!HHIIBBHHHBBBBII', sport, dport, seq, ack, 32 << 2, flags, win, 0, 0, 1, 1, 8, 10, tsval, tsecr)
    tl = 32 + n
    cs = fold(p.pbase + sw(tl) + csum_le(hdr) + (csum_le(prefix) if prefix else 0))
    hdr = hdr[:16] + pack('<H', cs) + hdr[18:]
    keep = prefix if len(prefix) >= KEEP else prefix + ZEROS[:KEEP - len(prefix)]
    if len(keep) > n:
        keep = keep[:n]
    frame = b''.join((eth, p.ip(fromc, 6, tl), hdr, keep))
    return (t, frame, 14 + 20 + tl)


def send_z(c, t, fromc, n, rate, rng, prefix=b''):
    """n bytes from one side in large segments, each ACKed by the peer.  Generator; returns t."""
    first = True
    acks = 0
    while n > 0:
        k = min(n, CHUNK)
        n -= k
        yield zseg(c, t, fromc, (PSH | ACK) if n == 0 else ACK, k, prefix if first else b'')
        first = False
        dt = max(60, int(k * 8 * 1e6 / rate))
        if n == 0 or acks & 1:
            yield c.seg(t + min(dt // 2, 40000), not fromc, ACK)
        acks += 1
        t += dt
    return t


def send_real(c, t, fromc, data, rng):
    """Real payload bytes (MSS segments), ACKed."""
    mss = c.mss
    for i in range(0, len(data), mss):
        last = i + mss >= len(data)
        yield c.seg(t, fromc, (PSH | ACK) if last else ACK, data[i:i + mss])
        t += 15
    t += rng.randint(200, 2000)
    yield c.seg(t, not fromc, ACK)
    return t + 10


def tcp_open(c, t, rtt, rng):
    yield c.seg(t, True, SYN)
    t += rtt
    yield c.seg(t, False, SYN | ACK)
    t += rng.randint(20, 120)
    yield c.seg(t, True, ACK)
    return t + rng.randint(50, 400)


def tcp_close(c, t, rng, client_first=True):
    yield c.seg(t, client_first, FIN | ACK)
    t += rng.randint(200, 3000)
    yield c.seg(t, not client_first, FIN | ACK)
    t += rng.randint(30, 400)
    yield c.seg(t, client_first, ACK)


TLS_APP = b'\x17\x03\x03\x40\x11'


def flow_tls(s, rng):
    c = Tcp(rng, s['cli'], s['srv'], s['cport'], s['sport'])
    rtt = s['rtt']
    t = yield from tcp_open(c, s['t'], rtt, rng)
    ch, tls13, alpn, sid = client_hello(rng, s['profile'], s['sni'])
    t = yield from send_real(c, t, True, ch, rng)
    t += rtt + rng.randint(200, 3000)
    # server flight (ServerHello, encrypted certificate ...): one offloaded segment, truncated
    sf = rng.randint(2800, 5600)
    yield zseg(c, t, False, PSH | ACK, sf, b'\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03')
    t += rng.randint(100, 900)
    yield c.seg(t, True, ACK)
    t += rng.randint(300, 5000)
    rate = s['rate']
    for up, down, think in s['xfer']:
        t = yield from send_z(c, t, True, up, rate, rng, TLS_APP)
        t += rtt + rng.randint(500, 30000)
        t = yield from send_z(c, t, False, down, rate, rng, TLS_APP)
        t += think
    t += rng.randint(1000, 300000)
    yield from tcp_close(c, t, rng, client_first=rng.random() < 0.7)


def http_head(method, host_hdr, path, ua, browser, clen=None, ctype=None, extra=()):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_hdr}"]
    if browser:
        lines += ["Connection: keep-alive", "Upgrade-Insecure-Requests: 1", f"User-Agent: {ua}",
                  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                  "Accept-Encoding: gzip, deflate", "Accept-Language: de-DE,de;q=0.9,en;q=0.8"]
    else:
        if ua is not None:
            lines.append(f"User-Agent: {ua}")
        lines += ["Accept-Encoding: gzip, deflate", "Accept: */*", "Connection: keep-alive"]
    lines += list(extra)
    if clen is not None:
        lines += [f"Content-Type: {ctype or 'application/octet-stream'}", f"Content-Length: {clen}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def resp_head(status, ctype, clen, date):
    reason = {200: 'OK', 201: 'Created', 204: 'No Content', 206: 'Partial Content', 304: 'Not Modified'}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nDate: {date}\r\nServer: nginx\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {clen}\r\nConnection: keep-alive\r\n\r\n").encode()


def http_date(t):
    return datetime.datetime.fromtimestamp(DAY0 + t // SEC, datetime.timezone.utc).strftime('%a, %d %b %Y %H:%M:%S GMT')


def flow_http(s, rng):
    c = Tcp(rng, s['cli'], s['srv'], s['cport'], s['sport'])
    rtt = s['rtt']
    t = yield from tcp_open(c, s['t'], rtt, rng)
    rate = s['rate']
    for (method, path, ua, browser, up, down, ctype, think, extra) in s['reqs']:
        head = http_head(method, s['host_hdr'], path, ua, browser, up if up else None, None, extra)
        t = yield from send_real(c, t, True, head, rng)
        if up:
            t = yield from send_z(c, t + 20, True, up, rate, rng)
        t += rtt + rng.randint(300, 20000)
        rh = resp_head(200 if method != 'PUT' else 201, ctype, down, http_date(t))
        t = yield from send_real(c, t, False, rh, rng)
        if down:
            t = yield from send_z(c, t + 20, False, down, rate, rng)
        t += think
    t += rng.randint(1000, 200000)
    yield from tcp_close(c, t, rng, client_first=rng.random() < 0.6)


def flow_dns(s, rng):
    u = Udp(rng, s['cli'], s['srv'], s['cport'], 53)
    t = s['t']
    name = s['name']
    qid = rng.getrandbits(16)
    yield u.dgram(t, True, dns_query(qid, name, 1, True))
    addrs = [ipaddress.ip_address(a).packed for a in s['addrs']]
    yield u.dgram(t + s['delay'], False, dns_response(rng, qid, name, 1, True, s['chain'], addrs,
                                                        s.get('rcode', 0), regdom(name)))


FLOWS = {'tls': flow_tls, 'http': flow_http, 'dns': flow_dns}


# --------------------------------------------------------------------------------------------
# population


def load_top_sites():
    p = os.path.join(REPO, 'tests', 'data', 'top-sites-500.txt')
    out = []
    for line in open(p):
        line = line.strip().strip('.').lower()  # one entry ends in '....' in the source list
        if line and not line.startswith('#') and line not in out:
            out.append(line)
    return out


class Node:
    """An internal host and what it does."""

    def __init__(self, ip, idx, role):
        mac = bytes([0x02, 0x1c, 0x42, (idx >> 8) & 0xff, idx & 0xff, 0x01])
        self.h = Host(ip, mac)
        self.ip = ip
        self.role = role
        self.tags = set()
        self.port = None
        self.dns_cache = {}


def build_population(seed, nhosts):
    rng = random.Random(seed)
    n_ci, n_mon = 5, 1
    n_ws = max(20, round(nhosts * 0.8))
    n_srv = max(0, nhosts - n_ws - n_ci - n_mon)
    nodes = []
    for i in range(n_ws):
        n = Node(f"10.20.{1 + i // 100}.{10 + i % 100}", len(nodes), 'workstation')
        r = rng.random()
        n.browser = 'firefox' if r < 0.22 else ('chrome' if r < 0.45 else 'chrome_pq')
        n.ua = UA_FF if n.browser == 'firefox' else rng.choice([UA_CHROME, UA_CHROME, UA_EDGE, UA_MAC])
        n.rate = math.exp(rng.uniform(math.log(8), math.log(45)))  # page visits per hour
        n.favs = []  # a few favourite sites, visited more often
        nodes.append(n)
    ws = list(nodes)
    order = list(range(n_ws))
    rng.shuffle(order)
    ndev = max(3, round(n_ws * 15 / 120))
    for i in order[:ndev]:
        ws[i].tags.add('dev')
    for i in order[ndev:ndev + 10]:
        ws[i].tags.add('dropbox')
    for i in order:
        if rng.random() < 0.4:
            ws[i].tags.add('gws')
        if 'dev' in ws[i].tags or rng.random() < 0.3:
            ws[i].tags.add('jira')
    for i in range(n_ci):
        n = Node(f"10.99.9.{11 + i}", len(nodes), 'ci')
        n.bucket = f"ci-artifacts-{i + 1}.s3.amazonaws.com"
        nodes.append(n)
    mon = Node("10.99.8.10", len(nodes), 'monitoring')
    nodes.append(mon)
    for i in range(n_srv):
        n = Node(f"10.99.7.{10 + i}", len(nodes), 'server')
        n.os = 'debian' if i % 2 == 0 else 'windows'
        nodes.append(n)
    return nodes


# --------------------------------------------------------------------------------------------
# planning one day


class Day:
    def __init__(self, seed, day, nodes, sites):
        self.seed, self.day = seed, day
        self.rng = random.Random(seed * 1000 + day)
        self.nodes = nodes
        self.T0 = (day - 1) * 24 * H
        self.sessions = []
        self.sites = sites
        n = len(sites)
        self.site_cum = list(_cumsum([1.0 / (r + 1) ** 0.95 for r in range(n)]))
        self.adnames = [a for a, _ in AD_CDN]
        self.adcum = list(_cumsum([w for _, w in AD_CDN]))
        self.srv_hosts = {}
        self.resolver = Host(RESOLVER, GW_MAC)
        for nd in nodes:
            nd.port = 32768 + (hint(f"{seed}:{day}:{nd.ip}") % 20000)
            nd.dns_cache = {}

    # ---- helpers
    def local(self, hh, mm=0, ss=0):
        """Microseconds (campaign clock) of a local wall-clock time on this day."""
        return self.T0 + ((hh * 3600 + mm * 60 + ss) - LOCAL_OFF) * SEC

    def srv(self, ip):
        h = self.srv_hosts.get(ip)
        if h is None:
            h = self.srv_hosts[ip] = Host(ip, GW_MAC)
        return h

    def port(self, nd):
        nd.port += 1 + (nd.port * 7) % 5
        if nd.port > 60999:
            nd.port = 32768 + nd.port % 1000
        return nd.port

    def dns(self, nd, t, name, force=False, rcode=0):
        """A lookup of name by nd at t (skipped if the host looked it up in the last 5 min)."""
        last = nd.dns_cache.get(name)
        if not force and last is not None and 0 <= t - last < 300 * SEC:
            return t
        nd.dns_cache[name] = t
        rng = self.rng
        addrs = [] if rcode else [addr_for(name)]
        if not rcode and rng.random() < 0.3 and not name.endswith('.corp.local'):
            addrs.append(addr_in(POOLS[pool_for(name)], f"alt:{name}"))
        s = dict(kind='dns', t=t, cli=nd.h, srv=self.resolver, cport=self.port(nd), name=name,
                 chain=[] if rcode else cname_chain(name), addrs=addrs, rcode=rcode,
                 delay=rng.randint(300, 25000))
        self.sessions.append(s)
        return t + s['delay'] + rng.randint(100, 2000)

    def tls(self, nd, t, name, profile, xfer, dns=True, ip=None, rate=None):
        rng = self.rng
        t += rng.randrange(0, 500000)  # planning works in whole seconds
        if dns and name:
            t = self.dns(nd, t, name)
        s = dict(kind='tls', t=t, cli=nd.h, srv=self.srv(ip or addr_for(name)), cport=self.port(nd),
                 sport=443, rtt=gm.rtt_of(rng), profile=profile, sni=name, xfer=xfer,
                 rate=rate or math.exp(rng.uniform(math.log(20e6), math.log(200e6))))
        self.sessions.append(s)
        return s

    def http(self, nd, t, host_hdr, reqs, dns=True, ip=None, port=80, rate=None):
        rng = self.rng
        t += rng.randrange(0, 500000)
        name = host_hdr.split(':')[0]
        if dns:
            t = self.dns(nd, t, name)
        s = dict(kind='http', t=t, cli=nd.h, srv=self.srv(ip or addr_for(name)), cport=self.port(nd),
                 sport=port, rtt=gm.rtt_of(rng), host_hdr=host_hdr, reqs=reqs,
                 rate=rate or math.exp(rng.uniform(math.log(20e6), math.log(150e6))))
        self.sessions.append(s)
        return s

    @staticmethod
    def req(method='GET', path='/', ua=None, browser=False, up=0, down=1000,
            ctype='text/html; charset=utf-8', think=0, extra=()):
        return (method, path, ua, browser, up, down, ctype, think, tuple(extra))

    def pick_site(self):
        rng = self.rng
        if rng.random() < 0.2:  # long tail: unlisted sites
            w = mkword(rng)
            return f"www.{w}.{rng.choice(['de', 'com', 'de', 'net', 'org', 'eu', 'io'])}"
        i = _bisect(self.site_cum, rng.random() * self.site_cum[-1])
        d = self.sites[i]
        if d.startswith('www.') or d.count('.') >= 2 and regdom(d) != d:
            return d
        return f"www.{d}" if hint('www:' + d) % 5 else d

    def third_parties(self, site):
        rd = regdom(site)
        h = hint('tp:' + rd)
        k = 1 + h % 6
        out = []
        if h % 7:
            out.append(f"{['static', 'cdn', 'img', 'assets', 'media'][h % 5]}.{rd}")
        r = random.Random(h)
        for _ in range(k):
            n = self.adnames[_bisect(self.adcum, r.random() * self.adcum[-1])]
            n = n.replace('{h}', hword(rd, 13)).replace('{w}', rd.split('.')[0][:20])
            if n not in out:
                out.append(n)
        return out

    # ---- workstation day
    def workstation(self, nd):
        rng = self.rng
        if rng.random() < 0.04:  # absent today
            return
        arrive = self.local(7, 30) + int(rng.triangular(0, 2 * H, 0.6 * H))
        leave = self.local(16, 30) + int(rng.triangular(0, 2 * H, 1.2 * H))
        lunch0 = self.local(12, 0) + int(rng.uniform(-0.25, 0.75) * H)
        lunch1 = lunch0 + int(rng.uniform(0.5, 1.0) * H)
        prof = nd.browser
        # arrival: NCSI check, sign-in, Outlook/Teams start
        self.http(nd, arrive, 'www.msftconnecttest.com', [self.req(path='/connecttest.txt', ua=UA_NCSI, down=22, ctype='text/plain')])
        self.tls(nd, arrive + 2 * SEC, 'login.microsoftonline.com', 'chrome', [(rng.randint(2000, 6000), rng.randint(8000, 30000), 0)])
        # page visits
        t = arrive + rng.randint(60, 300) * SEC
        while t < leave:
            rate = nd.rate * (0.3 if lunch0 <= t < lunch1 else 1.0)
            t += int(rng.expovariate(rate / H))
            if t >= leave:
                break
            self.visit(nd, t, prof)
        # background applications while present
        self.periodic(nd, arrive, leave, 'outlook.office365.com', 'chrome', (300, 600), (1500, 4000), (4000, 60000))
        self.periodic(nd, arrive, leave, 'teams.microsoft.com', 'chrome_pq' if prof != 'firefox' else 'chrome', (600, 1200), (1000, 3000), (3000, 40000))
        self.periodic(nd, arrive, leave, 'login.microsoftonline.com', 'chrome', (3600, 7200), (2000, 5000), (8000, 20000))
        self.periodic(nd, arrive, leave, 'v10.events.data.microsoft.com', 'legacy', (900, 1800), (3000, 20000), (500, 1500))
        if hint(nd.ip + 'spo') % 10 < 6:
            self.periodic(nd, arrive, leave, f"{ORG}.sharepoint.com", prof, (900, 3600), (2000, 400000), (20000, 900000))
            self.periodic(nd, arrive, leave, f"{ORG}-my.sharepoint.com", 'chrome', (1200, 3600), (2000, 3500000), (5000, 300000))
        if 'gws' in nd.tags:
            for nm in ('docs.google.com', 'drive.google.com', 'mail.google.com'):
                self.periodic(nd, arrive, leave, nm, prof, (900, 2700), (2000, 300000), (20000, 600000))
        if 'dropbox' in nd.tags:
            self.periodic(nd, arrive, leave, 'bolt.dropbox.com', 'chrome', (300, 700), (800, 2000), (800, 2000))
            self.periodic(nd, arrive, leave, 'client.dropbox.com', 'chrome', (900, 1800), (2000, 8000), (4000, 40000))
            self.periodic(nd, arrive, leave, 'content.dropboxapi.com', 'chrome', (1200, 3600), (100000, 3200000), (2000, 8000))
            self.periodic(nd, arrive, leave, 'www.dropbox.com', prof, (3600, 10800), (2000, 8000), (50000, 500000))
        if 'jira' in nd.tags:
            self.periodic(nd, arrive, leave, f"{ORG}.atlassian.net", prof, (1200, 3600), (2000, 20000), (30000, 400000))
        if rng.random() < 0.5:  # a meeting on Zoom
            tz = rng.randint(arrive, max(arrive + 1, leave - H))
            self.tls(nd, tz, 'zoom.us', prof, [(3000, 200000, 0)])
            self.tls(nd, tz + 5 * SEC, f"{ORG}.zoom.us", prof, [(5000, 50000, 0)])
        if 'dev' in nd.tags:
            self.developer(nd, arrive, leave)
        # Windows Update / Delivery Optimization, CryptoAPI, a few plain-HTTP pages
        for _ in range(rng.randint(1, 3)):
            tu = rng.randint(arrive, leave)
            nm = rng.choice(['7.tlu.dl.delivery.mp.microsoft.com', '8.tlu.dl.delivery.mp.microsoft.com',
                             'download.windowsupdate.com', 'au.download.windowsupdate.com'])
            path = f"/filestreamingservice/files/{hword(str(tu), 8)}-{hword(nm + str(tu), 4)}-4a1b-9c2e-{hword(str(tu) + 'x', 12)}?P1={tu // SEC}"
            self.http(nd, tu, nm, [self.req(path=path, ua=UA_DO, down=rng.randint(300000, 30000000),
                                            ctype='application/octet-stream', extra=('Range: bytes=0-',))])
        for _ in range(rng.randint(0, 3)):
            tu = rng.randint(arrive, leave)
            self.http(nd, tu, 'ctldl.windowsupdate.com', [self.req(path='/msdownload/update/v3/static/trustedr/en/authrootstl.cab', ua=UA_CRYPTOAPI, down=rng.randint(6000, 80000), ctype='application/vnd.ms-cab-compressed')])
        for _ in range(rng.randint(0, 2)):
            tu = rng.randint(arrive, leave)
            self.http(nd, tu, 'ocsp.digicert.com', [self.req(path='/MFEwTzBNMEswSTAJBgUrDgMCGgUABBT', ua=UA_CRYPTOAPI, down=1500, ctype='application/ocsp-response')])
        for _ in range(rng.randint(1, 4)):
            tu = rng.randint(arrive, leave)
            site = rng.choice(['neverssl.com', 'www.' + mkword(rng) + '.de', 'www.' + mkword(rng) + '.com'])
            self.http(nd, tu, site, [self.req(path=rng.choice(['/', '/index.html', '/de/', '/news']), ua=nd.ua, browser=True,
                                              down=rng.randint(5000, 120000))])

    def periodic(self, nd, t0, t1, name, profile, every, up, down):
        rng = self.rng
        t = t0 + rng.randint(every[0], every[1]) * SEC // 2
        while t < t1:
            self.tls(nd, t, name, profile, [(rng.randint(*up), rng.randint(*down), 0)])
            t += rng.randint(every[0], every[1]) * SEC

    def visit(self, nd, t, prof):
        rng = self.rng
        site = self.pick_site()
        big = 0
        if 'youtube' in site and rng.random() < 0.5:
            big = rng.randint(5_000_000, 60_000_000)
        down = int(math.exp(rng.uniform(math.log(30000), math.log(600000))))
        self.tls(nd, t, site, prof, [(rng.randint(900, 3500), down, 0)] +
                 ([(rng.randint(900, 2500), rng.randint(5000, 60000), rng.randint(1, 20) * SEC)] if rng.random() < 0.4 else []))
        if big:
            self.tls(nd, t + 2 * SEC, f"rr{rng.randint(1, 8)}---sn-4g5e6nsz.googlevideo.com", prof, [(20000, big, 0)])
        for j, tp in enumerate(self.third_parties(site)):
            if rng.random() < 0.85:
                self.tls(nd, t + rng.randint(80, 1500) * 1000, tp, prof,
                         [(rng.randint(500, 2500), int(math.exp(rng.uniform(math.log(2000), math.log(150000)))), 0)])

    def developer(self, nd, t0, t1):
        rng = self.rng
        # git over TLS (libcurl + OpenSSL: the curl ClientHello), GitHub in the browser
        self.periodic(nd, t0, t1, 'github.com', 'curl', (900, 3600), (1000, 60000), (5000, 2000000))
        self.periodic(nd, t0, t1, 'github.com', nd.browser, (1200, 3600), (1500, 4000), (30000, 300000))
        self.periodic(nd, t0, t1, 'api.github.com', nd.browser, (1800, 5400), (1500, 4000), (3000, 30000))
        self.periodic(nd, t0, t1, 'raw.githubusercontent.com', 'curl', (3600, 10800), (800, 1500), (2000, 60000))
        # pip (Python ClientHello over TLS; plus cleartext requests with pip's UA), npm
        for _ in range(rng.randint(0, 4)):
            tp = rng.randint(t0, t1)
            pkg = rng.choice(['requests', 'numpy', 'pandas', 'boto3', 'pytest', 'django', 'flask', 'pydantic'])
            self.tls(nd, tp, 'pypi.org', 'python', [(600, 30000, 0)])
            self.tls(nd, tp + SEC, 'files.pythonhosted.org', 'python', [(700, rng.randint(100000, 9000000), 0)])
            self.http(nd, tp + 2 * SEC, 'pypi.org', [self.req(path=f'/simple/{pkg}/', ua=UA_PIP, down=rng.randint(3000, 60000), ctype='text/html')])
            self.http(nd, tp + 3 * SEC, 'files.pythonhosted.org', [self.req(path=f'/packages/{hword(pkg, 2)}/{hword(pkg + "b", 2)}/{hword(pkg + "c", 60)}/{pkg}-2.3.1-py3-none-any.whl', ua=UA_PIP, down=rng.randint(40000, 3000000), ctype='application/octet-stream')])
        for _ in range(rng.randint(0, 3)):
            tp = rng.randint(t0, t1)
            pkg = rng.choice(['react', 'typescript', 'eslint', 'vite', 'lodash', 'express'])
            self.tls(nd, tp, 'registry.npmjs.org', 'curl', [(900, rng.randint(20000, 4000000), 0)])
            self.http(nd, tp + SEC, 'registry.npmjs.org', [self.req(path=f'/{pkg}', ua=UA_NPM, down=rng.randint(5000, 200000), ctype='application/json',
                                                                    extra=('npm-command: install', 'npm-session: ' + hword(str(tp), 16)))])

    # ---- servers
    def ci(self, nd, i):
        rng = self.rng
        t = self.T0 + rng.randint(0, 600) * SEC
        end = self.T0 + 24 * H
        k = 0
        while t < end:
            self.tls(nd, t, 'github.com', 'curl', [(rng.randint(2000, 20000), rng.randint(20000, 600000), 0)])
            if k % 6 == i % 6:
                self.tls(nd, t + 20 * SEC, 'files.pythonhosted.org', 'python', [(800, rng.randint(200000, 8000000), 0)])
            size = rng.randint(2_000_000, 8_000_000)
            tu = t + rng.randint(120, 420) * SEC
            self.tls(nd, tu, nd.bucket, 'python', [(size, rng.randint(400, 1200), 0)],
                     rate=math.exp(rng.uniform(math.log(50e6), math.log(400e6))))
            if k % 36 == (i * 7) % 36:  # now and then a cleartext aws-cli request
                self.http(nd, tu + 30 * SEC, nd.bucket, [self.req(path=f"/builds/{k:04d}/manifest.json", ua=UA_AWSCLI, down=rng.randint(500, 4000), ctype='application/json',
                                                                  extra=('X-Amz-Date: 20261201T000000Z', 'X-Amz-Content-SHA256: UNSIGNED-PAYLOAD'))])
            k += 1
            t += 600 * SEC + rng.randint(-30, 30) * SEC

    def monitoring(self, nd):
        rng = self.rng
        t = self.T0 + rng.randint(1, 50) * SEC
        end = self.T0 + 24 * H
        while t < end:
            self.dns(nd, t, 'status.corp.local', force=True)
            self.http(nd, t + 30000, 'status.corp.local', [self.req(path='/health', ua=UA_CURL, down=rng.randint(180, 400), ctype='application/json')],
                      ip=STATUS_IP, dns=False)
            self.dns(nd, t + 2 * SEC, 'api.corp.local', force=True)
            self.http(nd, t + 2 * SEC + 30000, 'api.corp.local:8080', [self.req(path='/api/v1/health?deep=1', ua=UA_PYREQ, down=rng.randint(300, 2000), ctype='application/json')],
                      ip=API_IP, port=8080, dns=False)
            t += 60 * SEC + rng.randint(-500, 500) * 1000

    def server(self, nd):
        rng = self.rng
        t = self.T0 + rng.randint(0, 4 * 3600) * SEC
        end = self.T0 + 24 * H
        while t < end:
            if nd.os == 'debian':
                for nm, path in (('deb.debian.org', '/debian/dists/bookworm/InRelease'),
                                 ('deb.debian.org', '/debian/dists/bookworm-updates/InRelease'),
                                 ('security.debian.org', '/debian-security/dists/bookworm-security/InRelease')):
                    self.http(nd, t, nm, [self.req(path=path, ua=UA_APT, down=rng.randint(50000, 160000), ctype='text/plain',
                                                   extra=('Cache-Control: max-age=0',))])
                    t += rng.randint(1, 3) * SEC
                if rng.random() < 0.3:
                    self.http(nd, t + 5 * SEC, 'deb.debian.org', [self.req(path='/debian/pool/main/o/openssl/libssl3_3.0.15-1~deb12u1_amd64.deb', ua=UA_APT, down=rng.randint(500000, 3000000), ctype='application/vnd.debian.binary-package')])
            else:
                self.tls(nd, t, 'sls.update.microsoft.com', 'legacy', [(3000, 20000, 0)])
                self.tls(nd, t + 5 * SEC, 'settings-win.data.microsoft.com', 'legacy', [(2000, 6000, 0)])
                if rng.random() < 0.3:
                    self.http(nd, t + 30 * SEC, 'download.windowsupdate.com', [self.req(path=f'/c/msdownload/update/software/secu/2026/11/windows10.0-kb50{rng.randint(10000, 99999)}-x64.cab', ua=UA_DO, down=rng.randint(1000000, 40000000), ctype='application/octet-stream')])
            t += rng.randint(4 * 3600, 7 * 3600) * SEC


def _cumsum(xs):
    s = 0
    for x in xs:
        s += x
        yield s


def _bisect(cum, x):
    lo, hi = 0, len(cum)
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, len(cum) - 1)


# --------------------------------------------------------------------------------------------
# planted scenarios

EXPECT = {
    'script-paste': (['listed-endpoint', 'script-agent-web-service'], False,
                     'python-requests fetches raw pastes over cleartext HTTP'),
    'tunnel-night': (['listed-endpoint'], False, 'a workstation reaches a quick tunnel at 03:00 local'),
    'filedrop-upload-script': (['listed-endpoint', 'upload-volume', 'script-agent-web-service'], False,
                               'curl PUTs 7 MB to an anonymous file drop'),
    'bot-api': (['listed-endpoint', 'script-agent-web-service'], False,
                'a Python script talks to the Telegram bot API (TLS with the Python ClientHello, and one cleartext request)'),
    'console-burst': (['burst'], False, 'six distinct cloud consoles / sign-ups within five minutes'),
    'odd-hours-upload': (['upload-volume', 'context-with-signal'], False,
                         'a workstation uploads 9 MB to Dropbox at 02:00 local'),
    'script-to-provider-ip': (['script-agent-web-service'], False,
                              'python-requests GETs a file from a bare AWS EC2 address (no DNS name)'),
    'workstation-new-storage': (['context-with-signal', 'first-use-org', 'unauthorised-source'], True,
                                'a workstation that never used S3 uploads 6 MB (3 x 2 MB) to a bucket in business hours: S3 was '
                                'only used by the CI servers before; with a learned day, first use by this host joins the context match'),
}


def plant(D, nodes, used):
    """Plants the day's scenarios; returns their records."""
    rng = random.Random(D.seed * 7777 + D.day)
    ws = [n for n in nodes if n.role == 'workstation' and not (n.tags & {'dev', 'dropbox'}) and n.ip not in used]
    rng.shuffle(ws)
    out = []

    def rec(kind, nd, t0, t1, names, ips, **kw):
        exp, base, desc = EXPECT[kind]
        r = dict(id=f"d{D.day}-{kind}", kind=kind, day=D.day, host=nd.ip,
                 start=iso(t0), end=iso(t1), start_local=iso(t0, local=True),
                 names=names, ips=sorted(set(ips)), expected_detections=exp, needs_baseline=base,
                 description=desc)
        r.update(kw)
        out.append(r)
        used.add(nd.ip)

    # script-paste
    nd = ws.pop()
    t = D.local(10, 17) + rng.randint(0, 600) * SEC
    t0 = t
    for k in range(3):
        D.http(nd, t, 'pastebin.com', [D.req(path=f"/raw/{_b62(rng, 8)}", ua=UA_PYREQ, down=rng.randint(2000, 6000), ctype='text/plain; charset=utf-8')])
        t += rng.randint(30, 60) * SEC
    rec('script-paste', nd, t0, t, ['pastebin.com'], [addr_for('pastebin.com')], user_agent=UA_PYREQ)
    # tunnel-night
    nd = ws.pop()
    name = '-'.join(mkword(rng, 2) for _ in range(4)) + '.trycloudflare.com'
    t = t0 = D.local(3, 0) + rng.randint(0, 300) * SEC
    for k in range(4):
        D.tls(nd, t, name, nd.browser, [(rng.randint(1000, 4000), rng.randint(5000, 200000), rng.randint(2, 30) * SEC)])
        t += rng.randint(60, 240) * SEC
    rec('tunnel-night', nd, t0, t, [name], [addr_for(name)])
    # filedrop-upload-script
    nd = ws.pop()
    t0 = D.local(14, 40) + rng.randint(0, 600) * SEC
    fn = f"{mkword(rng)}.zip"
    s = D.http(nd, t0, 'transfer.sh', [D.req(method='PUT', path=f"/{fn}", ua=UA_CURL, up=7 * 1024 * 1024, down=46, ctype='text/plain')],
               rate=40e6)
    rec('filedrop-upload-script', nd, t0, t0 + 5 * SEC + 2 * SEC, ['transfer.sh'], [addr_for('transfer.sh')],
        user_agent=UA_CURL, bytes_up=7 * 1024 * 1024)
    # bot-api
    nd = ws.pop()
    t = t0 = D.local(11, 5) + rng.randint(0, 600) * SEC
    tok = f"{rng.randint(10**9, 10**10 - 1)}:AA{_b62(rng, 33)}"
    for k in range(5):
        D.tls(nd, t, 'api.telegram.org', 'python', [(rng.randint(400, 1500), rng.randint(300, 3000), 0)])
        t += rng.randint(240, 720) * SEC
    D.http(nd, t, 'api.telegram.org', [D.req(path=f"/bot{tok}/getUpdates?offset=0&timeout=10", ua=UA_PYREQ, down=rng.randint(100, 900), ctype='application/json')])
    rec('bot-api', nd, t0, t + 2 * SEC, ['api.telegram.org'], [addr_for('api.telegram.org')], user_agent=UA_PYREQ)
    # console-burst
    nd = ws.pop()
    t = t0 = D.local(15, 20) + rng.randint(0, 600) * SEC
    for nm in CONSOLES:
        D.tls(nd, t, nm, nd.browser, [(rng.randint(1500, 5000), rng.randint(50000, 600000), rng.randint(5, 30) * SEC)])
        t += rng.randint(35, 50) * SEC
    rec('console-burst', nd, t0, t, list(CONSOLES), [addr_for(n) for n in CONSOLES])
    # odd-hours-upload
    nd = ws.pop()
    t0 = D.local(2, 0) + rng.randint(0, 600) * SEC
    D.tls(nd, t0, 'content.dropboxapi.com', nd.browser, [(9 * 1000 * 1000, rng.randint(800, 2000), 0)], rate=30e6)
    rec('odd-hours-upload', nd, t0, t0 + 5 * SEC, ['content.dropboxapi.com'], [addr_for('content.dropboxapi.com')],
        bytes_up=9 * 1000 * 1000)
    # script-to-provider-ip
    nd = ws.pop()
    ip = addr_in(EC2_PREFIXES, f"scenario-ec2:{D.seed}:{D.day}")
    t0 = D.local(16, 5) + rng.randint(0, 600) * SEC
    D.http(nd, t0, ip, [D.req(path=f"/{mkword(rng)}.bin", ua=UA_PYREQ, down=rng.randint(200000, 900000), ctype='application/octet-stream')],
           dns=False, ip=ip)
    rec('script-to-provider-ip', nd, t0, t0 + 3 * SEC, [], [ip], user_agent=UA_PYREQ)
    if D.day >= 2:
        nd = ws.pop()
        bucket = f"{mkword(rng)}-exports-{hword(str(D.seed), 4)}.s3.amazonaws.com"
        t = t0 = D.local(10, 30) + rng.randint(0, 1800) * SEC
        for k in range(3):
            D.tls(nd, t, bucket, nd.browser, [(2 * 1000 * 1000, rng.randint(400, 1200), 0)], rate=25e6)
            t += rng.randint(120, 300) * SEC
        rec('workstation-new-storage', nd, t0, t, [bucket], [addr_for(bucket)], bytes_up=6 * 1000 * 1000,
            flows=3)
    return out


def _b62(rng, n):
    a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
    return ''.join(rng.choice(a) for _ in range(n))


def iso(t_us, local=False):
    sec = DAY0 + t_us / SEC + (LOCAL_OFF if local else 0)
    d = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
    s = d.strftime('%Y-%m-%dT%H:%M:%S')
    return s + ('+01:00' if local else 'Z')


# --------------------------------------------------------------------------------------------
# writing


def gen_day(args):
    seed, day, nhosts, out = args
    t_start = time.monotonic()
    nodes = build_population(seed, nhosts)
    sites = load_top_sites()
    D = Day(seed, day, nodes, sites)
    # scenario hosts: chosen from a day-independent order so that day 2 uses other hosts
    used = set()
    if day >= 2:  # hosts of day 1's scenarios are not reused
        D1 = Day(seed, 1, nodes, sites)
        plant(D1, nodes, used)
        D.rng = random.Random(seed * 1000 + day)
        for nd in nodes:
            nd.port = 32768 + (hint(f"{seed}:{day}:{nd.ip}") % 20000)
            nd.dns_cache = {}
    for nd in nodes:
        if nd.role == 'workstation':
            D.workstation(nd)
            nd.dns_cache = {}
    ci = [n for n in nodes if n.role == 'ci']
    for i, nd in enumerate(ci):
        D.ci(nd, i)
    for nd in nodes:
        if nd.role == 'monitoring':
            D.monitoring(nd)
        elif nd.role == 'server':
            D.server(nd)
    scen = plant(D, nodes, used)
    sessions = [s for s in D.sessions if D.T0 <= s['t'] < D.T0 + 24 * H - 120 * SEC]
    sessions.sort(key=lambda s: (s['t'], s['cli'].ip, s['cport']))
    # 5-tuple uniqueness (per day): port counters are per host and never wrap within a day
    path = os.path.join(out, f"day{day}.pcap")
    stats = write_pcap(path, sessions, seed, day)
    stats.update(day=day, pcap=os.path.basename(path), file_bytes=os.path.getsize(path),
                 seconds=round(time.monotonic() - t_start, 1))
    return stats, scen


def write_pcap(path, sessions, seed, day):
    out = open(path, 'wb', buffering=1 << 24)
    out.write(pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
    heap = []
    i = 0
    n = len(sessions)
    last_t = 0
    clamped = pkts = trunc = 0
    wire = 0
    kinds = {}
    for s in sessions:
        kinds[s['kind']] = kinds.get(s['kind'], 0) + 1
    push, replace, pop = heapq.heappush, heapq.heapreplace, heapq.heappop
    wr = out.write
    while heap or i < n:
        if i < n and (not heap or sessions[i]['t'] <= heap[0][0]):
            s = sessions[i]
            g = FLOWS[s['kind']](s, random.Random(seed * 1000003 + day * 7919 + i * 31))
            first = next(g, None)
            if first is not None:
                push(heap, (first[0], i, first, g))
            i += 1
            continue
        t, idx, fr, g = heap[0]
        if t < last_t:
            t = last_t
            clamped += 1
        last_t = t
        frame = fr[1]
        ln = len(frame)
        orig = fr[2] if len(fr) > 2 else ln
        if orig > ln:
            trunc += 1
        sec, usec = divmod(t, SEC)
        wr(pack('<IIII', DAY0 + sec, usec, ln, orig))
        wr(frame)
        pkts += 1
        wire += orig
        nxt = next(g, None)
        if nxt is None:
            pop(heap)
        else:
            replace(heap, (nxt[0], idx, nxt, g))
    out.close()
    if clamped:
        print(f"WARNING: day {day}: {clamped} packets out of time order (clamped)", file=sys.stderr)
    return dict(packets=pkts, truncated_packets=trunc, wire_bytes=wire, flows=n, flows_by_kind=kinds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', required=True, help='output directory')
    ap.add_argument('--days', type=int, choices=(1, 2), default=1)
    ap.add_argument('--hosts', type=int, default=150)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--jobs', type=int, default=0, help='days generated in parallel (default: min(days, cores))')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args()
    if a.hosts < 40:
        ap.error('--hosts must be at least 40')
    os.makedirs(a.out, exist_ok=True)
    t0 = time.monotonic()
    jobs = [(a.seed, d, a.hosts, a.out) for d in range(1, a.days + 1)]
    nj = a.jobs or min(len(jobs), os.cpu_count() or 1)
    if nj > 1:
        with multiprocessing.Pool(nj) as pool:
            res = pool.map(gen_day, jobs)
    else:
        res = [gen_day(j) for j in jobs]
    nodes = build_population(a.seed, a.hosts)
    roles = {}
    for nd in nodes:
        roles.setdefault(nd.role, []).append(nd.ip)
    tags = {}
    for nd in nodes:
        for tg in nd.tags:
            tags.setdefault(tg, []).append(nd.ip)
    days = []
    scen = []
    secs = {}
    for st, sc in res:
        d = st['day']
        secs[d] = st.pop('seconds')  # not in scenarios.json: same seed => same file
        st.update(date=(datetime.date(2026, 12, 1) + datetime.timedelta(days=d - 1)).isoformat(),
                  start=iso((d - 1) * 24 * H), end=iso(d * 24 * H))
        days.append(st)
        scen += sc
    doc = dict(
        generator='benches/gen_office.py', seed=a.seed, hosts=len(nodes), days=days,
        timezone='Europe/Berlin', utc_offset='+01:00',
        network=dict(home_net=['10.0.0.0/8'], resolver=RESOLVER, status_page=STATUS_IP, internal_api=API_IP,
                     roles={k: dict(count=len(v), ips=v) for k, v in roles.items()},
                     tags={k: sorted(v) for k, v in sorted(tags.items())}),
        sources=dict(top_sites='tests/data/top-sites-500.txt', aws_ranges=AWS_SOURCE),
        benign_patterns=[
            'CI servers 10.99.9.11-15: every 10 min around the clock: git fetch github.com (curl/OpenSSL ClientHello), '
            '2-8 MB upload to ci-artifacts-<n>.s3.amazonaws.com (Python/botocore ClientHello), now and then '
            'files.pythonhosted.org (Python ClientHello) and a cleartext aws-cli request to the bucket',
            'monitoring 10.99.8.10: curl/7.88.1 and python-requests to internal addresses every minute',
            'developers: git (curl ClientHello) to github.com / raw.githubusercontent.com, pip (Python ClientHello, '
            'and cleartext pip/23.3.1 UA) to pypi.org / files.pythonhosted.org, npm UA to registry.npmjs.org',
            'update agents: Microsoft-Delivery-Optimization/10.0, Microsoft-CryptoAPI/10.0, Microsoft NCSI, Debian APT',
            'Dropbox team (10 hosts) uploads up to 3.2 MB per flow; OneDrive uploads up to 3.5 MB per flow',
        ],
        scenarios=scen)
    with open(os.path.join(a.out, 'scenarios.json'), 'w') as f:
        json.dump(doc, f, indent=1)
    if not a.quiet:
        for st in days:
            print(f"day {st['day']} ({st['date']}): {st['pcap']} {st['file_bytes'] / 1e6:.0f} MB, "
                  f"{st['packets']:,} packets ({st['truncated_packets']:,} truncated), {st['flows']:,} flows, "
                  f"{st['wire_bytes'] / 1e9:.2f} GB on the wire, {secs[st['day']]} s")
        print(f"{len(scen)} planted scenarios, {len(nodes)} hosts; scenarios.json in {a.out}; "
              f"total {time.monotonic() - t0:.1f} s")


if __name__ == '__main__':
    main()
