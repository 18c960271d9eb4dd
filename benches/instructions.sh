#!/usr/bin/env bash
# Instructions per packet, old binary against new, on the same capture (issue 14's "the
# line-rate engine does not drop by more than 3%"). valgrind's callgrind counts instructions,
# not seconds: the figure is the same whatever else the machine is doing (a 2-core machine
# shared with builds gives no stable wall time), and it is what wall time follows on a
# CPU-bound single-threaded run.
#
#   CLOUDTAP_BASE=/path/to/old/cloudtap benches/instructions.sh [--scale S] [--seed N]
#
# The capture and lists come from benches/gen_mix.py (cached in $BENCH_MIX_DIR, default
# target/bench-mix, as benches/e2e.sh does). Rows, each with --threads 1:
#   benchmark lists, --alert-mode flow   - the engine benchmark (e2e.sh's configuration)
#   bundled packs, entity                - the default configuration
# Prints a Markdown table: instructions (Ir) in total and per packet, and the change.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SCALE=0.05
SEED=1
while [ $# -gt 0 ]; do
    case "$1" in
    --scale) SCALE="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    *) echo "usage: $0 [--scale S] [--seed N]" >&2; exit 2 ;;
    esac
done
NEW="${CLOUDTAP_BIN:-$ROOT/target/release/cloudtap}"
OLD="${CLOUDTAP_BASE:?set CLOUDTAP_BASE to the binary to compare against}"
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
MIX="${BENCH_MIX_DIR:-$ROOT/target/bench-mix}"
NAME="mix-scale${SCALE}-seed${SEED}"
PCAP="$MIX/$NAME.pcap"
LISTS="$MIX/$NAME.lists"
mkdir -p "$MIX"
if [ ! -s "$PCAP" ] || [ ! -s "$LISTS/expected.json" ]; then
    echo "instructions: generating $PCAP" >&2
    python3 "$ROOT/benches/gen_mix.py" --out "$PCAP.tmp" --scale "$SCALE" --seed "$SEED" \
        --lists-dir "$LISTS" >&2
    mv "$PCAP.tmp" "$PCAP"
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp "$NEW" "$WORK/new"; cp "$OLD" "$WORK/old"
PKTS=$(capinfos -c -M "$PCAP" 2>/dev/null | awk '/Number of packets/ {print $NF}') || PKTS=""
[ -n "$PKTS" ] || PKTS=$(tcpdump -r "$PCAP" -nn 2>/dev/null | wc -l)

ir() {  # binary args... -> total instructions of the run (every thread)
    local out="$WORK/cg.$RANDOM"
    valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$@" >/dev/null 2>"$out.log" \
        || { echo "instructions: valgrind run failed: $*" >&2; tail -5 "$out.log" >&2; exit 1; }
    local total=0 n
    for f in "$out".*; do
        case "$f" in *.log) continue ;; esac
        n=$(awk '/^summary:/ {print $2}' "$f")
        total=$((total + ${n:-0}))
    done
    echo "$total"
}

# Start-up (loading the signatures: 120,000 provider ranges with the bundled packs) is
# measured on the capture's first packet alone and subtracted: the per-packet column is the
# packet path only, the start-up column what a run pays once.
ONE="$WORK/one.pcap"
editcap -r "$PCAP" "$ONE" 1 2>/dev/null || tcpdump -r "$PCAP" -c 1 -w "$ONE" 2>/dev/null
echo "| configuration | old start-up Ir | new start-up Ir | old Ir/pkt | new Ir/pkt | packet path change |"
echo "|---|---:|---:|---:|---:|---:|"
row() {  # label args...
    local label="$1"; shift
    local o n o1 n1
    o1=$(ir "$WORK/old" -q --threads 1 -r "$ONE" --eve /dev/null "$@")
    n1=$(ir "$WORK/new" -q --threads 1 -r "$ONE" --eve /dev/null "$@")
    o=$(ir "$WORK/old" -q --threads 1 -r "$PCAP" --eve /dev/null "$@")
    n=$(ir "$WORK/new" -q --threads 1 -r "$PCAP" --eve /dev/null "$@")
    python3 - "$label" "$o" "$n" "$o1" "$n1" "$PKTS" <<'PY'
import sys
label = sys.argv[1]
o, n, o1, n1, p = map(int, sys.argv[2:])
po, pn = (o - o1) / (p - 1), (n - n1) / (p - 1)
print(f"| {label} | {o1:,} | {n1:,} | {po:,.0f} | {pn:,.0f} | {100*(pn-po)/po:+.2f}% |")
PY
}
row "benchmark lists, --alert-mode flow" --signatures "$LISTS" --alert-mode flow
row "bundled packs, entity (default)"
echo
echo "capture: $PCAP ($PKTS packets); old: $OLD; new: $NEW"
