#!/bin/bash
# Holdout traffic scenarios, run INSIDE the holdout client netns by make-holdout.sh.
# usage: hold_scenario.sh NAME SERVER_ADDR [extra]
# Every command is bounded with timeout; failures are reported but do not stop the run.
set -u
SC=$1
S=$2
X=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
CERTS=$HERE/../helpers
PY=${PY:-python3}
T="timeout 10"
DIG="dig @$S +tries=1 +time=2"
CL="$PY $HERE/hold_clients.py"
case $S in *:*) SU="[$S]" ;; *) SU=$S ;; esac
export NODE_TLS_REJECT_UNAUTHORIZED=0 NODE_NO_WARNINGS=1

run() { "$@" >/dev/null 2>&1 </dev/null || echo "  [scenario $SC] failed ($?): $*" >&2; sleep 0.3; }
ossl() { # host:port sni [extra s_client args]
  local hp=$1 sni=$2; shift 2
  run $T sh -c "echo Q | openssl s_client -connect $hp -servername '$sni' $*"
}
LONG63=abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz
LONGNAME=$LONG63.${LONG63/a/b}.${LONG63/a/c}.long-name-test.example # 249 chars

case $SC in
node)
  run $T node -e 'fetch("http://pastebin.com/raw/node1").then(r=>r.text())'
  run $T node -e 'fetch("https://api.telegram.org/bot9/getMe").then(r=>r.text())'
  run $T node -e 'fetch("http://discord.com/api/webhooks/1/x",{method:"POST",headers:{"User-Agent":"node-custom-ua/1.0","Content-Type":"application/json"},body:JSON.stringify({content:"hi"})}).then(r=>r.text())'
  run $T node -e 'require("https").get({host:"gist.githubusercontent.com",path:"/u/raw",rejectUnauthorized:false,headers:{"User-Agent":"node-https-module/20"}},r=>{r.resume();r.on("end",()=>process.exit(0))})'
  run $T node -e 'require("http").get("http://transfer.sh/get/nodecore",r=>{r.resume();r.on("end",()=>process.exit(0))})'
  run $T node -e 'require("dns").resolveTxt("txt-by-node.example.com",()=>{});require("dns").resolveMx("mx-by-node.example.com",()=>{})'
  ;;
httpclients)
  run $T curl -s -o /dev/null --http1.0 --resolve "pastebin.com:80:$S" http://pastebin.com/raw/http10
  run $T curl -s -o /dev/null -A "Mozilla/5.0 (compatible; Custom-Agent 2.0; +http://bot.example)" --resolve "www.dropbox.com:80:$S" http://www.dropbox.com/s/abc/file
  run $T wget -q -O /dev/null --no-check-certificate --tries=1 --timeout=5 https://raw.githubusercontent.com/wget/https
  run $T wget -q -O /dev/null -U "Wget-custom/9.9" --tries=1 --timeout=5 http://objects.githubusercontent.com/x
  run $T $PY -c "import http.client as h; c=h.HTTPConnection('$S',80,timeout=5); c.request('GET','/hc',headers={'Host':'paste.ee','User-Agent':'python-httpclient-holdout/1.0'}); c.getresponse().read()"
  run $T $PY -c "import http.client as h; c=h.HTTPConnection('$S',80,timeout=5); c.request('GET','/noua',headers={'Host':'no-ua.example.org'}); c.getresponse().read()"
  run $T curl -s -o /dev/null -H "Expect: 100-continue" --data-binary "a=1" --resolve "hooks.slack.com:8080:$S" http://hooks.slack.com:8080/services/T/B/x
  run $T $CL http-headers "$S" 8080
  run $T $CL http-10 "$S" 8080
  run $T curl -s -o /dev/null -A "curl-on-port-8888/1.0" --resolve "paste.rs:8888:$S" http://paste.rs:8888/
  ;;
httpbodies)
  run $T $CL http-chunked "$S" 8080
  run $T $CL http-large "$S" 8080
  run $T curl -s -o /dev/null -A "curl-chunked-upload/1.0" -H "Transfer-Encoding: chunked" --data-binary "@/etc/services" --resolve "transfer.sh:8080:$S" http://transfer.sh:8080/upload
  ;;
proxy)
  run $T curl -sk -o /dev/null -x "http://$S:3128" https://api.telegram.org/bot7/getMe
  run $T curl -s -o /dev/null -x "http://$S:3128" -A "proxy-absolute-uri-ua/1.0" http://pastebin.com/raw/viaproxy
  run $T curl -s -o /dev/null -p -x "http://$S:3128" -A "http-inside-connect-ua/1.0" http://transfer.sh/get/tunnelled
  run $T wget -q -O /dev/null --no-check-certificate --tries=1 --timeout=5 -e use_proxy=yes -e "https_proxy=http://$S:3128" https://raw.githubusercontent.com/via/wgetproxy
  ;;
tls)
  ossl "$SU:443" tls12-alpn.example.com -alpn h2,http/1.1 -tls1_2
  ossl "$SU:443" tls13-only.example.com -tls1_3
  ossl "$SU:443" xn--e1afmkfd.xn--p1ai
  ossl "$SU:443" xn--mnchen-3ya.de -alpn http/1.1
  ossl "$SU:443" PaStEbIn.CoM
  ossl "$SU:443" "$LONGNAME"
  ossl "$SU:443" trailing-dot.example.org.
  ossl "$SU:443" tls12-noext.example.net -tls1_2 -no_ticket -cipher AES128-SHA
  ossl "$SU:993" imap.mail.example.org
  ossl "$SU:853" dot.resolver.example.org
  ossl "$SU:4433" nonstd-4433.ngrok.io
  run $T $CL tls-bighello "$S" 443 bighello.s3.amazonaws.com
  run $T curl -sk -o /dev/null --tlsv1.2 --tls-max 1.2 --resolve "login.microsoftonline.com:443:$S" https://login.microsoftonline.com/
  ;;
dnstypes)
  for t in TXT MX SRV CAA SVCB HTTPS NS SOA NAPTR DNSKEY ANY; do
    run $T $DIG +nocookie -t $t "qtype-$t.example.com"
  done
  run $T $DIG +nocookie -x 10.98.0.2
  run $T $DIG +nocookie SRV _ldap._tcp.dc._msdcs.corp.example.com
  run $T $DIG +cookie A cookie-query.example.net
  run $T $DIG +nocookie +nsid +subnet=192.0.2.0/24 A ecs-query.example.net
  run $T $DIG +nocookie A xn--mnchen-3ya.de
  run $T $DIG +nocookie A xn--e1afmkfd.xn--p1ai
  run $T $DIG +nocookie A PaStEbIn.CoM
  run $T $DIG +nocookie A "$LONGNAME"
  run $T $DIG +nocookie A 'we\.ird\032label.example.com'
  run $T $DIG +nocookie A www.cdn-chain.example.org
  run $T $DIG +nocookie +noedns A noedns.example.org
  run $T $DIG +nocookie NS .
  ;;
dnstransport)
  run $T $DIG +nocookie +tcp +keepopen A keep1.example.com TXT keep2.example.com AAAA keep3.example.com
  run $T $CL dns-tcp-pipe "$S" 53 pipe1.example.com pipe2.example.com pipe3.example.com
  run $T $CL dns-tcp-split "$S" 53 split-tcp-query.example.com
  run $T $CL dns-multiq "$S" 53 multiq-one.example.com multiq-two.example.com
  run $T $DIG +nocookie -p 5300 A port5300.example.com
  run $T $DIG +nocookie -p 5300 +tcp A port5300-tcp.example.com
  run $T $DIG +nocookie -p 5353 A mdns-style.local
  run $T $DIG +nocookie -p 5355 A llmnr-style
  run $T sh -c "printf 'server $S\nzone update-zone.example.com\nupdate add host.update-zone.example.com 60 A 10.98.0.9\nsend\n' | timeout 5 nsupdate -t 3"
  ;;
smtp)
  ossl "$SU:587" mail.example.net -starttls smtp
  ossl "$SU:25" smtp.gmail.com -starttls smtp
  run $T $PY -c "import smtplib,ssl; c=ssl._create_unverified_context(); s=smtplib.SMTP('smtp.mailgun.org',587,timeout=5); s.starttls(context=c); s.quit()"
  ;;
ssdp)
  run $T $CL ssdp "$S" 1900
  ;;
quic)
  run $T $CL quic "$S" 443 quic.example.net
  run $T $CL quic "$S" 4443 quic-nonstd.example.net
  ;;
midstream)
  # $X is the go-file; make-holdout.sh starts tcpdump when $X.ready appears, then creates $X
  run $T $CL midstream "$S" 8080 "$X"
  ;;
onesided|netem)
  run $T $DIG +nocookie A "$SC-udp.pastebin.com"
  run $T $DIG +nocookie +tcp A "$SC-tcp.discord.com"
  run $T curl -s -o /dev/null -A "$SC-curl-ua/1.0" --resolve "paste.ee:80:$S" http://paste.ee/r/1
  run $T curl -sk -o /dev/null -A "$SC-curl-tls/1.0" --resolve "$SC-sni.ngrok-free.app:443:$S" "https://$SC-sni.ngrok-free.app/"
  run $T node --dns-result-order=ipv4first -e 'fetch("http://'"$SC"'-node.transfer.sh/x").then(r=>r.text())'
  ossl "$SU:443" "$SC-openssl.s3.amazonaws.com" -tls1_2
  run $T $CL http-large "$S" 8080
  run $T $DIG +nocookie TXT "$SC-txt.example.com"
  ;;
dumpcap)
  run $T dig @127.0.0.53 +nocookie +tries=1 +time=2 A loopback-query.pastebin.com
  run $T $DIG +nocookie A dumpcap-veth.example.com
  run $T curl -s -o /dev/null -A "dumpcap-curl/1.0" --resolve "pastebin.com:80:$S" http://pastebin.com/raw/dumpcap
  ossl "$SU:443" dumpcap-sni.api.telegram.org
  ;;
snaplen)
  run $T $DIG +nocookie A short.io
  run $T $DIG +nocookie A a-rather-long-name-that-will-cross-the-96-byte-snap-length.example.com
  run $T curl -s -o /dev/null -A "snap-ua/1.0" --resolve "t.co:80:$S" http://t.co/
  ossl "$SU:443" snap-sni.example.com
  ;;
ipv6)
  run $T curl -6 -s -o /dev/null --http1.0 -A "ipv6-http10/1.0" --resolve "pastebin.com:80:$S" http://pastebin.com/raw/v6
  ossl "$SU:443" v6-tls12.telegram.org -tls1_2
  run $T dig @$S +tries=1 +time=2 +nocookie -6 +tcp +keepopen AAAA v6keep1.example.com AAAA v6keep2.example.com
  run $T dig @$S +tries=1 +time=2 +nocookie -6 TXT v6-udp-txt.example.com
  run $T node -e 'fetch("http://v6-node.discord.com/x").then(r=>r.text())'
  run $T $CL quic "$S" 443 v6-quic.example.net
  ;;
misc)
  run $T $CL mdns-compressed "$S" 5353
  run $T $CL dns-malformed-tail "$S" 53
  run $T $CL http-bigheaders "$S" 8080
  run $T $CL http-pipeline15 "$S" 8080
  run $T curl -s -o /dev/null --http2 -A "curl-h2c-upgrade/1.0" --resolve "h2c.example.org:80:$S" http://h2c.example.org/
  run $T curl -6 -s -o /dev/null -A "curl-v6-literal/1.0" "http://[fd98::2]/literal"
  ;;
tinymss)
  # the server advertises a tiny MSS (route advmss), so client requests go out in many small segments
  run $T curl -s -o /dev/null -A "tinymss-curl-ua/1.0 (many small segments)" --resolve "pastebin.com:80:$S" http://pastebin.com/raw/tinymss
  run $T curl -sk -o /dev/null --resolve "tinymss-sni.ngrok-free.app:443:$S" https://tinymss-sni.ngrok-free.app/
  ossl "$SU:443" tinymss-openssl.api.telegram.org -tls1_2
  run $T $DIG +nocookie +tcp A tinymss-tcp-dns.discord.com
  run $T node --dns-result-order=ipv4first -e 'fetch("http://tinymss-node.transfer.sh/x").then(r=>r.text())'
  ;;
*) echo "unknown scenario $SC" >&2; exit 2 ;;
esac
