#!/bin/bash
# Re-creates the issue-14 captures from real programs in two private network namespaces
# (client "i14-cli" 10.98.0.1, server "i14-srv" 10.98.0.2, veth vc/vs, static neighbours).
# Nothing leaves the namespaces.   usage: sudo captures/helpers/make-i14-captures.sh
#   chromium-tls.pcap   two headless Chromium runs (fresh profiles) -> openssl s_server (TLS 1.3)
#   tls-hrr.pcap        openssl s_client offering a P-256 key share to a server that only takes
#                       X25519: HelloRetryRequest, then a second ClientHello on the same flow
#   tls12-server.pcap   openssl s_client -tls1_2 and curl --tls-max 1.2 -> openssl s_server
#                       -tls1_2 with the lab leaf i14-leaf-cert.pem (+ CA in the chain)
#   http-lenient.pcap   i14_http_clients.py -> i14_servers.py raw (the capture filter leaves
#                       out the segment whose payload starts with "XXXX": a capture gap)
#   tfo-http.pcap       curl --tcp-fastopen twice -> i14_servers.py tfo, net.ipv4.tcp_fastopen=3:
#                       the first connection gets the cookie, the second sends its GET on the SYN
# Needs: iproute2, tcpdump, openssl, curl, chromium, python3.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(dirname "$HERE")}
CLI=i14-cli
SRV=i14-srv
TMP=$(mktemp -d /tmp/i14cap.XXXXXX)
PIDS=()
log() { echo "== $*" >&2; }
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null; done
  ip netns del $CLI 2>/dev/null
  ip netns del $SRV 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
inc() { ip netns exec $CLI "$@"; }
bg_srv() { ip netns exec $SRV timeout 600 "$@" >>"$TMP/servers.log" 2>&1 & SRVPID=$!; PIDS+=($!); }
stop_srv() { kill "$SRVPID" 2>/dev/null || true; timeout 5 tail --pid="$SRVPID" -f /dev/null || true; }
wait_listen() { # port
  for _ in $(seq 1 50); do
    ip netns exec $SRV ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.1
  done
  echo "server on $1 did not come up" >&2; return 1
}
cap_begin() { # file filter...
  CAPF=$1; shift
  inc timeout 300 tcpdump -Z root -U -s 0 -i vc -w "$TMP/$CAPF" "$@" >"$TMP/$CAPF.log" 2>&1 &
  CAPPID=$!; PIDS+=($!)
  for _ in $(seq 1 150); do grep -q 'listening on' "$TMP/$CAPF.log" && break; sleep 0.1; done
  sleep 0.5
}
cap_end() {
  sleep 1
  kill -TERM "$CAPPID"; timeout 10 tail --pid="$CAPPID" -f /dev/null || true
  cp "$TMP/$CAPF" "$OUT/$CAPF"; chmod 644 "$OUT/$CAPF"; log "wrote $CAPF"
}

ip netns del $CLI 2>/dev/null || true
ip netns del $SRV 2>/dev/null || true
ip netns add $CLI
ip netns add $SRV
for ns in $CLI $SRV; do
  ip -n $ns link set lo up
  ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add vc netns $CLI address 02:98:00:00:00:01 type veth peer name vs netns $SRV address 02:98:00:00:00:02
ip -n $CLI addr add 10.98.0.1/24 dev vc
ip -n $SRV addr add 10.98.0.2/24 dev vs
ip -n $CLI link set vc up
ip -n $SRV link set vs up
ip -n $CLI neigh replace 10.98.0.2 lladdr 02:98:00:00:00:02 dev vc nud permanent
ip -n $SRV neigh replace 10.98.0.1 lladdr 02:98:00:00:00:01 dev vs nud permanent
H=$HERE

############################################ chromium-tls.pcap
log "chromium"
bg_srv openssl s_server -quiet -accept 443 -cert "$H/lab-cert.pem" -key "$H/lab-key.pem" -www
wait_listen 443
cap_begin chromium-tls.pcap tcp port 443
for i in 1 2; do
  prof=$(mktemp -d "$TMP/chrome.XXXXXX")
  # Only the lab name resolves (to the lab server); Chromium's own background hosts do not.
  inc timeout 30 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$prof" --timeout=4000 --ignore-certificate-errors \
    --host-resolver-rules="MAP chromium-tls.example-drop.test 10.98.0.2, MAP * ~NOTFOUND" \
    --dump-dom https://chromium-tls.example-drop.test/ >"$TMP/chrome$i.out" 2>"$TMP/chrome$i.log" || true
done
cap_end
stop_srv

############################################ tls-hrr.pcap
log "HelloRetryRequest"
bg_srv openssl s_server -quiet -accept 443 -cert "$H/lab-cert.pem" -key "$H/lab-key.pem" -www -groups X25519
wait_listen 443
cap_begin tls-hrr.pcap tcp port 443
printf 'GET / HTTP/1.0\r\n\r\n' | inc timeout 10 openssl s_client -quiet -tls1_3 -groups P-256:X25519 \
  -connect 10.98.0.2:443 -servername hrr.example-drop.test >/dev/null 2>&1 || true
cap_end
stop_srv

############################################ tls12-server.pcap
log "TLS 1.2 server flight"
bg_srv openssl s_server -quiet -accept 443 -tls1_2 -cert "$H/i14-leaf-cert.pem" -key "$H/i14-leaf-key.pem" \
  -cert_chain "$H/i14-ca-cert.pem" -www
wait_listen 443
cap_begin tls12-server.pcap tcp port 443
printf 'GET / HTTP/1.0\r\n\r\n' | inc timeout 10 openssl s_client -quiet -tls1_2 -connect 10.98.0.2:443 \
  -servername files.example-drop.test >/dev/null 2>&1 || true
inc timeout 10 curl -sk --tlsv1.2 --tls-max 1.2 -A "curl-tls12-lab/1.0" \
  --resolve cdn.example-drop.test:443:10.98.0.2 https://cdn.example-drop.test/ >/dev/null || true
cap_end
stop_srv

############################################ http-lenient.pcap
log "lenient HTTP"
bg_srv python3 "$H/i14_servers.py" raw 80
wait_listen 80
# The segment whose payload starts with "XXXX" is left out: a capture gap on a live connection.
# (The payload-length test comes first: a load past the packet end would reject the packet.)
cap_begin http-lenient.pcap "tcp port 80 and (ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) < 4 or not tcp[((tcp[12] & 0xf0) >> 2):4] = 0x58585858)"
inc timeout 60 python3 "$H/i14_http_clients.py" 10.98.0.2 80
cap_end
stop_srv

############################################ tfo-http.pcap
log "TCP Fast Open"
inc sysctl -qw net.ipv4.tcp_fastopen=3
ip netns exec $SRV sysctl -qw net.ipv4.tcp_fastopen=3
bg_srv python3 "$H/i14_servers.py" tfo 80
wait_listen 80
cap_begin tfo-http.pcap tcp port 80
for i in 1 2; do
  inc timeout 10 curl -s --tcp-fastopen -A "curl-tfo-lab/$i" --resolve tfo.example-drop.test:80:10.98.0.2 \
    http://tfo.example-drop.test/tfo-$i >/dev/null || true
  sleep 0.3
done
cap_end
stop_srv
log "done"
