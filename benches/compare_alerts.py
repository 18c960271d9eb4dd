#!/usr/bin/env python3
"""Compares list-match sets: expected.json (from gen_mix.py), cloudtap EVE, Suricata EVE.

    python3 benches/compare_alerts.py --expected DIR/expected.json \
        [--cloudtap ct-eve.json] [--suricata suricata-eve.json] [--examples 10] [--json OUT]

A match is (field, value, flow): field is dns.query, dns.answer, tls.sni, http.host,
http.user_agent or ip.dst; the value is lower-cased for domain fields (Suricata's http.hostname
is normalised to lower case, the others are as on the wire) and canonical for addresses; the
flow is the unordered pair of endpoints (ip, port), so which direction an alert was raised on
does not matter.  cloudtap alerts carry the field in alert.metadata.cloudtap_field; Suricata
alerts carry it in alert.metadata.bench_field (written by lists-to-suricata.py).

Prints per-field totals, and for every pair of sources the matches only one of them has (up
to --examples each).  Exit status 0 when every given source has the same set, 1 otherwise.
"""
import argparse
import ipaddress
import json
import sys

DOMAIN_FIELDS = {'dns.query', 'dns.answer', 'tls.sni', 'http.host'}
FIELDS = ['dns.query', 'dns.answer', 'tls.sni', 'http.host', 'http.user_agent', 'ip.dst']


def norm(field, value):
    if field in DOMAIN_FIELDS:
        v = value.lower()
        return v[:-1] if v.endswith('.') else v
    if field == 'ip.dst':
        return str(ipaddress.ip_address(value))
    return value


def ep(ip, port):
    return (str(ipaddress.ip_address(ip)), int(port))


def key(field, value, a, b):
    return (field, norm(field, value), tuple(sorted([a, b])))


def load_expected(path):
    d = json.load(open(path))
    out = set()
    for m in d['matches']:
        out.add(key(m['field'], m['value'], ep(m['src_ip'], m['src_port']), ep(m['dest_ip'], m['dest_port'])))
    return out


def load_cloudtap(path):
    out = set()
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            if e.get('event_type') != 'alert':
                continue
            md = e['alert']['metadata']
            field = md['cloudtap_field'][0]
            value = md['cloudtap_value'][0]
            out.add(key(field, value, ep(e['src_ip'], e['src_port']), ep(e['dest_ip'], e['dest_port'])))
    return out


def suricata_value(field, e):
    if field == 'dns.query':
        d = e.get('dns', {})
        qs = d.get('query') or d.get('queries') or []
        if isinstance(qs, list) and qs:
            return qs[0].get('rrname')
        return d.get('rrname')
    if field == 'tls.sni':
        return e.get('tls', {}).get('sni')
    if field == 'http.host':
        return e.get('http', {}).get('hostname')
    if field == 'http.user_agent':
        return e.get('http', {}).get('http_user_agent')
    if field == 'ip.dst':
        return e['dest_ip']
    raise KeyError(field)


def load_suricata(path, problems):
    out = set()
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            if e.get('event_type') != 'alert':
                continue
            md = e['alert'].get('metadata') or {}
            if 'bench_field' not in md:
                continue
            field = md['bench_field'][0]
            value = suricata_value(field, e)
            if value is None:
                problems.append(f"suricata alert sid {e['alert']['signature_id']} without a {field} value: {line.strip()[:300]}")
                continue
            out.add(key(field, value, ep(e['src_ip'], e['src_port']), ep(e['dest_ip'], e['dest_port'])))
    return out


def totals(s):
    t = {f: 0 for f in FIELDS}
    for k in s:
        t[k[0]] += 1
    t['all'] = len(s)
    return t


def fmt(k):
    f, v, ((a, ap), (b, bp)) = k
    return f"{f} {v!r} {a}:{ap} <-> {b}:{bp}"


def compare(sets, examples=10, out=sys.stdout):
    names = list(sets)
    res = {'totals': {n: totals(s) for n, s in sets.items()}, 'diffs': {}, 'equal': True}
    cols = [f for f in FIELDS if any(res['totals'][n][f] for n in names)] + ['all']
    print("| source | " + " | ".join(cols) + " |", file=out)
    print("|---|" + "---:|" * len(cols), file=out)
    for n in names:
        print(f"| {n} | " + " | ".join(str(res['totals'][n][c]) for c in cols) + " |", file=out)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            only_a = sorted(sets[a] - sets[b])
            only_b = sorted(sets[b] - sets[a])
            res['diffs'][f"{a} vs {b}"] = {f"only_{a}": [fmt(k) for k in only_a],
                                           f"only_{b}": [fmt(k) for k in only_b]}
            if only_a or only_b:
                res['equal'] = False
                print(f"\n{a} vs {b}: {len(only_a)} only in {a}, {len(only_b)} only in {b}", file=out)
                for k in only_a[:examples]:
                    print(f"  only {a}: {fmt(k)}", file=out)
                for k in only_b[:examples]:
                    print(f"  only {b}: {fmt(k)}", file=out)
            else:
                print(f"\n{a} == {b} ({len(sets[a])} matches)", file=out)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--expected')
    ap.add_argument('--cloudtap')
    ap.add_argument('--suricata')
    ap.add_argument('--examples', type=int, default=10)
    ap.add_argument('--json', help='write the comparison (totals, differences) here')
    a = ap.parse_args()
    sets = {}
    problems = []
    if a.expected:
        sets['expected'] = load_expected(a.expected)
    if a.cloudtap:
        sets['cloudtap'] = load_cloudtap(a.cloudtap)
    if a.suricata:
        sets['suricata'] = load_suricata(a.suricata, problems)
    if len(sets) < 2:
        ap.error('give at least two of --expected, --cloudtap, --suricata')
    res = compare(sets, a.examples)
    for p in problems[:a.examples]:
        print('problem: ' + p)
    res['problems'] = problems
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(res, f, indent=1)
    sys.exit(0 if res['equal'] and not problems else 1)


if __name__ == '__main__':
    main()
