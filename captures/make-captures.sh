#!/bin/bash
# Re-create the cloudtap test captures from real programs running in two private
# network namespaces (client "ctlab-cli", server "ctlab-srv") joined by a veth pair.
# Nothing is sent outside these namespaces.   usage:  sudo captures/make-captures.sh
# Needs: iproute2, tcpdump, tshark/capinfos/mergecap (wireshark-common), dig
# (dnsutils), curl, wget, openssl, python3 with requests.  See captures/README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
H=$HERE/helpers
OUT=${OUT:-$HERE}
PY=${PY:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3)
export PY
CLI=ctlab-cli
SRV=ctlab-srv
MAC_C=02:99:00:00:00:01
MAC_S=02:99:00:00:00:02
TMP=$(mktemp -d /tmp/ctlab.XXXXXX)
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
ins() { ip netns exec $SRV "$@"; }

# background a long-lived process in a netns, hard-capped at 20 minutes
bg_srv() { ip netns exec $SRV timeout 1200 "$@" >>"$TMP/servers.log" 2>&1 & PIDS+=($!); }

wait_listen() { # ns proto(t|u) port
  for _ in $(seq 1 50); do
    ip netns exec "$1" ss -Hln"$2" "sport = :$3" | grep -q . && return 0
    sleep 0.1
  done
  echo "server on $2/$3 did not come up" >&2; return 1
}

set_resolver() { # nameserver address for programs run in the client netns
  mkdir -p /etc/netns/$CLI
  printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$1" >/etc/netns/$CLI/resolv.conf
  printf '127.0.0.1 localhost\n::1 localhost\n' >/etc/netns/$CLI/hosts
}

CAPS=()
cap_start() { # out-file iface [tcpdump args...]; each tcpdump logs to its own file
  local f=$1 i=$2; shift 2
  ip netns exec $CLI timeout 300 tcpdump -Z root -U -s 0 -i "$i" -w "$TMP/$f" "$@" >"$TMP/$f.log" 2>&1 &
  CAPS+=($!); PIDS+=($!)
}
cap_wait_ready() { # tcpdump prints "listening on" once the capture is active
  for _ in $(seq 1 150); do
    grep -q 'listening on' "$TMP/$1.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "tcpdump for $1 did not start" >&2; return 1
}
caps_begin() { # "file|iface|tcpdump args" ...
  local spec f i a
  for spec in "$@"; do
    IFS='|' read -r f i a <<<"$spec"
    # shellcheck disable=SC2086
    cap_start "$f" "$i" $a
  done
  for spec in "$@"; do cap_wait_ready "${spec%%|*}"; done
  sleep 0.5
}
caps_end() {
  sleep 1
  for p in "${CAPS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${CAPS[@]}"; do timeout 10 tail --pid="$p" -f /dev/null || true; done
  CAPS=()
}
scenario() { inc timeout 120 bash "$H/scenario.sh" "$@"; }
save() { cp "$TMP/$1" "$OUT/$1"; chmod 644 "$OUT/$1"; log "wrote $1"; }

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
# client starts IPv4-only so that resolvers/curl/wget never pick IPv6 by accident
inc sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
ip link add vc netns $CLI address $MAC_C type veth peer name vs netns $SRV address $MAC_S
ip -n $CLI addr add 10.99.0.1/24 dev vc
ip -n $SRV addr add 10.99.0.2/24 dev vs
ip -n $SRV addr add fd99::2/64 dev vs nodad
ip -n $CLI link set vc up
ip -n $SRV link set vs up
# static neighbours: no ARP / ND noise in the captures
ip -n $CLI neigh replace 10.99.0.2 lladdr $MAC_S dev vc nud permanent
ip -n $SRV neigh replace 10.99.0.1 lladdr $MAC_C dev vs nud permanent
ip -n $SRV neigh replace fd99::1 lladdr $MAC_C dev vs nud permanent

# VXLAN overlay (real kernel vxlan, VNI 42, UDP 4789) for the vxlan capture
ip -n $CLI link add vx0 address 02:99:00:00:42:01 type vxlan id 42 dstport 4789 local 10.99.0.1 remote 10.99.0.2 dev vc
ip -n $SRV link add vx0 address 02:99:00:00:42:02 type vxlan id 42 dstport 4789 local 10.99.0.2 remote 10.99.0.1 dev vs
ip -n $CLI addr add 10.99.42.1/24 dev vx0
ip -n $SRV addr add 10.99.42.2/24 dev vx0
ip -n $CLI link set vx0 up
ip -n $SRV link set vx0 up
ip -n $CLI neigh replace 10.99.42.2 lladdr 02:99:00:00:42:02 dev vx0 nud permanent
ip -n $SRV neigh replace 10.99.42.1 lladdr 02:99:00:00:42:01 dev vx0 nud permanent

# servers
bg_srv "$PY" "$H/dns_server.py" 10.99.0.2 53 10.99.0.2 fd99::2
bg_srv "$PY" "$H/dns_server.py" fd99::2 53 10.99.0.2 fd99::2
bg_srv "$PY" "$H/dns_server.py" 10.99.42.2 53 10.99.42.2 fd99::2
bg_srv "$PY" "$H/web_server.py" 80
bg_srv "$PY" "$H/web_server.py" 8081
bg_srv "$PY" "$H/web_server.py" 443 "$H/lab-cert.pem" "$H/lab-key.pem"
bg_srv "$PY" "$H/web_server.py" 8443 "$H/lab-cert.pem" "$H/lab-key.pem"
for p in 80 8081 443 8443 53; do wait_listen $SRV t $p; done
wait_listen $SRV u 53
sleep 2   # let the one-off IPv6 MLD reports of interface bring-up pass before recording

############################################################################ IPv4 over Ethernet veth
set_resolver 10.99.0.2
log "malicious scenario: ethernet, nanosecond, SLL, SLL2"
caps_begin "eth-malicious.pcap|vc" \
           "eth-malicious-nsec.pcap|vc|--time-stamp-precision=nano" \
           "sll-malicious.pcap|any|-y LINUX_SLL" \
           "sll2-malicious.pcap|any"
scenario malicious 10.99.0.2
caps_end
for f in eth-malicious.pcap eth-malicious-nsec.pcap sll-malicious.pcap sll2-malicious.pcap; do save $f; done

log "benign scenario: ethernet"
caps_begin "eth-benign.pcap|vc"
scenario benign 10.99.0.2
caps_end
save eth-benign.pcap

log "edge cases"
caps_begin "eth-edge-cases.pcap|vc"
scenario edge 10.99.0.2
caps_end
save eth-edge-cases.pcap

log "IPv4 fragments (MTU 576)"
ip -n $CLI link set vc mtu 576
caps_begin "frag-ipv4-dns.pcap|vc"
scenario frag4 10.99.0.2
caps_end
ip -n $CLI link set vc mtu 1500
save frag-ipv4-dns.pcap

############################################################################ VXLAN (real kernel tunnel)
log "VXLAN"
set_resolver 10.99.42.2
caps_begin "vxlan-malicious.pcap|vc"
scenario malicious 10.99.42.2
caps_end
save vxlan-malicious.pcap

############################################################################ raw IP over TUN
log "raw IP (TUN)"
timeout 300 "$PY" "$H/tun_relay.py" $CLI tunc $SRV tuns 240 >"$TMP/tun.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 50); do grep -q ready "$TMP/tun.log" 2>/dev/null && break; sleep 0.1; done
ip -n $CLI addr add 10.99.7.1 peer 10.99.7.2 dev tunc
ip -n $SRV addr add 10.99.7.2 peer 10.99.7.1 dev tuns
ip -n $CLI link set tunc up
ip -n $SRV link set tuns up
bg_srv "$PY" "$H/dns_server.py" 10.99.7.2 53 10.99.7.2 fd99::2
wait_listen $SRV u 53
set_resolver 10.99.7.2
caps_begin "raw-ip-malicious.pcap|tunc"
scenario malicious 10.99.7.2
caps_end
save raw-ip-malicious.pcap

############################################################################ IPv6
log "IPv6"
inc sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.vc.disable_ipv6=0 \
    net.ipv6.conf.vc.accept_dad=0 net.ipv6.conf.vc.router_solicitations=0
ip -n $CLI addr flush dev vc scope link
ip -n $CLI addr del 10.99.0.1/24 dev vc
ip -n $CLI addr add fd99::1/64 dev vc nodad
ip -n $CLI neigh replace fd99::2 lladdr $MAC_S dev vc nud permanent
set_resolver fd99::2
sleep 1
caps_begin "ipv6-malicious.pcap|vc|ip6 and not icmp6"
scenario ipv6 fd99::2
caps_end
save ipv6-malicious.pcap

log "IPv6 fragments (MTU 1280)"
ip -n $CLI link set vc mtu 1280
caps_begin "frag-ipv6-dns.pcap|vc|ip6 and not icmp6"
scenario frag6 fd99::2
caps_end
save frag-ipv6-dns.pcap

############################################################################ files derived from the real captures
cd "$OUT"
log "pcapng with two interfaces (Ethernet benign + Linux SLL2 malicious)"
mergecap -F pcapng -w multi-interface.pcapng sll2-malicious.pcap eth-benign.pcap
log "big-endian pcap"
"$PY" "$HERE/rewrap.py" byteswap eth-malicious-be.pcap eth-malicious.pcap
log "rewrapped link types / encapsulations"
for m in null ppp chdlc; do "$PY" "$HERE/rewrap.py" $m $m-malicious.pcap eth-malicious.pcap ipv6-malicious.pcap; done
for m in vlan qinq mpls pppoe vntag etag gre ipip erspan2 erspan3 geneve; do
  "$PY" "$HERE/rewrap.py" $m $m-malicious.pcap eth-malicious.pcap
done
"$PY" "$HERE/rewrap.py" sit sit-6in4-malicious.pcap ipv6-malicious.pcap
"$PY" "$HERE/rewrap.py" teredo teredo-malicious.pcap ipv6-malicious.pcap
# 802.11 link types and GTP-U / GRE-in-UDP / Aruba GRE / AYIYA (NFLOG: make-nflog.sh)
for m in wlan:wlan-plain radiotap:wlan-radiotap ppi:wlan-ppi avs:wlan-avs prism:wlan-prism \
         gtpu:gtpu greudp:gre-udp aruba:aruba-gre-wlan ayiya:ayiya; do
  "$PY" "$HERE/rewrap.py" "${m%%:*}" "${m#*:}-malicious.pcap" eth-malicious.pcap
done
chmod 644 ./*.pcap ./*.pcapng
log "done; captures in $OUT"
