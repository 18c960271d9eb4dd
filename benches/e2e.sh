#!/usr/bin/env bash
# End-to-end comparison: cloudtap vs Suricata 7 on a realistic generated capture (issue 4).
#
#   benches/e2e.sh [--scale S] [--runs N] [--seed N] [--json]
#
# 1. builds cloudtap (`cargo build --release`), unless CLOUDTAP_BIN names a binary to use;
# 2. generates the capture and the signature lists with benches/gen_mix.py, cached in
#    $BENCH_MIX_DIR (default target/bench-mix/) and regenerated only when missing or when
#    gen_mix.py changed;
# 3. converts the lists to Suricata rules (benches/lists-to-suricata.py);
# 4. warms the page cache (and again before each run), then runs N interleaved rounds of:
#    Suricata (--runmode single), cloudtap --threads 1, cloudtap --threads 2 and a reading floor
#    (tcpdump -r FILE -w /dev/null), each under /usr/bin/time (wall seconds, peak RSS; the whole process, startup included);
# 5. checks that the last round's match sets are equal: cloudtap (1 and 2 threads) == Suricata
#    == expected.json (benches/compare_alerts.py); exits 1 if not;
# 6. prints a Markdown table (or JSON with --json): median wall time, Gbit/s and Mpkt/s
#    (computed from the pcap FILE size and packet count), peak RSS, speed-up vs Suricata.
#
# Environment: CLOUDTAP_BIN (skip the build), BENCH_MIX_DIR, SURICATA (default suricata),
# BENCH_TIMEOUT (seconds per run, default 3600).  Needs python3, suricata 7, tcpdump and
# GNU time (`apt-get install -y -t bookworm-backports suricata; apt-get install -y tcpdump time`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCALE=1.0
RUNS=5
SEED=1
JSON=0
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --json) JSON=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "e2e.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*) echo "e2e.sh: --runs must be a number" >&2; exit 2 ;; esac
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 50 ]; then echo "e2e.sh: --runs must be 1..50" >&2; exit 2; fi
python3 -c "import sys; s=float(sys.argv[1]); assert 0 < s <= 10" "$SCALE" 2>/dev/null \
    || { echo "e2e.sh: --scale must be a number in (0, 10]" >&2; exit 2; }

SURICATA="${SURICATA:-suricata}"
TIMEOUT="${BENCH_TIMEOUT:-3600}"
MIX="${BENCH_MIX_DIR:-$ROOT/target/bench-mix}"
log() { echo "e2e: $*" >&2; }

for tool in python3 "$SURICATA" tcpdump /usr/bin/time timeout; do
    command -v "$tool" >/dev/null 2>&1 || { echo "e2e.sh: $tool not found (see the header of $0)" >&2; exit 2; }
done
"$SURICATA" -V 2>/dev/null | grep -q 'version 7\.' \
    || { echo "e2e.sh: $SURICATA is not Suricata 7 ($("$SURICATA" -V 2>&1 | head -1))" >&2; exit 2; }

# 1. cloudtap
if [ -n "${CLOUDTAP_BIN:-}" ]; then
    BIN="$CLOUDTAP_BIN"
    log "using CLOUDTAP_BIN=$BIN (no build)"
else
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release >&2)
    BIN="$ROOT/target/release/cloudtap"
fi
[ -x "$BIN" ] || { echo "e2e.sh: $BIN is not executable" >&2; exit 2; }

# 2. capture and lists (cached)
NAME="mix-scale${SCALE}-seed${SEED}"
PCAP="$MIX/$NAME.pcap"
LISTS="$MIX/$NAME.lists"
STAMP="$MIX/$NAME.stamp"
GENHASH="$(sha256sum "$ROOT/benches/gen_mix.py" | cut -c1-16)"
mkdir -p "$MIX"
if [ -s "$PCAP" ] && [ -s "$LISTS/expected.json" ] && [ -s "$LISTS/mix-summary.json" ] \
    && [ "$(cat "$STAMP" 2>/dev/null)" = "$GENHASH" ]; then
    log "cached capture $PCAP"
else
    log "generating $PCAP (scale $SCALE, seed $SEED)"
    rm -f "$PCAP" "$STAMP"
    python3 "$ROOT/benches/gen_mix.py" --out "$PCAP.tmp" --scale "$SCALE" --seed "$SEED" \
        --lists-dir "$LISTS" >&2
    mv "$PCAP.tmp" "$PCAP"
    echo "$GENHASH" > "$STAMP"
fi

# 3. Suricata rules
SURI="$MIX/$NAME.suricata"
python3 "$ROOT/benches/lists-to-suricata.py" "$LISTS" "$SURI" >&2

# 4. runs
RUN="$MIX/run"
rm -rf "$RUN"
mkdir -p "$RUN"
TIMES="$RUN/times.tsv"
: > "$TIMES"
log "warming the page cache"
cat "$PCAP" > /dev/null

measure() {  # measure TOOL ROUND OUTDIR -- command...
    local tool="$1" round="$2" out="$3"; shift 4
    mkdir -p "$out"
    # Warm again before every run: some machines drop pages of a cached file over time (on
    # this project's VM, about 14 MB every 20 s), and a run that reads them from disk
    # measures the disk, not the tool.
    cat "$PCAP" > /dev/null
    if ! /usr/bin/time -f '%e %M' -o "$out/time" timeout "$TIMEOUT" "$@" >"$out/stdout" 2>"$out/stderr"; then
        echo "e2e.sh: $tool failed (round $round): $*" >&2
        tail -5 "$out/stderr" >&2
        exit 1
    fi
    read -r wall rss < <(tail -1 "$out/time")
    printf '%s\t%s\t%s\t%s\n' "$tool" "$round" "$wall" "$rss" >> "$TIMES"
    log "round $round $tool: ${wall} s, ${rss} KB"
}

for r in $(seq 1 "$RUNS"); do
    d="$RUN/r$r"
    measure suricata "$r" "$d/suricata" -- "$SURICATA" -c "$SURI/suricata.yaml" --runmode single \
        -k none -r "$PCAP" -l "$d/suricata" -S "$SURI/bench.rules"
    measure cloudtap-t1 "$r" "$d/ct1" -- "$BIN" -r "$PCAP" --signatures "$LISTS" --alert-mode flow --threads 1 \
        --eve "$d/ct1/eve.json" -q
    measure cloudtap-t2 "$r" "$d/ct2" -- "$BIN" -r "$PCAP" --signatures "$LISTS" --alert-mode flow --threads 2 \
        --eve "$d/ct2/eve.json" -q
    measure tcpdump-floor "$r" "$d/tcpdump" -- tcpdump -r "$PCAP" -w /dev/null
    if [ "$r" -lt "$RUNS" ]; then  # keep only the last round's outputs
        rm -f "$d"/suricata/eve.json "$d"/ct1/eve.json "$d"/ct2/eve.json
    fi
done

# 5. match sets of the last round
L="$RUN/r$RUNS"
MATCH=0
python3 "$ROOT/benches/compare_alerts.py" --expected "$LISTS/expected.json" \
    --cloudtap "$L/ct1/eve.json" --suricata "$L/suricata/eve.json" --json "$RUN/compare-t1.json" \
    > "$RUN/compare-t1.txt" || MATCH=1
python3 "$ROOT/benches/compare_alerts.py" --expected "$LISTS/expected.json" \
    --cloudtap "$L/ct2/eve.json" --json "$RUN/compare-t2.json" > "$RUN/compare-t2.txt" || MATCH=1

# 6. report
python3 - "$TIMES" "$PCAP" "$LISTS/mix-summary.json" "$RUN" "$MATCH" "$JSON" "$RUNS" <<'PY'
import json, os, statistics, sys
times, pcap, summ, run, match, as_json, runs = sys.argv[1:]
rows = [l.rstrip('\n').split('\t') for l in open(times) if l.strip()]
s = json.load(open(summ))
fbytes = os.path.getsize(pcap)
pkts = s['packets']
tools = ['suricata', 'cloudtap-t1', 'cloudtap-t2', 'tcpdump-floor']
label = {'suricata': 'Suricata 7 (--runmode single)', 'cloudtap-t1': 'cloudtap --threads 1',
         'cloudtap-t2': 'cloudtap --threads 2', 'tcpdump-floor': 'tcpdump -r -w /dev/null (floor)'}
res = {}
for t in tools:
    w = [float(r[2]) for r in rows if r[0] == t]
    m = [int(r[3]) for r in rows if r[0] == t]
    med = statistics.median(w)
    res[t] = dict(runs=len(w), wall_s=w, median_wall_s=med, min_wall_s=min(w), max_wall_s=max(w),
                  gbit_s=fbytes * 8 / med / 1e9 if med else None,
                  mpkt_s=pkts / med / 1e6 if med else None,
                  peak_rss_mb_max=max(m) / 1024, peak_rss_mb_median=statistics.median(m) / 1024)
sur = res['suricata']['median_wall_s']
for t in tools:
    res[t]['speedup_vs_suricata'] = sur / res[t]['median_wall_s'] if res[t]['median_wall_s'] else None
t1, t2 = res['cloudtap-t1']['median_wall_s'], res['cloudtap-t2']['median_wall_s']
comp = json.load(open(os.path.join(run, 'compare-t1.json')))
out = dict(capture=pcap, file_bytes=fbytes, packets=pkts, flows=s['flows'], mix=s, runs=int(runs),
           tools=res, cloudtap_t2_vs_t1_speedup=t1 / t2 if t2 else None,
           matches_equal=(match == '0'), match_totals=comp['totals'])
with open(os.path.join(run, 'results.json'), 'w') as f:
    json.dump(out, f, indent=1)
if as_json == '1':
    print(json.dumps(out, indent=1))
else:
    print(f"capture {os.path.basename(pcap)}: {fbytes / 1e9:.3f} GB pcap file, {pkts:,} packets, "
          f"{s['flows']:,} flows; TLS {s['tls_byte_share']:.0%} of bytes, bulk {s['bulk_byte_share']:.0%}, "
          f"IPv6 {s['ipv6_packet_share']:.0%} of packets; {runs} interleaved rounds\n")
    print("| tool | median wall s | Gbit/s | Mpkt/s | peak RSS MB | speed-up vs Suricata |")
    print("|---|---:|---:|---:|---:|---:|")
    for t in tools:
        r = res[t]
        print(f"| {label[t]} | {r['median_wall_s']:.2f} | {r['gbit_s']:.2f} | {r['mpkt_s']:.3f} | "
              f"{r['peak_rss_mb_max']:.0f} | {r['speedup_vs_suricata']:.2f}x |")
    print(f"\ncloudtap 2 threads vs 1 thread: {t1 / t2:.2f}x faster (median {t1:.2f} s -> {t2:.2f} s)")
    print("Gbit/s and Mpkt/s = pcap file bytes * 8 (resp. packets) / median wall time of the whole "
          "process (startup and signature loading included); peak RSS = max over the rounds.")
    tot = comp['totals']
    print("\nmatches (last round): " + ", ".join(
        f"{k}: " + "/".join(str(tot[k][f]) for f in ('all',)) for k in tot) +
          ("  -> equal" if match == '0' else "  -> DIFFERENT (see %s/compare-*.txt)" % run))
PY
if [ "$MATCH" != 0 ]; then
    echo "e2e.sh: match sets differ:" >&2
    cat "$RUN/compare-t1.txt" "$RUN/compare-t2.txt" >&2
    exit 1
fi
