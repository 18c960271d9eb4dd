#!/usr/bin/env bash
# Live-capture benchmark (issue 12): cloudtap's AF_PACKET and libpcap back ends next to
# Suricata 7 in af-packet mode, on the same veth, in the same run.
#
#   benches/live.sh [--scale S] [--seed N] [--rates "100 250 500 1000 2000"] [--no-top]
#                   [--backends "afpacket pcap suricata"] [--threads N] [--buffer-size MB]
#                   [--budget SECS] [--no-append] [--keep]
#
# 1. Checks everything first (root, tools, a cloudtap with `-i`/`--capture`, Suricata 7;
#    Suricata is installed from bookworm-backports when missing, adding that source only if
#    absent).
# 2. The capture: benches/gen_mix.py at --scale (default 0.2: ~300 MB, ~330 k packets), cached
#    in $LIVE_DIR (default /tmp/cloudtap-live-bench) like e2e.sh caches its own; then
#    tcprewrite --pnat moves every address into test ranges (IPv4 198.18.0.0/15, RFC 2544;
#    IPv6 2001:db8::/32, RFC 3849), cached too.  Nothing else is ever replayed.  The lists both
#    sensors load are gen_mix.py's less the address ranges overlapping those test ranges.
# 3. Its own network namespaces ct-bench-tx and ct-bench-rx joined by a veth (192.0.2.1/30 and
#    192.0.2.2/30, IPv6 off, GRO/GSO/TSO off); removed by a trap on every exit.
# 4. For each back end and each step (every --rates value with tcpreplay --mbps, then
#    --topspeed): start the sensor on the rx end, wait until its capture is open, replay the
#    whole capture from the tx namespace (tcpreplay -K: preloaded, no disk), wait 2 s, SIGTERM,
#    and keep tcpreplay's output, the sensor's summary/log and EVE output.  Every wait has a
#    timeout; a step that would overrun --budget (default 600 s for the whole script) is
#    skipped (top-speed steps are kept while the hard limit, budget + 300 s, holds).
# 5. benches/live_report.py prints, per back end, the highest rate with zero drops and the drop
#    rate at top speed, and the per-step table; unless --no-append, both go to benches/LIVE.md
#    with the date and the machine.
#
# Back ends: afpacket = cloudtap -i IF --capture afpacket; pcap = cloudtap -i IF --capture pcap;
# suricata = suricata --af-packet=IF --runmode workers with the benchmark lists converted by
# benches/lists-to-suricata.py (the rules e2e.sh uses) and an af-packet section of the same
# ring size and threads.  cloudtap runs with the same lists (--alert-mode flow, as in e2e.sh).
#
# Environment: CLOUDTAP (default target/release/cloudtap; never built here), SURICATA (default
# suricata), LIVE_DIR (default /tmp/cloudtap-live-bench).  Needs root, iproute2, tcpreplay
# (tcpreplay + tcprewrite), python3, coreutils timeout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCALE=0.2
SEED=1
RATES="100 250 500 1000 2000"
TOP=1
BACKENDS="afpacket pcap suricata"
THREADS="$(nproc)"
BUFFER_MB=64
BUDGET=600
APPEND=1
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --rates) RATES="$2"; shift 2 ;;
        --no-top) TOP=0; shift ;;
        --backends) BACKENDS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --buffer-size) BUFFER_MB="$2"; shift 2 ;;
        --budget) BUDGET="$2"; shift 2 ;;
        --no-append) APPEND=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "live.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "live.sh: $*" >&2; exit 2; }
log() { echo "live: $*" >&2; }
isnum() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# ---- 1. checks, before anything is changed ----------------------------------------------------
python3 -c "import sys; s=float(sys.argv[1]); assert 0 < s <= 2" "$SCALE" 2>/dev/null \
    || die "--scale must be a number in (0, 2]"
isnum "$SEED" || die "--seed must be a number"
isnum "$THREADS" && [ "$THREADS" -ge 1 ] && [ "$THREADS" -le 64 ] || die "--threads must be 1..64"
isnum "$BUFFER_MB" && [ "$BUFFER_MB" -ge 1 ] && [ "$BUFFER_MB" -le 4096 ] || die "--buffer-size must be 1..4096 (MB)"
isnum "$BUDGET" && [ "$BUDGET" -ge 60 ] && [ "$BUDGET" -le 7200 ] || die "--budget must be 60..7200 (s)"
nrates=0
for r in $RATES; do
    isnum "$r" && [ "$r" -ge 1 ] && [ "$r" -le 100000 ] || die "--rates: '$r' is not a rate in Mbit/s (1..100000)"
    nrates=$((nrates + 1))
done
[ "$nrates" -le 20 ] || die "--rates: at most 20 rates"
[ "$nrates" -gt 0 ] || [ "$TOP" = 1 ] || die "nothing to do: no --rates and --no-top"
WANT_CT=0; WANT_SURI=0; nback=0
for b in $BACKENDS; do
    case "$b" in
        afpacket|pcap) WANT_CT=1 ;;
        suricata) WANT_SURI=1 ;;
        *) die "--backends: unknown back end '$b' (afpacket, pcap, suricata)" ;;
    esac
    nback=$((nback + 1))
done
[ "$nback" -gt 0 ] || die "--backends is empty"
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, AF_PACKET)"
for tool in ip python3 timeout tcpreplay tcprewrite sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install -y iproute2 python3 tcpreplay)"
done

BIN="${CLOUDTAP:-$ROOT/target/release/cloudtap}"
if [ "$WANT_CT" = 1 ]; then
    [ -x "$BIN" ] || die "$BIN is not executable (build it, or set CLOUDTAP=/path/to/cloudtap)"
    # A cloudtap without live capture says `-i` is reserved and has no --capture option.
    help="$("$BIN" --help 2>&1 || true)"
    if ! printf '%s\n' "$help" | grep -q -- '--capture' \
        || printf '%s\n' "$help" | grep -E -- '--interface' | grep -qi 'reserved'; then
        die "$BIN has no live capture yet (no --capture in --help); run with --backends suricata"
    fi
fi

SURICATA="${SURICATA:-suricata}"
install_suricata() {
    grep -q 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null \
        || die "Suricata 7 is missing and this is not Debian 12: install Suricata 7, or set SURICATA"
    if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding bookworm-backports to /etc/apt/sources.list.d/bookworm-backports.list"
        echo 'deb http://deb.debian.org/debian bookworm-backports main' \
            > /etc/apt/sources.list.d/bookworm-backports.list
    fi
    log "apt-get install -t bookworm-backports suricata"
    timeout 600 apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq -t bookworm-backports suricata >&2
}
if [ "$WANT_SURI" = 1 ]; then
    if ! command -v "$SURICATA" >/dev/null 2>&1; then
        [ "$SURICATA" = suricata ] || die "$SURICATA not found"
        install_suricata
    fi
    "$SURICATA" -V 2>/dev/null | grep -q 'version 7\.' \
        || die "$SURICATA is not Suricata 7 ($("$SURICATA" -V 2>&1 | head -1))"
fi

START=$(date +%s)
HARD=$((BUDGET + 300))
elapsed() { echo $(( $(date +%s) - START )); }

# ---- 2. capture (cached) ----------------------------------------------------------------------
LIVE_DIR="${LIVE_DIR:-/tmp/cloudtap-live-bench}"
mkdir -p "$LIVE_DIR"
NAME="mix-scale${SCALE}-seed${SEED}"
PCAP="$LIVE_DIR/$NAME.pcap"
LISTS="$LIVE_DIR/$NAME.lists"
STAMP="$LIVE_DIR/$NAME.stamp"
GENHASH="$(sha256sum "$ROOT/benches/gen_mix.py" | cut -c1-16)"
if [ -s "$PCAP" ] && [ -s "$LISTS/mix-summary.json" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$GENHASH" ]; then
    log "cached capture $PCAP"
else
    log "generating $PCAP (gen_mix.py --scale $SCALE --seed $SEED)"
    rm -f "$PCAP" "$STAMP" "$LIVE_DIR/$NAME"-rw.*
    timeout 1800 python3 "$ROOT/benches/gen_mix.py" --out "$PCAP.tmp" --scale "$SCALE" --seed "$SEED" \
        --lists-dir "$LISTS" --quiet >&2
    mv "$PCAP.tmp" "$PCAP"
    echo "$GENHASH" > "$STAMP"
fi
# Every address into test ranges (first match wins; host bits kept): clients 10/8 and
# 192.168/16 to the two halves of 198.18.0.0/16, servers to 198.19.0.0/16; IPv6 clients to
# 2001:db8:1:1::/64, servers to 2001:db8::/32 (tcprewrite 4.4 mishandles prefixes that are not
# a multiple of 16 bits for IPv6, so no 3fff::/20).
PNAT='10.0.0.0/8:198.18.0.0/17,192.168.0.0/16:198.18.128.0/17,0.0.0.0/0:198.19.0.0/16,[2a0e:8f02:21c0:1::/64]:[2001:db8:1:1::/64],[::/0]:[2001:db8::/32]'
RW="$LIVE_DIR/$NAME-rw.pcap"
RWSTAMP="$GENHASH $(printf '%s' "$PNAT" | sha256sum | cut -c1-16)"
if [ -s "$RW" ] && [ "$(cat "$RW.stamp" 2>/dev/null)" = "$RWSTAMP" ]; then
    log "cached rewritten capture $RW"
else
    log "tcprewrite --pnat (addresses into 198.18.0.0/15 and 2001:db8::/32)"
    rm -f "$RW" "$RW.stamp"
    timeout 600 tcprewrite --pnat="$PNAT" -i "$PCAP" -o "$RW.tmp" >&2
    mv "$RW.tmp" "$RW"
    echo "$RWSTAMP" > "$RW.stamp"
fi
read -r PKTS BYTES < <(python3 - "$RW" <<'PY'
import struct, sys
f = open(sys.argv[1], 'rb')
magic = f.read(24)[:4]
e = '<' if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
n = b = 0
while True:
    h = f.read(16)
    if len(h) < 16:
        break
    incl, orig = struct.unpack(e + 'II', h[8:16])
    f.seek(incl, 1)
    n += 1
    b += incl
print(n, b)
PY
)
log "capture: $PKTS packets, $BYTES bytes of frames"

# The lists both sensors load: gen_mix.py's, less every address range that overlaps the ranges
# the capture was rewritten into (its .cidrs list has 2001:db8::/32 and the TEST-NETs as edge
# cases; kept, every rewritten IPv6 flow would match, and the engines differ on flows whose
# both ends match).
LLISTS="$LIVE_DIR/$NAME.live-lists"
rm -rf "$LLISTS"
cp -r "$LISTS" "$LLISTS"
python3 - "$LLISTS" <<'PY'
import glob, ipaddress, os, sys
used = [ipaddress.ip_network(n) for n in ('198.18.0.0/15', '192.0.2.0/24', '2001:db8::/32')]
for path in glob.glob(os.path.join(sys.argv[1], '*.cidrs')):
    out, dropped = [], 0
    for line in open(path):
        v = line.split(' #')[0].strip()
        if v and not v.startswith('#'):
            try:
                n = ipaddress.ip_network(v, strict=False)
            except ValueError:
                n = None
            if n is not None and any(n.version == u.version and n.overlaps(u) for u in used):
                dropped += 1
                continue
        out.append(line)
    open(path, 'w').writelines(out)
    print(f"live: {os.path.basename(path)}: {dropped} ranges overlapping the rewritten ones left out",
          file=sys.stderr)
PY
LISTS="$LLISTS"

# Suricata: the lists as rules, and a configuration with an af-packet section.
SURI="$LIVE_DIR/$NAME.suricata"
IF_TX=ct-btx0
IF_RX=ct-brx0
NS_TX=ct-bench-tx
NS_RX=ct-bench-rx
if [ "$WANT_SURI" = 1 ]; then
    timeout 300 python3 "$ROOT/benches/lists-to-suricata.py" "$LISTS" "$SURI" >/dev/null
    # ring-size is in frames per thread: frames of 1616 bytes (MTU 1500 + headers, aligned),
    # so the ring holds --buffer-size MB per worker like cloudtap's.
    RING=$(( BUFFER_MB * 1048576 / 1616 ))
    grep -q '^af-packet:' "$SURI/suricata.yaml" && die "lists-to-suricata.py now writes an af-packet section: update live.sh"
    { cat "$SURI/suricata.yaml"; cat <<EOF
# added by benches/live.sh
af-packet:
  - interface: $IF_RX
    threads: $THREADS
    cluster-id: 99
    cluster-type: cluster_flow
    defrag: yes
    use-mmap: yes
    tpacket-v3: yes
    ring-size: $RING
    block-size: 1048576
    checksum-checks: no
EOF
    } > "$SURI/live.yaml"
fi

# ---- 3. namespaces ----------------------------------------------------------------------------
SENSOR_PID=""
REPLAY_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # timeout(1) leads its own process group: -PID ends it and the command it runs.
    if [ -n "$REPLAY_PID" ]; then kill -KILL -- "-$REPLAY_PID" 2>/dev/null || true; fi
    if [ -n "$SENSOR_PID" ]; then
        kill -KILL -- "-$SENSOR_PID" 2>/dev/null || true
        wait "$SENSOR_PID" 2>/dev/null || true
    fi
    ip netns del "$NS_TX" 2>/dev/null || true
    ip netns del "$NS_RX" 2>/dev/null || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for ns in "$NS_TX" "$NS_RX"; do
    if ip netns list | grep -qw "$ns"; then log "removing a leftover netns $ns"; ip netns del "$ns"; fi
done
ip netns add "$NS_TX"
ip netns add "$NS_RX"
ip link add "$IF_TX" type veth peer name "$IF_RX"
ip link set "$IF_TX" netns "$NS_TX"
ip link set "$IF_RX" netns "$NS_RX"
for pair in "$NS_TX:$IF_TX:192.0.2.1/30" "$NS_RX:$IF_RX:192.0.2.2/30"; do
    IFS=: read -r ns ifc addr <<<"$pair"
    # No IPv6 (no router solicitations or MLD reports in the count), no offloads.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" addr add "$addr" dev "$ifc"
    ip -n "$ns" link set "$ifc" up
    ip -n "$ns" link set lo up
    if command -v ethtool >/dev/null 2>&1; then
        ip netns exec "$ns" ethtool -K "$ifc" gro off gso off tso off >/dev/null 2>&1 || true
    fi
done

# ---- 4. runs ----------------------------------------------------------------------------------
RUN="$LIVE_DIR/run"
rm -rf "$RUN"
mkdir -p "$RUN"
CT_VERSION="-"
[ "$WANT_CT" = 1 ] && CT_VERSION="$("$BIN" --version 2>&1 | head -1 || true)"
SURI_VERSION="-"
[ "$WANT_SURI" = 1 ] && SURI_VERSION="$("$SURICATA" -V 2>&1 | head -1 | sed "s/^This is //" || true)"
cat > "$RUN/run.txt" <<EOF
date=$(date -u '+%Y-%m-%d %H:%M UTC')
capture=$(basename "$PCAP") (gen_mix.py --scale $SCALE --seed $SEED)
packets=$PKTS
bytes=$BYTES
threads=$THREADS
buffer_mb=$BUFFER_MB
tcpreplay=$(tcpreplay -V 2>&1 | head -1 | awk '{print $3}')
cloudtap_version=$CT_VERSION$( [ "$WANT_CT" = 1 ] && date -u -r "$BIN" '+ (binary of %Y-%m-%d %H:%M UTC)')
suricata_version=$SURI_VERSION
rates=$RATES
EOF

rx_stat() { ip netns exec "$NS_RX" cat "/sys/class/net/$IF_RX/statistics/$1" 2>/dev/null || echo 0; }
packet_sockets() { ip netns exec "$NS_RX" sh -c 'tail -n +2 /proc/net/packet | wc -l'; }

# start_sensor BACKEND DIR: starts it in the rx namespace and waits until its capture is open.
start_sensor() {
    local be="$1" d="$2" n prev=-1 stable=0
    case "$be" in
        suricata)
            ip netns exec "$NS_RX" timeout -s KILL 900 "$SURICATA" -c "$SURI/live.yaml" \
                --af-packet="$IF_RX" --runmode workers -k none -l "$d" -S "$SURI/bench.rules" -vv \
                > "$d/stderr" 2>&1 &
            SENSOR_PID=$!
            for _ in $(seq 1 180); do  # 90 s
                grep -q 'Engine started' "$d/stderr" 2>/dev/null && return 0
                kill -0 "$SENSOR_PID" 2>/dev/null || return 1
                sleep 0.5
            done
            return 1 ;;
        afpacket|pcap)
            ip netns exec "$NS_RX" timeout -s KILL 900 "$BIN" -i "$IF_RX" --capture "$be" \
                --threads "$THREADS" --buffer-size "$BUFFER_MB" --signatures "$LISTS" \
                --alert-mode flow --types alert,stats --stats-interval 2 --shutdown-timeout 10 \
                --eve "$d/eve.json" > "$d/stdout" 2> "$d/stderr" &
            SENSOR_PID=$!
            # Open when it says `capturing on IF`, or (should that message change) when its
            # packet socket(s) exist and their number held for 1 s.
            for _ in $(seq 1 60); do  # 30 s
                kill -0 "$SENSOR_PID" 2>/dev/null || return 1
                if grep -q "capturing on $IF_RX" "$d/stderr" 2>/dev/null; then sleep 0.5; return 0; fi
                n=$(packet_sockets)
                if [ "$n" -gt 0 ] && [ "$n" = "$prev" ]; then
                    stable=$((stable + 1))
                    [ "$stable" -ge 2 ] && return 0
                else
                    stable=0
                fi
                prev=$n
                sleep 0.5
            done
            return 1 ;;
    esac
}

# stop_sensor DIR: SIGTERM, up to 25 s to drain and exit, then SIGKILL.
stop_sensor() {
    local d="$1" rc=0 killed=0
    kill -TERM "$SENSOR_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$SENSOR_PID" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$SENSOR_PID" 2>/dev/null; then
        kill -KILL -- "-$SENSOR_PID" 2>/dev/null || true  # timeout(1)'s group: it and the sensor
        killed=1
    fi
    wait "$SENSOR_PID" 2>/dev/null || rc=$?
    SENSOR_PID=""
    echo "rc=$rc" >> "$d/meta"
    echo "killed=$killed" >> "$d/meta"
}

# est STEP: seconds a step takes (replay + start, drain and stop).
est() {
    if [ "$1" = top ]; then echo 20; else echo $(( BYTES * 8 / ($1 * 1000000) + 15 )); fi
}

STEPS="$RATES"
if [ "$TOP" = 1 ]; then STEPS="$STEPS top"; fi
FAILED=0
bi=0
T0=$(elapsed)
for be in $BACKENDS; do
    bi=$((bi + 1))
    # Each back end has an equal share of what the budget leaves after the preparation.
    deadline=$(( T0 + (BUDGET - T0) * bi / nback ))
    for step in $STEPS; do
        d="$RUN/$be/$step"
        mkdir -p "$d"
        echo "backend=$be" > "$d/meta"
        echo "step=$step" >> "$d/meta"
        now=$(elapsed)
        need=$(est "$step")
        if [ "$step" = top ]; then
            if [ $((now + need)) -gt "$HARD" ]; then
                echo "skipped=hard limit (${HARD} s)" >> "$d/meta"; log "$be $step: skipped (hard limit)"; continue
            fi
        elif [ $((now + need + 20 * TOP)) -gt "$deadline" ]; then
            echo "skipped=budget (${BUDGET} s)" >> "$d/meta"; log "$be --mbps $step: skipped (budget)"; continue
        fi
        if ! start_sensor "$be" "$d"; then
            log "$be $step: the sensor did not start (see $d/stderr):"
            tail -5 "$d/stderr" >&2 || true
            [ -n "$SENSOR_PID" ] && stop_sensor "$d"
            FAILED=1
            echo "skipped=sensor did not start" >> "$d/meta"
            continue
        fi
        echo "rx_packets_before=$(rx_stat rx_packets)" >> "$d/meta"
        echo "rx_dropped_before=$(rx_stat rx_dropped)" >> "$d/meta"
        if [ "$step" = top ]; then
            speed=(--topspeed); tmo=180
        else
            speed=(--mbps "$step"); tmo=$(( BYTES * 8 * 3 / (step * 1000000) + 60 ))
        fi
        log "$be: tcpreplay ${speed[*]} ($(elapsed) s elapsed)"
        ip netns exec "$NS_TX" timeout -s KILL "$tmo" tcpreplay -i "$IF_TX" -K "${speed[@]}" "$RW" \
            > "$d/tcpreplay.txt" 2>&1 &
        REPLAY_PID=$!
        trc=0
        wait "$REPLAY_PID" || trc=$?
        REPLAY_PID=""
        echo "tcpreplay_rc=$trc" >> "$d/meta"
        [ "$trc" = 0 ] || { log "$be $step: tcpreplay exited $trc"; tail -3 "$d/tcpreplay.txt" >&2; }
        sleep 2  # let the sensor empty its ring
        echo "rx_packets_after=$(rx_stat rx_packets)" >> "$d/meta"
        echo "rx_dropped_after=$(rx_stat rx_dropped)" >> "$d/meta"
        stop_sensor "$d"
        log "$be $step: sensor exit $(sed -n 's/^rc=//p' "$d/meta")$(grep -q '^killed=1' "$d/meta" && echo ' (killed)')"
    done
done

# ---- 5. report --------------------------------------------------------------------------------
args=("$RUN" --json "$RUN/results.json")
[ "$APPEND" = 1 ] && args+=(--append "$ROOT/benches/LIVE.md")
python3 "$ROOT/benches/live_report.py" "${args[@]}"
log "done in $(elapsed) s; raw results in $RUN"
[ "$KEEP" = 1 ] || rm -f "$RUN"/*/*/eve.json
exit "$FAILED"
