#!/bin/bash
# Makes the lab CA and the leaf certificate that tls12-server.pcap carries (committed beside
# this script, so remaking the capture does not change the certificate). Run only to renew
# them; then remake the capture and tests/expected (see captures/README.md).
#   leaf: C=US, O=Example Drop Lab, CN=files.example-drop.test, 4 DNS SANs, serial with the
#   high bit set (DER adds a leading 00 byte), signed by "C=US, O=Example Drop Lab, CN=Example
#   Drop Lab CA".
set -euo pipefail
cd "$(dirname "$0")"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout i14-ca-key.pem -out i14-ca-cert.pem \
  -days 3650 -subj "/C=US/O=Example Drop Lab/CN=Example Drop Lab CA" -set_serial 0x1001 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout i14-leaf-key.pem -out "$T/leaf.csr" \
  -subj "/C=US/ST=California/O=Example Drop Lab/OU=Files/CN=files.example-drop.test" 2>/dev/null
cat >"$T/ext.cnf" <<'X'
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:files.example-drop.test,DNS:cdn.example-drop.test,DNS:*.files.example-drop.test,IP:10.98.0.2,DNS:upload.example-drop.test
X
openssl x509 -req -in "$T/leaf.csr" -CA i14-ca-cert.pem -CAkey i14-ca-key.pem \
  -set_serial 0x8a3f0c11d2e45b67 -days 825 -sha256 -extfile "$T/ext.cnf" -out i14-leaf-cert.pem 2>/dev/null
openssl x509 -in i14-leaf-cert.pem -noout -subject -issuer -serial -dates -fingerprint -sha1 -ext subjectAltName
