#!/bin/bash
# Traffic scenarios, run INSIDE the lab client netns by make-captures.sh.
# usage: scenario.sh malicious|benign|edge|ipv6|frag4|frag6 SERVER_ADDR
# SERVER_ADDR is the lab server's address on the link being recorded
# (10.99.0.2, 10.99.42.2 over VXLAN, 10.99.7.2 over TUN, fd99::2 for IPv6).
# Every command is bounded with timeout; failures are reported but do not stop the run.
set -u
SC=$1
S=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-/usr/bin/python3}
T="timeout 10"
DIG="dig @$S +nocookie +tries=1 +time=2"
BROWSER_UA="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
case $S in *:*) SU="[$S]" ;; *) SU=$S ;; esac

run() { "$@" >/dev/null 2>&1 || echo "  [scenario $SC] failed ($?): $*" >&2; sleep 0.3; }

case $SC in
malicious)
  run $T $DIG A pastebin.com
  run $T $DIG AAAA api.telegram.org
  run $T $DIG -t TYPE65 raw.githubusercontent.com
  run $T $DIG -t TYPE1234 transfer.sh
  run $T $DIG +tcp A discord.com
  run $T $DIG A cdn-assets.example.org
  run $T curl -s -o /dev/null --resolve "pastebin.com:80:$S" http://pastebin.com/raw/abc
  # wget resolves through the lab resolver (/etc/netns/<client>/resolv.conf)
  run $T wget -q -O /dev/null --tries=1 --timeout=5 http://raw.githubusercontent.com/x/y
  run $T "$PY" -c 'import requests, urllib3; urllib3.disable_warnings(); requests.get("https://api.telegram.org/bot123/getMe", verify=False, timeout=5)'
  run $T "$PY" -c 'import requests; requests.post("http://pastebin.com/api/api_post.php", data={"api_paste_code": "x"}, timeout=5)'
  run $T "$PY" -c 'import urllib.request; urllib.request.urlopen("http://transfer.sh/get/abc/file.bin", timeout=5).read()'
  run $T curl -sk -o /dev/null --resolve "abcd1234.ngrok-free.app:443:$S" https://abcd1234.ngrok-free.app/
  run $T sh -c "openssl s_client -connect $SU:443 -servername mybucket.s3.amazonaws.com </dev/null"
  ;;
benign)
  run $T $DIG A www.example.org
  run $T $DIG A intranet.corp.local
  run $T curl -s -o /dev/null -A "$BROWSER_UA" --resolve "www.example.org:80:$S" http://www.example.org/
  run $T curl -sk -o /dev/null -A "$BROWSER_UA" --resolve "www.example.org:443:$S" https://www.example.org/
  run $T curl -s -o /dev/null -A "$BROWSER_UA" --resolve "intranet.corp.local:80:$S" http://intranet.corp.local/intranet/index.html
  ;;
edge)
  # non-standard ports
  run $T curl -s -o /dev/null --resolve "pastebin.com:8081:$S" http://pastebin.com:8081/raw/nonstd
  run $T curl -sk -o /dev/null --resolve "api.telegram.org:8443:$S" https://api.telegram.org:8443/bot1/getMe
  # ClientHello in 3 TCP segments / in 2 TLS records (real handshake with the lab server)
  run $T "$PY" "$HERE/edge_clients.py" tls-segments "$S" 443 \
      a-very-long-subdomain-label-used-for-tcp-segmentation-tests.bucket-one.s3.amazonaws.com
  run $T "$PY" "$HERE/edge_clients.py" tls-records "$S" 443 recordsplit.ngrok-free.app
  # 3 pipelined requests in one segment; request headers split over 2 segments
  run $T "$PY" "$HERE/edge_clients.py" http-pipeline "$S" 80
  run $T "$PY" "$HERE/edge_clients.py" http-split "$S" 80
  # DNS over TCP with two queries on one connection (+keepopen)
  run $T $DIG +tcp +keepopen A discord.com A gist.githubusercontent.com
  ;;
ipv6)
  run $T $DIG -6 A pastebin.com
  run $T $DIG -6 AAAA api.telegram.org
  run $T $DIG -6 +tcp AAAA discord.com
  run $T $DIG -6 AAAA cdn-assets.example.org
  run $T curl -6 -s -o /dev/null --resolve "pastebin.com:80:$S" http://pastebin.com/raw/v6
  run $T wget -6 -q -O /dev/null --tries=1 --timeout=5 http://raw.githubusercontent.com/x/v6
  run $T curl -6 -sk -o /dev/null --resolve "abcd1234.ngrok-free.app:443:$S" https://abcd1234.ngrok-free.app/
  run $T "$PY" -c 'import requests, urllib3; urllib3.disable_warnings(); requests.get("https://api.telegram.org/bot123/getMe", verify=False, timeout=5)'
  run $T curl -6 -s -o /dev/null -A "$BROWSER_UA" --resolve "www.example.org:80:$S" http://www.example.org/
  ;;
frag4)
  # dig cannot be used here: BIND 9.18 dig sets DF (IP_PMTUDISC_DO) on its UDP socket, so an
  # oversized query fails with EMSGSIZE instead of being fragmented.  A python UDP socket
  # (default PMTU mode) lets the kernel fragment: 576-byte MTU ->
  # ~1270-byte query = 3 fragments, ~770-byte query = 2 fragments.
  run $T "$PY" "$HERE/edge_clients.py" dns-udp "$S" 53 api.telegram.org 1200
  run $T "$PY" "$HERE/edge_clients.py" dns-udp "$S" 53 pastebin.com 700
  ;;
frag6)
  # padded query over a 1280-byte MTU link -> kernel IPv6 fragmentation (see frag4 re dig)
  run $T "$PY" "$HERE/edge_clients.py" dns-udp "$S" 53 api.telegram.org 1500
  run $T "$PY" "$HERE/edge_clients.py" dns-udp "$S" 53 pastebin.com 3000
  ;;
*) echo "unknown scenario $SC" >&2; exit 2 ;;
esac
exit 0
