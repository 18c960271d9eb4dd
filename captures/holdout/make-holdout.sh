#!/bin/bash
# Build the cloudtap HOLDOUT captures from real programs in two private network namespaces
# ("htlab-cli" 10.98.0.1 / fd98::1 and "htlab-srv" 10.98.0.2 / fd98::2, veth hc <-> hs).
# Same approach as ../make-captures.sh, different traffic.  Nothing is sent outside the
# namespaces (plus 127.0.0.53 on the client netns' own loopback).
# usage:  sudo captures/holdout/make-holdout.sh   [ONLY="tls dnstypes ..."]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
H=$HERE/../helpers
OUT=${OUT:-$HERE}
PY=${PY:-$(command -v python3)}   # needs aioquic for the quic scenario
export PY
CLI=htlab-cli
SRV=htlab-srv
MAC_C=02:98:00:00:00:01
MAC_S=02:98:00:00:00:02
S4=10.98.0.2
S6=fd98::2
TMP=$(mktemp -d /tmp/htlab.XXXXXX)
PIDS=()
ONLY=${ONLY:-}

log() { echo "== $*" >&2; }
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null; done
  ip netns del $CLI 2>/dev/null
  ip netns del $SRV 2>/dev/null
  rm -rf /etc/netns/$CLI
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

inc() { ip netns exec $CLI "$@"; }
bg_srv() { ip netns exec $SRV timeout 900 "$@" >>"$TMP/servers.log" 2>&1 & PIDS+=($!); }
bg_cli() { ip netns exec $CLI timeout 900 "$@" >>"$TMP/servers.log" 2>&1 & PIDS+=($!); }
wait_listen() { # ns proto(t|u) port
  for _ in $(seq 1 50); do
    ip netns exec "$1" ss -Hln"$2" "sport = :$3" | grep -q . && return 0
    sleep 0.1
  done
  echo "server on $2/$3 did not come up" >&2; return 1
}
set_resolver() {
  mkdir -p /etc/netns/$CLI
  printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$1" >/etc/netns/$CLI/resolv.conf
  printf '127.0.0.1 localhost\n::1 localhost\n' >/etc/netns/$CLI/hosts
}

CAP=
cap_begin() { # file tool(tcpdump|dumpcap) args...
  local f=$1 tool=$2; shift 2
  if [ "$tool" = dumpcap ]; then
    inc timeout 300 dumpcap -q "$@" -w "$TMP/$f" >"$TMP/$f.log" 2>&1 &
  else
    inc timeout 300 tcpdump -Z root -U "$@" -w "$TMP/$f" >"$TMP/$f.log" 2>&1 &
  fi
  CAP=$!; PIDS+=($CAP)
  for _ in $(seq 1 150); do
    grep -qiE 'listening on|capturing on' "$TMP/$f.log" 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.5
}
cap_end() {
  sleep 1
  kill -TERM "$CAP" 2>/dev/null || true
  timeout 10 tail --pid="$CAP" -f /dev/null || true
}
scenario() { inc timeout 150 bash "$HERE/hold_scenario.sh" "$@"; }
save() { cp "$TMP/$1" "$OUT/$1"; chmod 644 "$OUT/$1"; log "wrote $1 ($(stat -c %s "$OUT/$1") bytes)"; }
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
simple() { # scenario file [tcpdump args]
  local sc=$1 f=$2; shift 2
  want "$sc" || return 0
  log "$sc -> $f"
  cap_begin "$f" tcpdump -s 0 -i hc "$@"
  scenario "$sc" "$S4"
  cap_end
  save "$f"
}

############################################################################ setup
ip netns del $CLI 2>/dev/null || true
ip netns del $SRV 2>/dev/null || true
ip netns add $CLI
ip netns add $SRV
for ns in $CLI $SRV; do
  ip netns exec $ns sysctl -qw net.ipv6.conf.default.router_solicitations=0 \
      net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.all.accept_dad=0 \
      net.ipv6.conf.default.accept_dad=0
  ip -n $ns link set lo up
done
ip link add hc netns $CLI address $MAC_C type veth peer name hs netns $SRV address $MAC_S
ip -n $CLI addr add 10.98.0.1/24 dev hc
ip -n $SRV addr add $S4/24 dev hs
ip -n $CLI addr add fd98::1/64 dev hc nodad
ip -n $SRV addr add $S6/64 dev hs nodad
ip -n $CLI link set hc up
ip -n $SRV link set hs up
ip -n $CLI neigh replace $S4 lladdr $MAC_S dev hc nud permanent
ip -n $CLI neigh replace $S6 lladdr $MAC_S dev hc nud permanent
ip -n $SRV neigh replace 10.98.0.1 lladdr $MAC_C dev hs nud permanent
ip -n $SRV neigh replace fd98::1 lladdr $MAC_C dev hs nud permanent

CERT=$H/lab-cert.pem
KEY=$H/lab-key.pem
bg_srv "$PY" "$H/dns_server.py" $S4 53 $S4 $S6
bg_srv "$PY" "$H/dns_server.py" $S6 53 $S4 $S6
for p in 5300 5353 5355; do bg_srv "$PY" "$H/dns_server.py" $S4 $p $S4 $S6; done
bg_cli "$PY" "$H/dns_server.py" 127.0.0.53 53 $S4 $S6
bg_srv "$PY" "$H/web_server.py" 80
for p in 443 993 853 4433; do bg_srv "$PY" "$H/web_server.py" $p "$CERT" "$KEY"; done
bg_srv "$PY" "$HERE/hold_servers.py" http :: 8080
bg_srv "$PY" "$HERE/hold_servers.py" http :: 8888
bg_srv "$PY" "$HERE/hold_servers.py" proxy $S4 3128 $S4
bg_srv "$PY" "$HERE/hold_servers.py" smtp $S4 587 "$CERT" "$KEY"
bg_srv "$PY" "$HERE/hold_servers.py" smtp $S4 25 "$CERT" "$KEY"
bg_srv "$PY" "$HERE/hold_servers.py" ssdp $S4 1900
bg_srv "$PY" "$HERE/hold_servers.py" quic :: 443 "$CERT" "$KEY"
bg_srv "$PY" "$HERE/hold_servers.py" quic :: 4443 "$CERT" "$KEY"
for p in 80 443 993 853 4433 8080 8888 3128 587 25 53 5300; do wait_listen $SRV t $p; done
for p in 53 5300 5353 5355 1900 443 4443; do wait_listen $SRV u $p; done
wait_listen $CLI u 53
set_resolver $S4
sleep 2

############################################################################ captures
simple node         ho-node.pcap
simple httpclients  ho-http-clients.pcap
simple httpbodies   ho-http-bodies.pcap
simple proxy        ho-proxy-connect.pcap
simple tls          ho-tls-variants.pcap
simple dnstypes     ho-dns-types.pcap
simple dnstransport ho-dns-transport.pcap
simple smtp         ho-smtp-starttls.pcap
simple ssdp         ho-ssdp.pcap
simple quic         ho-quic.pcap
simple onesided     ho-onesided-client.pcap "src host 10.98.0.1 or src host fd98::1"
simple snaplen      ho-snaplen96.pcap -s 96
simple misc         ho-misc.pcap

if want tinymss; then
  log "tinymss -> ho-tinymss.pcap (server advertises MSS 64)"
  ip -n $SRV route replace 10.98.0.0/24 dev hs advmss 64
  cap_begin ho-tinymss.pcap tcpdump -s 0 -i hc
  scenario tinymss "$S4"
  cap_end
  ip -n $SRV route replace 10.98.0.0/24 dev hs
  save ho-tinymss.pcap
fi

if want midstream; then
  log "midstream -> ho-midstream.pcap"
  GO=$TMP/midstream.go
  scenario midstream "$S4" "$GO" &
  MS=$!
  for _ in $(seq 1 100); do [ -e "$GO.ready" ] && break; sleep 0.1; done
  cap_begin ho-midstream.pcap tcpdump -s 0 -i hc
  touch "$GO"
  wait $MS || true
  cap_end
  save ho-midstream.pcap
fi

if want netem; then
  # sch_netem is not available in the lab kernel ("Specified qdisc kind is unknown"), so the
  # loss / reordering is done by lossy_relay.py between two TUN devices (raw-IP link type):
  # 6% loss, 25% of packets held back 15 ms, in both directions; recorded on the client TUN.
  log "netem substitute (lossy TUN relay) -> ho-lossy-reorder-rawip.pcap"
  timeout 300 "$PY" "$HERE/lossy_relay.py" $CLI tunc $SRV tuns 200 0.06 0.25 15 7 >"$TMP/lossy.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 1 50); do grep -q ready "$TMP/lossy.log" 2>/dev/null && break; sleep 0.1; done
  ip -n $CLI addr add 10.98.7.1 peer 10.98.7.2 dev tunc
  ip -n $SRV addr add 10.98.7.2 peer 10.98.7.1 dev tuns
  ip -n $CLI link set tunc up
  ip -n $SRV link set tuns up
  bg_srv "$PY" "$H/dns_server.py" 10.98.7.2 53 10.98.7.2 $S6
  wait_listen $SRV u 53
  set_resolver 10.98.7.2
  cap_begin ho-lossy-reorder-rawip.pcap tcpdump -s 0 -i tunc
  scenario netem 10.98.7.2
  cap_end
  set_resolver $S4
  save ho-lossy-reorder-rawip.pcap
fi

if want dumpcap; then
  log "dumpcap (pcapng, 2 interfaces hc + lo) -> ho-dumpcap-2if.pcapng"
  cap_begin ho-dumpcap-2if.pcapng dumpcap -i hc -i lo
  scenario dumpcap "$S4"
  cap_end
  save ho-dumpcap-2if.pcapng
fi

if want ipv6; then
  log "ipv6 -> ho-ipv6.pcap"
  set_resolver $S6
  cap_begin ho-ipv6.pcap tcpdump -s 0 -i hc "ip6 and not icmp6"
  scenario ipv6 "$S6"
  cap_end
  set_resolver $S4
  save ho-ipv6.pcap
fi
log "done; captures in $OUT"
