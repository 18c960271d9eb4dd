#!/usr/bin/env python3
"""Alert-quality report for the office-day benchmark (issue 11).

    python3 benches/office_report.py EVE [EVE ...] SCENARIOS.json [--label NAME]
        [--days 1,2] [--eval-days 2] [--target nostate|state] [--window SECS] [--json FILE]

Reads the EVE alert records of one run (one file or several, e.g. day 1 and day 2 of a run with
--state) and the scenarios.json written by benches/gen_office.py, and prints:
  - hosts, alerts in total and per host per day (records, and the repeats they count);
  - alerts not explained by a planted scenario, in total and per host per day: an alert is
    explained when its host (src_ip, or dest_ip when the source is not an office host) is the
    scenario's host and its time (cloudtap.first_seen..last_seen, else the record timestamp)
    falls in the scenario's start..end widened by the alert window (cloudtap.window_s, else
    --window, default 60 s for records without a window);
  - for each planted scenario: found yes/no and which detections fired (an alert of that host and
    time whose detection is one the scenario expects, or whose record names one of the scenario's
    names or addresses);
  - the top 10 (signature, service) of the unexplained alerts;
  - the issue 11 targets next to the figures: default config, no state: at most 1 unexplained
    alert per 3 hosts per day and every scenario that needs no baseline found; with --state after a
    learned day: at most 1 per 15 hosts per day and every scenario found.  Targets are judged on
    --eval-days (default: every day of the run).
Records of the old format (no `cloudtap` object) count as detection `list-match`.  Standard
library only.  Exit status 0 whatever the figures (the report is informative).
"""
import argparse
import collections
import datetime
import json
import sys

DETECTIONS = {9190001: 'script-agent-web-service', 9190002: 'context-with-signal',
              9190003: 'first-use-org', 9190004: 'unauthorised-source', 9190005: 'upload-volume',
              9190006: 'burst'}
TARGETS = {'nostate': (1 / 3, '1 per 3 hosts per day', False),
           'state': (1 / 15, '1 per 15 hosts per day', True)}


def parse_ts(s):
    if s is None:
        return None
    if isinstance(s, (int, float)):
        return float(s)
    s = s.strip()
    if s.endswith('Z'):
        s = s[:-1] + '+00:00'
    if len(s) > 5 and s[-5] in '+-' and s[-3] != ':':
        s = s[:-2] + ':' + s[-2:]
    try:
        return datetime.datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


def meta1(alert, key):
    v = (alert.get('metadata') or {}).get(key)
    if isinstance(v, list):
        return v[0] if v else None
    return v


def load_alerts(paths):
    out = []
    bad = 0
    for p in paths:
        with open(p, errors='replace') as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except ValueError:
                    bad += 1
                    continue
                if r.get('event_type') == 'alert':
                    out.append(r)
    return out, bad


class Alert:
    __slots__ = ('src', 'dst', 'host', 't0', 't1', 'win', 'det', 'service', 'sig', 'sid', 'count',
                 'text', 'day')

    def __init__(self, r, known, default_window):
        a = r.get('alert') or {}
        ct = r.get('cloudtap') or {}
        self.src = r.get('src_ip')
        self.dst = r.get('dest_ip')
        if self.src in known or self.dst not in known:
            self.host = self.src
        else:
            self.host = self.dst
        ts = parse_ts(r.get('timestamp'))
        fs = parse_ts(ct.get('first_seen')) or ts
        ls = parse_ts(ct.get('last_seen')) or ts
        self.t0, self.t1 = min(fs, ls), max(fs, ls)
        self.win = ct.get('window_s')
        if not isinstance(self.win, (int, float)):
            self.win = default_window
        self.sid = a.get('signature_id')
        self.det = ct.get('detection') or DETECTIONS.get(self.sid) or ('list-match' if not ct else 'listed-endpoint')
        self.service = (ct.get('service') or meta1(a, 'cloudtap_service') or meta1(a, 'cloudtap_indicator')
                        or '-')
        self.sig = a.get('signature') or str(self.sid)
        c = ct.get('count')
        self.count = c if isinstance(c, int) and c > 0 else 1
        self.text = json.dumps(r).lower()
        self.day = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('files', nargs='+', help='EVE file(s) of one run, then scenarios.json')
    ap.add_argument('--label', default='run')
    ap.add_argument('--days', help='days the run covers, e.g. 1,2 (default: every day in scenarios.json)')
    ap.add_argument('--eval-days', help='days the targets are judged on (default: --days)')
    ap.add_argument('--target', choices=sorted(TARGETS), default='nostate')
    ap.add_argument('--window', type=float, default=60.0,
                    help='slack (s) around a scenario for records that carry no cloudtap.window_s')
    ap.add_argument('--json', metavar='FILE', help='also write the figures as JSON (- = stdout, no table)')
    a = ap.parse_args()
    if len(a.files) < 2:
        ap.error('need at least one EVE file and scenarios.json')
    *eves, scen_path = a.files
    S = json.load(open(scen_path))
    known = set()
    for role in S['network']['roles'].values():
        known.update(role['ips'])
    nhosts = S['hosts']
    all_days = {d['day']: d for d in S['days']}
    days = sorted(int(x) for x in a.days.split(',')) if a.days else sorted(all_days)
    eval_days = sorted(int(x) for x in a.eval_days.split(',')) if a.eval_days else days
    for d in days + eval_days:
        if d not in all_days:
            ap.error(f'day {d} is not in {scen_path}')
    bounds = {d: (parse_ts(all_days[d]['start']), parse_ts(all_days[d]['end'])) for d in days}
    raw, bad = load_alerts(eves)
    alerts = [Alert(r, known, a.window) for r in raw]
    for al in alerts:
        for d, (s, e) in bounds.items():
            if s <= al.t0 < e:
                al.day = d
    scen = [s for s in S['scenarios'] if s['day'] in days]
    for s in scen:
        s['_t0'] = parse_ts(s['start'])
        s['_t1'] = parse_ts(s['end'])
        s['_keys'] = [x.lower() for x in s['names'] + s['ips']]
    # match
    by_host = collections.defaultdict(list)
    for s in scen:
        by_host[s['host']].append(s)
    unexpl = []
    hits = collections.defaultdict(list)
    for al in alerts:
        ok = False
        for s in by_host.get(al.host, ()):
            if al.t1 >= s['_t0'] - al.win and al.t0 <= s['_t1'] + al.win:
                ok = True
                hits[s['id']].append(al)
        if not ok:
            unexpl.append(al)
    # figures
    def per_day(lst, d):
        return [x for x in lst if x.day == d]

    rows = []
    for d in days:
        al_d = per_day(alerts, d)
        un_d = per_day(unexpl, d)
        rows.append(dict(day=d, date=all_days[d]['date'], alerts=len(al_d), alerts_per_host=len(al_d) / nhosts,
                         unexplained=len(un_d), unexplained_per_host=len(un_d) / nhosts,
                         hosts_alerting=len({x.host for x in al_d}),
                         hosts_unexplained=len({x.host for x in un_d}),
                         repeats_counted=sum(x.count for x in al_d)))
    outside = [x for x in alerts if x.day is None]
    ev = [r for r in rows if r['day'] in eval_days]
    ev_days = max(1, len(ev))
    un_eval = sum(r['unexplained'] for r in ev)
    un_rate = un_eval / nhosts / ev_days
    limit, limit_txt, need_base = TARGETS[a.target]
    sc_rows = []
    for s in scen:
        hs = hits.get(s['id'], [])
        rel = [x for x in hs if x.det in s['expected_detections'] or any(k in x.text for k in s['_keys'])]
        dets = sorted({x.det for x in rel})
        other = sorted({x.det for x in hs} - set(dets))
        judged = s['day'] in eval_days and (need_base or not s['needs_baseline'])
        sc_rows.append(dict(id=s['id'], kind=s['kind'], day=s['day'], host=s['host'], start=s['start'],
                            needs_baseline=s['needs_baseline'], expected=s['expected_detections'],
                            found=bool(rel), detections=dets, other_detections_same_host=other,
                            alerts=len(rel), judged=judged))
    judged = [r for r in sc_rows if r['judged']]
    found_ok = all(r['found'] for r in judged)
    top = collections.Counter((x.sig, x.service) for x in unexpl if x.day in eval_days)
    top_hosts = collections.Counter(x.host for x in unexpl if x.day in eval_days)
    by_det = collections.Counter(x.det for x in alerts if x.day in eval_days)
    result = dict(
        label=a.label, eve=eves, hosts=nhosts, days=days, eval_days=eval_days, target=a.target,
        alerts_total=len(alerts), alerts_outside_days=len(outside), unparsable_lines=bad,
        per_day=rows,
        eval=dict(alerts=sum(r['alerts'] for r in ev), unexplained=un_eval,
                  alerts_per_host_per_day=sum(r['alerts'] for r in ev) / nhosts / ev_days,
                  unexplained_per_host_per_day=un_rate, unexplained_limit_per_host_per_day=limit,
                  unexplained_target_met=un_rate <= limit, scenarios_judged=len(judged),
                  scenarios_found=sum(r['found'] for r in judged), scenarios_target_met=found_ok,
                  target_met=un_rate <= limit and found_ok),
        by_detection=dict(by_det.most_common()),
        scenarios=sc_rows,
        top_unexplained=[dict(signature=k[0], service=k[1], alerts=v) for k, v in top.most_common(10)],
        top_unexplained_hosts=[dict(host=k, alerts=v) for k, v in top_hosts.most_common(10)])
    if a.json:
        txt = json.dumps(result, indent=1)
        if a.json == '-':
            print(txt)
            return
        with open(a.json, 'w') as f:
            f.write(txt + '\n')
    P = print
    P(f"== {a.label}: {', '.join(eves)}")
    P(f"hosts {nhosts}; days {','.join(map(str, days))}; targets judged on day(s) {','.join(map(str, eval_days))} "
      f"({'with a learned baseline' if need_base else 'default configuration, no state'})")
    P(f"{'day':<14}{'alerts':>8}{'/host':>8}{'unexpl.':>9}{'/host':>8}{'hosts alerting':>16}{'unexpl. hosts':>15}{'counted':>9}")
    for r in rows:
        P(f"{r['day']} {r['date']:<12}{r['alerts']:>8}{r['alerts_per_host']:>8.3f}{r['unexplained']:>9}"
          f"{r['unexplained_per_host']:>8.3f}{r['hosts_alerting']:>16}{r['hosts_unexplained']:>15}{r['repeats_counted']:>9}")
    if outside:
        P(f"({len(outside)} alerts fall outside the run's days)")
    E = result['eval']
    P(f"judged: {E['alerts']} alerts = {E['alerts_per_host_per_day']:.3f} per host per day; "
      f"unexplained {E['unexplained']} = {E['unexplained_per_host_per_day']:.3f} per host per day "
      f"(target <= {limit:.3f}, {limit_txt}: {'MET' if E['unexplained_target_met'] else 'NOT MET'})")
    P(f"scenarios found: {E['scenarios_found']}/{E['scenarios_judged']} judged "
      f"({'every scenario' if need_base else 'every scenario that needs no baseline'}: "
      f"{'MET' if found_ok else 'NOT MET'})")
    if by_det:
        P("alerts by detection: " + ", ".join(f"{k} {v}" for k, v in by_det.most_common()))
    P(f"{'scenario':<34}{'host':<13}{'start (UTC)':<22}{'found':<7}detections (expected)")
    for r in sc_rows:
        mark = ('yes' if r['found'] else 'NO') + ('' if r['judged'] else '*')
        P(f"{r['id']:<34}{r['host']:<13}{r['start']:<22}{mark:<7}{','.join(r['detections']) or '-'} "
          f"({','.join(r['expected'])})" + (f" other: {','.join(r['other_detections_same_host'])}" if r['other_detections_same_host'] else ''))
    if any(not r['judged'] for r in sc_rows):
        P("  * not judged for this target (needs a baseline, or outside the judged days)")
    P("top unexplained (signature, service):")
    for (sig, svc), v in top.most_common(10):
        P(f"  {v:>7}  {sig}  [{svc}]")
    if not top:
        P("  (none)")
    P("")


if __name__ == '__main__':
    main()
