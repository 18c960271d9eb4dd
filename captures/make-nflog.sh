#!/bin/bash
# Re-create captures/nflog-malicious.pcap: a REAL Linux NFLOG capture (LINKTYPE 239).
# The malicious scenario (helpers/scenario.sh) runs in a client namespace whose iptables
# rules copy every packet leaving and entering its veth to netlink log group 5
# (`-j NFLOG --nflog-group 5`, on OUTPUT -o vc and INPUT -i vc), and tcpdump records that
# group inside the namespace (`tcpdump -i nflog:5`). Same lab as make-captures.sh
# (10.99.0.1 <-> 10.99.0.2, same MACs and servers), in namespaces of its own
# (ctnf-cli / ctnf-srv) so it can run beside it.   usage: sudo captures/make-nflog.sh
# Needs: iproute2, iptables (1.8, nft or legacy back end), tcpdump with NFLOG support
# (libpcap 1.10), and the tools of make-captures.sh. Nothing leaves the namespaces.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
H=$HERE/helpers
OUT=${OUT:-$HERE}
PY=${PY:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3)
export PY
CLI=ctnf-cli
SRV=ctnf-srv
MAC_C=02:99:00:00:00:01
MAC_S=02:99:00:00:00:02
GROUP=5
TMP=$(mktemp -d /tmp/ctnf.XXXXXX)
PIDS=()

log() { echo "== $*" >&2; }

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null; done
  ip netns del $CLI 2>/dev/null
  ip netns del $SRV 2>/dev/null
  rm -rf /etc/netns/$CLI; rmdir /etc/netns 2>/dev/null
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

inc() { ip netns exec $CLI "$@"; }
bg_srv() { ip netns exec $SRV timeout 600 "$@" >>"$TMP/servers.log" 2>&1 & PIDS+=($!); }
wait_listen() { # proto(t|u) port
  for _ in $(seq 1 50); do
    ip netns exec $SRV ss -Hln"$1" "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  echo "server on $1/$2 did not come up" >&2; return 1
}

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
inc sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
ip link add vc netns $CLI address $MAC_C type veth peer name vs netns $SRV address $MAC_S
ip -n $CLI addr add 10.99.0.1/24 dev vc
ip -n $SRV addr add 10.99.0.2/24 dev vs
ip -n $CLI link set vc up
ip -n $SRV link set vs up
ip -n $CLI neigh replace 10.99.0.2 lladdr $MAC_S dev vc nud permanent
ip -n $SRV neigh replace 10.99.0.1 lladdr $MAC_C dev vs nud permanent

bg_srv "$PY" "$H/dns_server.py" 10.99.0.2 53 10.99.0.2 fd99::2
bg_srv "$PY" "$H/web_server.py" 80
bg_srv "$PY" "$H/web_server.py" 443 "$H/lab-cert.pem" "$H/lab-key.pem"
for p in 80 443 53; do wait_listen t $p; done
wait_listen u 53

mkdir -p /etc/netns/$CLI
printf 'nameserver 10.99.0.2\noptions timeout:2 attempts:1\n' >/etc/netns/$CLI/resolv.conf
printf '127.0.0.1 localhost\n::1 localhost\n' >/etc/netns/$CLI/hosts

# Every packet of the client's veth, each direction once, to netlink log group 5.
inc iptables -A OUTPUT -o vc -j NFLOG --nflog-group $GROUP
inc iptables -A INPUT -i vc -j NFLOG --nflog-group $GROUP

log "malicious scenario over NFLOG group $GROUP"
inc timeout 300 tcpdump -Z root -U -s 0 -i nflog:$GROUP -w "$TMP/nflog.pcap" >"$TMP/tcpdump.log" 2>&1 &
CAP=$!; PIDS+=($CAP)
for _ in $(seq 1 150); do grep -q 'listening on' "$TMP/tcpdump.log" && break; sleep 0.1; done
grep -q 'listening on' "$TMP/tcpdump.log" || { echo "tcpdump did not start" >&2; exit 1; }
sleep 0.5
inc timeout 120 bash "$H/scenario.sh" malicious 10.99.0.2
sleep 1
kill -TERM $CAP; timeout 10 tail --pid=$CAP -f /dev/null || true
cat "$TMP/tcpdump.log" >&2
cp "$TMP/nflog.pcap" "$OUT/nflog-malicious.pcap"
chmod 644 "$OUT/nflog-malicious.pcap"
log "wrote nflog-malicious.pcap ($(capinfos -c -M "$OUT/nflog-malicious.pcap" | awk '/Number of packets/ {print $4}') packets)"
