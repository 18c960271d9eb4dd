#!/usr/bin/env bash
# Sustained alerts/s per sink (issue 13), against real receivers on loopback; prints a
# Markdown table (benches/SINKS.md keeps the last one, with this command).
#
#   benches/sinks.sh [N]          N alerts per sink (default 100000, ~1.6 KB each)
#
# Each row runs examples/sink_bench.rs: N copies (distinct event ids) of a real flow-mode
# alert through the real Fanout with policy `block` (the sender waits when the sink's queue
# is full), timed from the first send until finish() has flushed, so the rate is what the
# sink and its receiver sustain, not the capture pipeline. "received" is what the receiver
# holds afterwards (UDP may lose; Redis streams are trimmed by MAXLEN ~).
#
# Receivers: a file; a python3 Unix stream listener; rsyslog (syslog.sh, UDP and TCP, which
# writes every message to two files); Redis (redis.sh; list and stream); Kafka: librdkafka's
# in-process MockCluster, and tansu (a Kafka-wire broker in Rust, in-memory) when
# kafka.sh can start it (SENSOR_KAFKA_IMPL=tansu). Spool: appends with the sink down, then
# replays into Redis (list).
#
# Env: SENSOR_SERVICES_DIR (default ../shared/services), CARGO_TARGET_DIR (default target),
# CARGO_LOCK (default /tmp/cargo.lock: builds are serialised with flock).
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
N=${1:-100000}
[[ "$N" =~ ^[0-9]+$ ]] || { echo "usage: benches/sinks.sh [N]" >&2; exit 2; }
SVC=${SENSOR_SERVICES_DIR:-$(cd ../shared/services && pwd)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
flock -o "${CARGO_LOCK:-/tmp/cargo.lock}" cargo build --release --example sink_bench >&2
BENCH=$CARGO_TARGET_DIR/release/examples/sink_bench

tmp=$(mktemp -d /tmp/cloudtap-sinks-bench.XXXXXX)
pids=()
svcs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for s in "${svcs[@]}"; do bash "$SVC/${s%%:*}.sh" stop "${s#*:}" >/dev/null 2>&1 || true; done
  rm -rf -- "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# service KIND DIR: starts it on a free port, sets PORT; stopped at exit. (Not run in
# $(...): the array of services to stop must be this shell's.)
service() {
  local kind=$1 dir=$2
  PORT=$(free_port)
  bash "$SVC/$kind.sh" start "$PORT" "$dir" >/dev/null || return 1
  svcs+=("$kind:$dir")
}

rows=()
# row NAME URL RECEIVED RESULT-LINE
row() {
  local name=$1 url=$2 recv=$3 res=$4 secs rate
  secs=$(sed -n 's/.* secs=\([0-9.]*\).*/\1/p' <<<"$res")
  rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$res")
  rows+=("| $name | \`$url\` | $N | $secs | $rate | $recv | ${res#RESULT } |")
  echo "sinks.sh: $name: $rate alerts/s ($res)" >&2
}

# settle COMMAND: prints the count COMMAND prints once it stops growing (bounded: 30 s)
settle() {
  local last=-1 n i
  for i in $(seq 1 150); do
    n=$("$@")
    [[ "$n" == "$last" || "$n" -ge "$N" ]] && break
    last=$n
    sleep 0.2
  done
  echo "$n"
}

# file
res=$("$BENCH" send "file:$tmp/out.json" "$N")
row file "file:PATH" "$(wc -l <"$tmp/out.json")" "$res"
rm -f -- "$tmp/out.json"

# unix stream, python3 listener counting lines
python3 - "$tmp/u.sock" "$tmp/u.count" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8)
n = 0
while True:
    c, _ = s.accept()
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        n += b.count(b"\n")
    c.close()
    open(sys.argv[2], "w").write(str(n))
EOF
pids+=($!)
for _ in $(seq 1 50); do [[ -S "$tmp/u.sock" ]] && break; sleep 0.1; done
res=$("$BENCH" send "unix+stream:$tmp/u.sock" "$N")
ucount() { cat "$tmp/u.count" 2>/dev/null || echo 0; }
row "unix stream" "unix+stream:PATH" "$(settle ucount)" "$res"

# syslog (rsyslog, UDP and TCP)
service syslog "$tmp/syslog"; sp=$PORT
scount() { wc -l <"$tmp/syslog/messages.jsonl"; }
res=$("$BENCH" send "syslog+udp://127.0.0.1:$sp" "$N")
row "syslog udp" "syslog+udp://HOST:PORT" "$(settle scount)" "$res"
bash "$SVC/syslog.sh" stop "$tmp/syslog" >/dev/null 2>&1
bash "$SVC/syslog.sh" start "$sp" "$tmp/syslog" >/dev/null
res=$("$BENCH" send "syslog+tcp://127.0.0.1:$sp" "$N")
row "syslog tcp" "syslog+tcp://HOST:PORT" "$(settle scount)" "$res"

# redis list, stream
service redis "$tmp/redis"; rp=$PORT
res=$("$BENCH" send "redis://127.0.0.1:$rp/bl?mode=list" "$N")
row "redis list" "redis://HOST:PORT/KEY?mode=list" "$(redis-cli -p "$rp" llen bl)" "$res"
redis-cli -p "$rp" del bl >/dev/null
res=$("$BENCH" send "redis://127.0.0.1:$rp/bs?mode=stream" "$N")
row "redis stream" "redis://HOST:PORT/KEY?mode=stream" "$(redis-cli -p "$rp" xlen bs) (XLEN)" "$res"
redis-cli -p "$rp" del bs >/dev/null

# kafka: MockCluster, then tansu if it can be started
res=$("$BENCH" kafka-mock "$N")
row "kafka (MockCluster)" "kafka://HOST:PORT/TOPIC" "acked" "$res"
if SENSOR_KAFKA_IMPL=tansu service kafka "$tmp/kafka" 2>"$tmp/kafka.err"; then
  kp=$PORT
  "$BENCH" kafka-topic "127.0.0.1:$kp" alerts
  res=$("$BENCH" send "kafka://127.0.0.1:$kp/alerts" "$N")
  row "kafka (tansu 0.6.0)" "kafka://HOST:PORT/TOPIC" "acked" "$res"
else
  echo "sinks.sh: tansu not started, no row: $(tail -n 3 "$tmp/kafka.err")" >&2
fi

# spool: append with the sink down (nothing listens on dp), then replay into Redis there
dp=$(free_port)
res=$("$BENCH" send "redis://127.0.0.1:$dp/sp?mode=list" "$N" --spool "$tmp/spool" --flush-timeout 0)
row "spool append (sink down)" "--spool DIR" "$(du -sb "$tmp/spool" | cut -f1) bytes" "$res"
bash "$SVC/redis.sh" start "$dp" "$tmp/redis2" >/dev/null
svcs+=("redis:$tmp/redis2")
res=$("$BENCH" replay "redis://127.0.0.1:$dp/sp?mode=list" "$N" --spool "$tmp/spool")
row "spool replay -> redis list" "--spool DIR" "$(redis-cli -p "$dp" llen sp)" "$res"

echo "Sustained alerts/s per sink, $N alerts of ~1.6 KB each, $(nproc) cores, $(date -u +%Y-%m-%d)."
echo "Command: \`benches/sinks.sh $N\`"
echo
echo "| sink | URL | alerts | seconds | alerts/s | received | counters |"
echo "|---|---|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
