#!/usr/bin/env bash
# Issue 11: throughput on the benchmark mix with every detection on, against the engine before
# the detection stage, in the same run (interleaved rounds, page cache warm, median wall time).
#
#   CLOUDTAP_BASE=/path/to/old/cloudtap benches/stage_overhead.sh [--runs N] [--threads N]
#
# The old binary is built from the commit before the stage (e.g. `git worktree add /tmp/base
# 3b84333 && cargo build --release` there). The mix comes from benches/gen_mix.py as in
# benches/e2e.sh ($BENCH_MIX_DIR, default target/bench-mix: mix.pcap and lists/). Rows:
#   old, bundled packs          - every list hit alerts (the old default)
#   new, bundled packs, entity  - the default: detection stage, plus [hours], a [[policy]]
#                                 and --state (a fresh baseline each round)
#   new, ... + flow records     - the same with --types alert,flow (a record per flow)
#   old / new, benchmark lists  - the engine benchmark's lists (new: --alert-mode flow)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS=5
THREADS=2
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--threads N]" >&2; exit 2 ;;
    esac
done
NEW="${CLOUDTAP_BIN:-$ROOT/target/release/cloudtap}"
OLD="${CLOUDTAP_BASE:?set CLOUDTAP_BASE to the binary before the detection stage}"
MIX="${BENCH_MIX_DIR:-$ROOT/target/bench-mix}"
PCAP="$MIX/mix.pcap"
LISTS="$MIX/lists"
[ -s "$PCAP" ] || { echo "no $PCAP: run benches/e2e.sh once, or benches/gen_mix.py --out $PCAP --lists-dir $LISTS" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp "$NEW" "$WORK/new"; cp "$OLD" "$WORK/old"
cat > "$WORK/all.toml" <<'TOML'
[hours]
timezone = "Europe/Berlin"
[[policy]]
name = "cloud storage only from CI"
categories = ["cloud-storage"]
allow = ["10.99.9.0/24"]
TOML
SIZE=$(stat -c %s "$PCAP")
PKTS=""
run() { # name, command...
    local name="$1"; shift
    cat "$PCAP" > /dev/null
    rm -rf "$WORK/state"
    /usr/bin/time -f "%e %M" -o "$WORK/t" "$@" > "$WORK/eve" 2> "$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    read -r wall rss < "$WORK/t"
    echo "$name $wall $rss $(grep -c '"event_type":"alert"' "$WORK/eve" || true)" >> "$WORK/results"
}
for r in $(seq 1 "$RUNS"); do
    run old-bundled "$WORK/old" -q --threads "$THREADS" -r "$PCAP"
    run new-bundled-entity "$WORK/new" -q --threads "$THREADS" -r "$PCAP" --config "$WORK/all.toml" --state "$WORK/state"
    run new-bundled-entity+flow "$WORK/new" -q --threads "$THREADS" -r "$PCAP" --config "$WORK/all.toml" --state "$WORK/state" --types alert,flow
    run old-lists "$WORK/old" -q --threads "$THREADS" -r "$PCAP" --signatures "$LISTS"
    run new-lists-flow "$WORK/new" -q --threads "$THREADS" -r "$PCAP" --signatures "$LISTS" --alert-mode flow
    echo "round $r done" >&2
done
PKTS=$("$WORK/new" --threads 1 -r "$PCAP" --eve /dev/null 2>&1 | sed -n 's/.*packets \([0-9]*\) .*/\1/p' | head -1)
python3 - "$WORK/results" "$SIZE" "$PKTS" "$THREADS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    n, wall, rss, alerts = line.split()
    rows[n].append((float(wall), int(rss), int(alerts)))
size, pkts, threads = int(sys.argv[2]), int(sys.argv[3] or 0), sys.argv[4]
print(f"| binary, signatures (--threads {threads}) | median wall s | Gbit/s | Mpkt/s | peak RSS MB | alert records |")
print("|---|---:|---:|---:|---:|---:|")
med = {}
for n in ["old-bundled", "new-bundled-entity", "new-bundled-entity+flow", "old-lists", "new-lists-flow"]:
    v = rows[n]
    w = statistics.median(x[0] for x in v)
    med[n] = w
    print(f"| {n} | {w:.2f} | {size*8/w/1e9:.2f} | {pkts/w/1e6:.3f} | {max(x[1] for x in v)/1024:.0f} | {v[-1][2]} |")
for a, b in [("old-bundled", "new-bundled-entity"), ("old-bundled", "new-bundled-entity+flow"), ("old-lists", "new-lists-flow")]:
    print(f"{b} vs {a}: {100*(med[b]/med[a]-1):+.1f}% wall time")
PY
