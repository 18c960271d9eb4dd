#!/usr/bin/env python3
"""Converts cloudtap plain lists into Suricata 7 rules with the same semantics.

    python3 benches/lists-to-suricata.py LISTS_DIR OUTDIR [--domain-mode dataset|content]
                                          [--cidr-mode iprep|address]

Reads every *.domains, *.useragents and *.cidrs file of LISTS_DIR (format: docs/signatures.md)
and writes into OUTDIR:
  bench.rules        the rules; every rule carries `metadata: bench_field <field>` so an alert
                     says which cloudtap field it stands for (compare_alerts.py reads it)
  suricata.yaml      a minimal configuration: EVE alerts only, only the DNS/TLS/HTTP parsers,
                     the datasets and IP reputation below (absolute paths to OUTDIR)
  dom-d<N>.lst       string datasets (base64 lines, as Suricata 7 loads them): the suffix
                     entries with N labels; dom-exact.lst the `=name` entries
  iprep-categories.txt, bench.iprep   IP reputation category and data (CIDRs allowed)

Run:  suricata -c OUTDIR/suricata.yaml --runmode single -k none -r FILE -l LOGDIR -S OUTDIR/bench.rules

Semantics kept (cloudtap -> Suricata 7):
- `.domains` `name` = the name and every subdomain on a label boundary, case-insensitive, a
  trailing dot ignored, on dns.query / tls.sni / http.host.
  dataset mode (default): per label count N present in the list, one rule per field:
      <buffer>; to_lowercase; pcrexform:"([^.]+(?:\\.[^.]+){N-1})\\.?$"; dataset:isset,dom-dN;
  pcrexform keeps the last N labels (the leftmost match starts on a label boundary), so the
  lookup is an exact hash lookup of the candidate suffix: `badexample.com` yields
  `badexample.com`, not `example.com`.  A name with fewer than N labels is left unchanged by
  pcrexform and cannot be in the N-label set.
  content mode: one rule per entry and field: `<buffer>; dotprefix; content:".name"; nocase;
  endswith;` (label boundary by the leading dot; a trailing dot on the wire is NOT ignored).
  `=name` (exact): dataset dom-exact over `to_lowercase; pcrexform:"^(.*?)\\.?$"`, or
  `content:"name"; nocase; startswith; endswith;`.
  Not covered: cloudtap also matches .domains on dns.answer (CNAME targets); Suricata 7 has
  no keyword for DNS answers (dns.answers.rrname arrives in Suricata 8).
- `.useragents`: case-sensitive substring -> `http.user_agent; content:"..."` (exact bytes,
  | ; " \\ escaped as hex); `re:REGEX` -> `http.user_agent; pcre:"/REGEX/"` (Rust regex syntax
  without look-around/backreferences is, for the constructs lists use, PCRE syntax).
  Difference: cloudtap matches every User-Agent header of a request separately, Suricata the
  headers joined with ", ".
- `.cidrs` (the server address of every flow, TCP, UDP or other, once per flow): iprep mode
  (default) `alert ip` with `flow:to_server; iprep:dst,<cat>,>,0;` and a flowbit so each flow
  alerts once; address mode puts the networks in an address variable in the rule header
  instead.
"""
import argparse
import base64
import glob
import ipaddress
import os
import re
import sys

FIELDS = [('dns.query', 'dns', 'dns.query', 1), ('tls.sni', 'tls', 'tls.sni', 2),
          ('http.host', 'http', 'http.host', 3)]
SID_DOMAIN = 1000000     # + field*10000 + N (dataset) ; content: 2000000 + field*100000 + i
SID_CONTENT = 2000000
SID_UA = 3000000
SID_IP = 4000000


def read_list(path):
    out = []
    ua = path.endswith('.useragents')
    for raw in open(path, encoding='utf-8'):
        line = raw.rstrip('\n')
        if line.lstrip().startswith('#'):
            continue
        if not ua and ' #' in line:  # cloudtap: " #" starts a trailing comment (not in UA lists)
            line = line[:line.index(' #')]
        v = line.strip()
        if v:
            out.append(v)
    return out


def content_escape(s):
    out = []
    for b in s.encode('utf-8'):
        c = chr(b)
        if c in '|;"\\' or b < 0x20 or b >= 0x7f:
            out.append('|%02X|' % b)
        else:
            out.append(c)
    return ''.join(out).replace('||', ' ')


def pcre_escape(r):
    return r.replace('/', '\\/').replace('"', '\\x22').replace(';', '\\x3b')


def labels(name):
    return name.rstrip('.').count('.') + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('lists_dir')
    ap.add_argument('outdir')
    ap.add_argument('--domain-mode', choices=['dataset', 'content'], default='dataset')
    ap.add_argument('--cidr-mode', choices=['iprep', 'address'], default='iprep')
    a = ap.parse_args()
    out = os.path.abspath(a.outdir)
    os.makedirs(out, exist_ok=True)
    for f in glob.glob(os.path.join(out, 'dom-*.lst')):
        os.remove(f)

    suffixes, exact, subs, regexes, cidrs = [], [], [], [], []
    for p in sorted(glob.glob(os.path.join(a.lists_dir, '*.domains'))):
        for v in read_list(p):
            if v.startswith('='):
                exact.append(v[1:].lower().rstrip('.'))
            else:
                v = v[2:] if v.startswith('*.') else v
                suffixes.append(v.lower().rstrip('.'))
    for p in sorted(glob.glob(os.path.join(a.lists_dir, '*.useragents'))):
        for v in read_list(p):
            if v.startswith('re:'):
                regexes.append(v[3:].strip())
            else:
                subs.append(v)
    for p in sorted(glob.glob(os.path.join(a.lists_dir, '*.cidrs'))):
        for v in read_list(p):
            cidrs.append(str(ipaddress.ip_network(v, strict=False)))
    suffixes = sorted(set(suffixes))
    exact = sorted(set(exact))

    rules = ["# Generated by benches/lists-to-suricata.py from %s (domain mode %s, cidr mode %s)"
             % (os.path.abspath(a.lists_dir), a.domain_mode, a.cidr_mode)]
    datasets = {}
    if a.domain_mode == 'dataset':
        by_n = {}
        for s in suffixes:
            by_n.setdefault(labels(s), []).append(s)
        for n, names in sorted(by_n.items()):
            ds = f"dom-d{n}"
            datasets[ds] = (os.path.join(out, ds + '.lst'), names)
            rx = r'([^.]+' + (r'(?:\.[^.]+){%d}' % (n - 1) if n > 1 else '') + r')\.?$'
            for fname, proto, buf, fi in FIELDS:
                rules.append(
                    f'alert {proto} any any -> any any (msg:"BENCH {fname} domain list, {n} labels"; '
                    f'{buf}; to_lowercase; pcrexform:"{rx}"; dataset:isset,{ds}; '
                    f'metadata: bench_field {fname}; sid:{SID_DOMAIN + fi * 10000 + n}; rev:1;)')
        if exact:
            datasets['dom-exact'] = (os.path.join(out, 'dom-exact.lst'), exact)
            for fname, proto, buf, fi in FIELDS:
                rules.append(
                    f'alert {proto} any any -> any any (msg:"BENCH {fname} domain list, exact"; '
                    f'{buf}; to_lowercase; pcrexform:"^(.*?)\\.?$"; dataset:isset,dom-exact; '
                    f'metadata: bench_field {fname}; sid:{SID_DOMAIN + fi * 10000 + 999}; rev:1;)')
    else:
        for fname, proto, buf, fi in FIELDS:
            for i, s in enumerate(suffixes):
                rules.append(
                    f'alert {proto} any any -> any any (msg:"BENCH {fname} suffix {s}"; {buf}; '
                    f'dotprefix; content:"{content_escape("." + s)}"; nocase; endswith; '
                    f'metadata: bench_field {fname}; sid:{SID_CONTENT + fi * 100000 + i}; rev:1;)')
            for i, s in enumerate(exact):
                rules.append(
                    f'alert {proto} any any -> any any (msg:"BENCH {fname} exact {s}"; {buf}; '
                    f'content:"{content_escape(s)}"; nocase; startswith; endswith; '
                    f'metadata: bench_field {fname}; sid:{SID_CONTENT + fi * 100000 + 50000 + i}; rev:1;)')
    for i, s in enumerate(subs):
        rules.append(
            f'alert http any any -> any any (msg:"BENCH http.user_agent substring {i}"; '
            f'flow:to_server; http.user_agent; content:"{content_escape(s)}"; '
            f'metadata: bench_field http.user_agent; sid:{SID_UA + i}; rev:1;)')
    for i, r in enumerate(regexes):
        re.compile(r)  # must at least be a valid (Python) regex
        rules.append(
            f'alert http any any -> any any (msg:"BENCH http.user_agent regex {i}"; '
            f'flow:to_server; http.user_agent; pcre:"/{pcre_escape(r)}/"; '
            f'metadata: bench_field http.user_agent; sid:{SID_UA + 50000 + i}; rev:1;)')
    if cidrs:
        once = 'flowbits:isnotset,bench.ipdst; flowbits:set,bench.ipdst;'
        if a.cidr_mode == 'iprep':
            with open(os.path.join(out, 'iprep-categories.txt'), 'w') as f:
                f.write("1,benchcidr,cloudtap bench address list\n")
            with open(os.path.join(out, 'bench.iprep'), 'w') as f:
                for c in cidrs:
                    f.write(f"{c},1,100\n")
            cond, dst = 'iprep:dst,benchcidr,>,0; ', 'any'
        else:
            cond, dst = '', '$BENCH_CIDRS'
        # Every flow, whatever its protocol (cloudtap checks each flow's server once).
        rules.append(
            f'alert ip any any -> {dst} any (msg:"BENCH ip.dst address list"; '
            f'flow:to_server; {cond}{once} metadata: bench_field ip.dst; sid:{SID_IP + 1}; rev:1;)')

    for name, (path, names) in datasets.items():
        with open(path, 'w') as f:
            for s in names:
                f.write(base64.b64encode(s.encode()).decode() + "\n")
    with open(os.path.join(out, 'bench.rules'), 'w') as f:
        f.write("\n".join(rules) + "\n")

    ds_yaml = ''.join(
        f"  {n}:\n    type: string\n    load: {p}\n    hashsize: {max(1024, 1 << (len(v) * 2).bit_length())}\n    memcap: 64mb\n"
        for n, (p, v) in datasets.items())
    disabled = ['telnet', 'rfb', 'mqtt', 'krb5', 'bittorrent-dht', 'snmp', 'ike', 'pgsql', 'dcerpc',
                'ftp', 'rdp', 'ssh', 'http2', 'smtp', 'imap', 'smb', 'nfs', 'tftp', 'modbus', 'dnp3',
                'enip', 'ntp', 'quic', 'dhcp', 'sip']
    dis_yaml = ''.join(f"    {p}:\n      enabled: no\n" for p in disabled)
    addr = ''
    if a.cidr_mode == 'address' and cidrs:
        addr = f'    BENCH_CIDRS: "[{",".join(cidrs)}]"\n'
    rep = ''
    if a.cidr_mode == 'iprep' and cidrs:
        rep = (f"reputation-categories-file: {out}/iprep-categories.txt\n"
               f"default-reputation-path: {out}\nreputation-files:\n  - bench.iprep\n")
    yaml = f"""%YAML 1.1
---
# Minimal Suricata 7 configuration for the cloudtap benchmark (benches/lists-to-suricata.py).
# Only what the bench rules need: DNS, TLS and HTTP parsers; EVE alerts; no other logs.
vars:
  address-groups:
    HOME_NET: "[10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7]"
    EXTERNAL_NET: "!$HOME_NET"
{addr}  port-groups:
    HTTP_PORTS: "80"
    DNS_PORTS: "53"
default-rule-path: {out}
rule-files:
  - bench.rules
classification-file: /etc/suricata/classification.config
reference-config-file: /etc/suricata/reference.config
default-log-dir: /tmp
{rep}
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert:
            payload: no
            packet: no
            metadata: yes
            tagged-packets: no
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: yes
    - file:
        enabled: no
stats:
  enabled: no
unix-command:
  enabled: no
pcap-file:
  checksum-checks: no
max-pending-packets: 1024
threading:
  set-cpu-affinity: no
flow:
  memcap: 512mb
  hash-size: 131072
  prealloc: 10000
stream:
  memcap: 1gb
  checksum-validation: no
  reassembly:
    memcap: 2gb
    depth: 1mb
detect:
  profile: medium
  custom-values:
    toclient-groups: 3
    toserver-groups: 25
  sgh-mpm-context: auto
mpm-algo: auto
spm-algo: auto
datasets:
{ds_yaml}app-layer:
  protocols:
    tls:
      enabled: yes
      detection-ports:
        dp: 443
      # after the handshake nothing more can match: stop inspecting the encrypted flow
      encryption-handling: bypass
    http:
      enabled: yes
      libhtp:
        default-config:
          personality: IDS
          request-body-limit: 100kb
          response-body-limit: 100kb
    dns:
      tcp:
        enabled: yes
        detection-ports:
          dp: 53
      udp:
        enabled: yes
        detection-ports:
          dp: 53
{dis_yaml}"""
    with open(os.path.join(out, 'suricata.yaml'), 'w') as f:
        f.write(yaml)
    print(f"{out}: {len(rules) - 1} rules ({a.domain_mode} domains: {len(suffixes)} suffixes, "
          f"{len(exact)} exact; {len(subs)} UA substrings, {len(regexes)} UA regexes; "
          f"{len(cidrs)} CIDRs via {a.cidr_mode}); datasets: "
          + ", ".join(f"{n} ({len(v)})" for n, (p, v) in datasets.items()))


if __name__ == '__main__':
    main()
