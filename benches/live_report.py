#!/usr/bin/env python3
"""Report of the live-capture benchmark (issue 12), from the run directory of benches/live.sh.

    python3 benches/live_report.py RUN_DIR [--append LIVE.md] [--json FILE] [--note TEXT]

RUN_DIR holds one directory per back end and step, RUN_DIR/<backend>/<step>/, each with:
  meta          key=value lines written by live.sh (backend, step, requested Mbps, exit status,
                veth counters before/after, skipped=REASON for a step the budget left out)
  tcpreplay.txt tcpreplay's output (packets sent, rate achieved)
  stderr        the sensor's standard error (cloudtap's summary; Suricata's log at -vv)
  eve.json      the sensor's EVE output
and RUN_DIR/run.txt (key=value: capture, packets, bytes, threads, buffer, date, ...).

Per step it derives:
  sent        packets tcpreplay sent (its "Successful packets")
  at socket   packets the kernel counted on the sensor's socket(s), dropped ones included
              (cloudtap `capture: kernel packets`; Suricata the sum of its `kernel: Packets`)
  kernel drops  packets the kernel dropped because the ring / buffer was full
  queue drops   cloudtap only: dropped between the capture and a full worker queue
  path lost   sent - at socket when positive: lost on the veth before any socket (backlog)
  seen        packets the sensor processed (cloudtap `packets`; Suricata `device: packets`
              less its drops)
  drops       path lost + kernel drops + queue drops (+ cloudtap interface drops)
  drop rate   drops / sent
and per back end: the highest achieved rate with zero drops, and the drop rate at top speed.
Prints Markdown (a summary table and the per-step table); --append adds both, with the date,
the machine and the run's settings, to a Markdown file.  Standard library only.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import sys

BACKENDS = {'afpacket': 'cloudtap --capture afpacket', 'pcap': 'cloudtap --capture pcap',
            'suricata': 'Suricata 7 --af-packet (workers)'}


def read_kv(path):
    out = {}
    try:
        for line in open(path, encoding='utf-8', errors='replace'):
            if '=' in line:
                k, v = line.rstrip('\n').split('=', 1)
                out[k.strip()] = v.strip()
    except FileNotFoundError:
        pass
    return out


def text(path):
    try:
        return open(path, encoding='utf-8', errors='replace').read()
    except FileNotFoundError:
        return ''


def num(s):
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def parse_tcpreplay(t):
    r = {}
    m = re.search(r'Successful packets:\s+(\d+)', t)
    if m:
        r['sent'] = int(m.group(1))
    m = re.search(r'Failed packets:\s+(\d+)', t)
    if m:
        r['send_failed'] = int(m.group(1))
    m = re.search(r'Actual:\s+(\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds', t)
    if m:
        r['actual_packets'], r['bytes'], r['seconds'] = int(m.group(1)), int(m.group(2)), float(m.group(3))
        r.setdefault('sent', r['actual_packets'])
    m = re.search(r'Rated:\s+[\d.]+ Bps,\s+([\d.]+) Mbps,\s+([\d.]+) pps', t)
    if m:
        r['mbps'], r['pps'] = float(m.group(1)), float(m.group(2))
    return r


def eve_counts(path):
    """alerts, and the capture counters of the last stats record (if any)."""
    alerts, last_cap = 0, None
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if '"event_type":"alert"' in line or '"event_type": "alert"' in line:
                    alerts += 1
                elif '"stats"' in line:
                    try:
                        st = json.loads(line).get('stats', {})
                    except ValueError:
                        continue
                    if isinstance(st.get('capture'), dict):
                        last_cap = st['capture']
    except FileNotFoundError:
        pass
    return alerts, last_cap


def parse_cloudtap(stderr, eve):
    r = {}
    m = re.search(r'^\s*capture:(.*)$', stderr, re.M)
    if m:
        for k, v in re.findall(r'([a-z][a-z ]*?)\s+(\d+)', m.group(1)):
            r[k.strip().replace(' ', '_')] = int(v)
    m = re.search(r'^\s*packets (\d+)\s+bytes', stderr, re.M)
    if m:
        r['seen'] = int(m.group(1))
    alerts, cap = eve_counts(eve)
    r['alerts'] = alerts
    if 'kernel_packets' not in r and cap:  # no summary (killed?): the last stats record
        for k in ('kernel_packets', 'kernel_drops', 'interface_drops', 'ring_freezes', 'queue_drops'):
            if isinstance(cap.get(k), int):
                r[k] = cap[k]
        r['from_stats_record'] = True
    return r


def parse_suricata(stderr, eve):
    r = {}
    ks = re.findall(r'kernel: Packets (\d+), dropped (\d+)', stderr)
    if ks:
        r['kernel_packets'] = sum(int(a) for a, _ in ks)
        r['kernel_drops'] = sum(int(b) for _, b in ks)
    # `device: IF: packets: N, drops: D` at exit: N is the kernel's count (drops included)
    m = re.search(r'device: \S+: packets: (\d+), drops: (\d+)', stderr)
    if m:
        r['seen'] = int(m.group(1)) - int(m.group(2))
        r.setdefault('kernel_packets', int(m.group(1)))
        r.setdefault('kernel_drops', int(m.group(2)))
    r['alerts'], _ = eve_counts(eve)
    return r


def step_key(step):
    return (1, 0) if step == 'top' else (0, int(step))


def load(run_dir):
    rows = []
    for be in sorted(os.listdir(run_dir)):
        bdir = os.path.join(run_dir, be)
        if not os.path.isdir(bdir) or be not in BACKENDS:
            continue
        for step in sorted(os.listdir(bdir), key=lambda s: step_key(s) if re.fullmatch(r'\d+|top', s) else (2, 0)):
            d = os.path.join(bdir, step)
            if not os.path.isdir(d) or not re.fullmatch(r'\d+|top', step):
                continue
            meta = read_kv(os.path.join(d, 'meta'))
            row = dict(backend=be, step=step, requested_mbps=None if step == 'top' else int(step),
                       skipped=meta.get('skipped'), rc=num(meta.get('rc')),
                       killed=meta.get('killed') == '1', notes=meta.get('notes', ''))
            if row['skipped']:
                rows.append(row)
                continue
            row.update(parse_tcpreplay(text(os.path.join(d, 'tcpreplay.txt'))))
            stderr, eve = text(os.path.join(d, 'stderr')), os.path.join(d, 'eve.json')
            row.update(parse_suricata(stderr, eve) if be == 'suricata' else parse_cloudtap(stderr, eve))
            rxp0, rxp1 = num(meta.get('rx_packets_before')), num(meta.get('rx_packets_after'))
            if rxp0 is not None and rxp1 is not None:
                row['veth_rx'] = rxp1 - rxp0
            sent, kp = row.get('sent'), row.get('kernel_packets')
            if sent is not None and kp is not None:
                row['path_lost'] = max(0, sent - kp)
                drops = row['path_lost'] + row.get('kernel_drops', 0) + row.get('queue_drops', 0) \
                    + row.get('interface_drops', 0)
                row['drops'] = drops
                row['drop_rate'] = drops / sent if sent else 0.0
            rows.append(row)
    return rows


def add_matches(rows, run_dir):
    """(field, value, flow) match sets by compare_alerts.py, and the difference from a reference:
    Suricata's set at its slowest step without drops (else cloudtap afpacket's)."""
    spec = importlib.util.spec_from_file_location(
        'compare_alerts', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'compare_alerts.py'))
    ca = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ca)
    sets = {}
    for r in rows:
        eve = os.path.join(run_dir, r['backend'], r['step'], 'eve.json')
        if r.get('skipped') or not os.path.exists(eve):
            continue
        try:
            sets[(r['backend'], r['step'])] = ca.load_suricata(eve, []) if r['backend'] == 'suricata' \
                else ca.load_cloudtap(eve)
        except (ValueError, KeyError, OSError):
            pass
    ref = None
    for be in ('suricata', 'afpacket'):
        for r in rows:
            if r['backend'] == be and r.get('drops') == 0 and (be, r['step']) in sets:
                ref = (be, r['step'])
                break
        if ref:
            break
    for r in rows:
        m = sets.get((r['backend'], r['step']))
        if m is None:
            continue
        r['matches'] = len(m)
        if ref:
            r['matches_missing'] = len(sets[ref] - m)
            r['matches_extra'] = len(m - sets[ref])
    return ref


def summarise(rows):
    out = {}
    for be in BACKENDS:
        rs = [r for r in rows if r['backend'] == be]
        if not rs:
            continue
        ok = [r for r in rs if 'drops' in r]
        clean = [r for r in ok if r['drops'] == 0 and not r.get('killed')]
        top = next((r for r in ok if r['step'] == 'top'), None)
        best = max(clean, key=lambda r: r.get('mbps') or 0, default=None)
        out[be] = dict(
            best_zero_drop_mbps=best.get('mbps') if best else None,
            best_zero_drop_kpps=(best.get('pps') or 0) / 1e3 if best else None,
            best_zero_drop_step=best['step'] if best else None,
            zero_drop_at_top=bool(top and top['drops'] == 0),
            top_mbps=top.get('mbps') if top else None,
            top_kpps=(top.get('pps') or 0) / 1e3 if top else None,
            top_drop_rate=top.get('drop_rate') if top else None,
            top_kernel_drops=top.get('kernel_drops') if top else None,
            first_drop_step=next((r['step'] for r in ok if r['drops'] > 0), None),
            top_matches_missing=top.get('matches_missing') if top else None,
            top_matches_extra=top.get('matches_extra') if top else None,
            incomplete=any(r.get('skipped') or 'drops' not in r for r in rs),
        )
    return out


def fmt(v, spec='{:,}', none='-'):
    return none if v is None else spec.format(v)


def match_cell(missing, extra):
    if missing is None:
        return '-'
    if not missing and not extra:
        return 'same'
    return ', '.join(x for x in (f'{missing:,} missing' if missing else '',
                                 f'{extra:,} extra' if extra else '') if x)


def markdown(rows, summ, ref):
    lines = []
    lines.append('| back end | highest rate with zero drops | drop rate at top speed (rate achieved) | '
                 'matches at top speed vs reference |')
    lines.append('|---|---:|---:|---|')
    for be, s in summ.items():
        if s['best_zero_drop_mbps'] is None:
            best = 'none (drops at every rate tried)'
        else:
            best = f"{s['best_zero_drop_mbps']:,.0f} Mbit/s ({s['best_zero_drop_kpps']:,.0f} kpps)"
            if s['zero_drop_at_top']:
                best += ', top speed'
        top = '-' if s['top_drop_rate'] is None else \
            f"{s['top_drop_rate']:.2%} ({s['top_mbps']:,.0f} Mbit/s, {s['top_kpps']:,.0f} kpps)"
        lines.append(f"| {BACKENDS[be]} | {best} | {top} | "
                     f"{match_cell(s['top_matches_missing'], s['top_matches_extra'])} |")
    lines.append('')
    if ref:
        step = 'top speed' if ref[1] == 'top' else f'--mbps {ref[1]}'
        lines.append(f"Matches: (field, value, flow) list matches as benches/compare_alerts.py counts "
                     f"them; reference: {BACKENDS[ref[0]]} at {step} (no drops).")
        lines.append('')
    lines.append('| back end | step | Mbit/s achieved | kpps | sent | at socket | kernel drops | '
                 'queue drops | path lost | seen | drop rate | alerts | matches (vs reference) | exit |')
    lines.append('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
    for r in rows:
        step = 'top speed' if r['step'] == 'top' else f"--mbps {r['step']}"
        if r.get('skipped'):
            lines.append(f"| {BACKENDS[r['backend']]} | {step} | skipped: {r['skipped']} |" + ' |' * 11)
            continue
        ex = '-' if r.get('rc') is None else str(r['rc'])
        if r.get('killed'):
            ex += ' (killed)'
        qd = r.get('queue_drops') if r['backend'] != 'suricata' else None
        mc = fmt(r.get('matches'))
        d = match_cell(r.get('matches_missing'), r.get('matches_extra'))
        if d not in ('-', 'same'):
            mc += f' ({d})'
        lines.append(
            f"| {BACKENDS[r['backend']]} | {step} | {fmt(r.get('mbps'), '{:,.0f}')} | "
            f"{fmt(r.get('pps') and r['pps'] / 1e3, '{:,.0f}')} | {fmt(r.get('sent'))} | "
            f"{fmt(r.get('kernel_packets'))} | {fmt(r.get('kernel_drops'))} | {fmt(qd)} | "
            f"{fmt(r.get('path_lost'))} | {fmt(r.get('seen'))} | {fmt(r.get('drop_rate'), '{:.2%}')} | "
            f"{fmt(r.get('alerts'))} | {mc} | {ex} |")
    return '\n'.join(lines)


def machine():
    cpu = ''
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    mem = ''
    try:
        for line in open('/proc/meminfo'):
            if line.startswith('MemTotal'):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return f"{platform.node() or 'host'}: {os.cpu_count()} cores ({cpu or platform.machine()}), {mem}, " \
           f"Linux {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('run_dir')
    ap.add_argument('--append', metavar='MD', help='append the tables, dated, to this Markdown file')
    ap.add_argument('--json', metavar='FILE', help='write rows and summary as JSON')
    ap.add_argument('--note', default='', help='a line added under the heading (with --append)')
    a = ap.parse_args()
    rows = load(a.run_dir)
    if not rows:
        print(f'live_report.py: no results in {a.run_dir}', file=sys.stderr)
        return 1
    ref = add_matches(rows, a.run_dir)
    summ = summarise(rows)
    run = read_kv(os.path.join(a.run_dir, 'run.txt'))
    md = markdown(rows, summ, ref)
    print(md)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(dict(run=run, summary=summ, rows=rows), f, indent=1)
    if a.append:
        when = run.get('date') or datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
        head = [f"\n## {when}: {', '.join(BACKENDS[b] for b in summ)}\n",
                f"Machine: {machine()}.  "]
        head.append(
            f"Capture: {run.get('capture', '?')} ({fmt(num(run.get('packets')))} packets, "
            f"{fmt(num(run.get('bytes')))} bytes, addresses rewritten into 198.18.0.0/15 and "
            f"2001:db8::/32), replayed by tcpreplay {run.get('tcpreplay', '')} from netns "
            f"ct-bench-tx onto a veth whose other end is in ct-bench-rx.  Sensors: "
            f"{run.get('threads', '?')} threads/workers, {run.get('buffer_mb', '?')} MB ring per worker, "
            f"signatures: the benchmark lists (cloudtap `--alert-mode flow`; Suricata the same lists "
            f"converted by lists-to-suricata.py).  cloudtap: {run.get('cloudtap_version', '-')}; "
            f"{run.get('suricata_version', 'Suricata: -')}.")
        if a.note:
            head.append(f"\n\n{a.note}")
        if any(s['incomplete'] for s in summ.values()):
            head.append('\n\nSome steps were skipped or did not report (see the exit column).')
        with open(a.append, 'a') as f:
            f.write(''.join(head) + '\n\n' + md + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
