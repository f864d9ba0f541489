#!/bin/sh
# Makes throwaway TLS certificates for the tests in DIR (created if need be):
#   ca.pem ca.key                  a test CA
#   server.pem server.key          signed by it, for localhost and 127.0.0.1
#   server-combined.pem            server.pem followed by server.key
#   client.pem client.key          a client certificate signed by the CA
#   other-ca.pem other-ca.key      an unrelated CA
#   other-client.pem other-client.key  a client certificate signed by it
# EC P-256 keys (quick to make); valid for a day.
set -eu
dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$1" 2>/dev/null; }
ca() { # NAME CN
	key "$1.key"
	openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 1 \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign -out "$1.pem"
}
leaf() { # NAME CN EXTENSIONS CA
	key "$1.key"
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	printf '%s\n' "$3" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" \
		-CAcreateserial -days 1 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}
ca ca "gild test CA"
ca other-ca "unrelated test CA"
# mbedTLS 2.28 (Debian 12's, under nng) matches a host name only against
# DNS names, an address included: 127.0.0.1 is listed as both.
leaf server localhost "subjectAltName=DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1
extendedKeyUsage=serverAuth" ca
leaf client "gild test client" "extendedKeyUsage=clientAuth" ca
leaf other-client "unrelated client" "extendedKeyUsage=clientAuth" other-ca
cat server.pem server.key > server-combined.pem
chmod 600 ./*.key server-combined.pem
