#!/usr/bin/env bash
# Makes the certificates of fixtures/unit used by the certificate tests: a
# CA whose subject CN is a watched name, a server certificate it signed
# (CN mail.example.org), and a self-signed client certificate whose CN is
# another watched name. DER, as TLS carries them.
#   scripts/make-test-certs.sh [OUT_DIR]
set -euo pipefail
out=${1:-$(dirname "$0")/../fixtures/unit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=WIN-J9D866ESIJ2" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=mail.example.org" 2>/dev/null
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 3650 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout client.key -out client.pem -days 3650 -subj "/CN=WIN-LIVFRVQFMKO" 2>/dev/null
cd - >/dev/null
openssl x509 -in "$work/ca.pem" -outform der -out "$out/ca-win-j9d866esij2.der"
openssl x509 -in "$work/leaf.pem" -outform der -out "$out/leaf-mail-example-org.der"
openssl x509 -in "$work/client.pem" -outform der -out "$out/client-win-livfrvqfmko.der"
echo "wrote $out/ca-win-j9d866esij2.der, leaf-mail-example-org.der, client-win-livfrvqfmko.der"
