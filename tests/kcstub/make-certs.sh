#!/bin/sh
# make-certs.sh DIR: test certificates for the Keycloak stand-in.
#
#   DIR/ca.pem                      test CA (trust this one)
#   DIR/server.pem, server-key.pem  server certificate signed by that CA,
#                                   DNS names localhost and kc.test
#   DIR/other-ca.pem                a second, unrelated self-signed CA
#   DIR/other-server.pem, other-server-key.pem
#                                   a server certificate for the same names
#                                   signed by the other CA, so a client that
#                                   trusts only ca.pem must refuse it
#
# RSA 2048 keys and SHA-256 signatures: accepted by OpenSSL 3 and by
# mbedTLS 2.28 (TLS 1.2). Idempotent: existing valid files are kept.
set -eu

dir=${1:?usage: make-certs.sh DIR}
command -v openssl >/dev/null 2>&1 || { echo "make-certs.sh: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Serialise concurrent runs on the same directory.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$dir/.make-certs.lock"
	flock 9
fi

key_matches() { # cert key
	[ "$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" = \
	  "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]
}

valid() {
	for f in ca.pem server.pem server-key.pem other-ca.pem other-server.pem other-server-key.pem; do
		[ -s "$dir/$f" ] || return 1
	done
	openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1 || return 1
	openssl verify -CAfile "$dir/other-ca.pem" "$dir/other-server.pem" >/dev/null 2>&1 || return 1
	key_matches "$dir/server.pem" "$dir/server-key.pem" || return 1
	key_matches "$dir/other-server.pem" "$dir/other-server-key.pem" || return 1
	openssl x509 -in "$dir/server.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
	openssl x509 -in "$dir/other-server.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
}

if valid; then
	exit 0
fi

tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

cat >"$tmp/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
cat >"$tmp/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, DNS:kc.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

serial() { echo "0x$(openssl rand -hex 12)"; }

# make_ca NAME CN
make_ca() {
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/$1-key.pem" 2>/dev/null
	openssl req -new -key "$tmp/$1-key.pem" -subj "/O=drone-deps tests/CN=$2" -out "$tmp/$1.csr"
	openssl x509 -req -in "$tmp/$1.csr" -signkey "$tmp/$1-key.pem" -sha256 -days 3650 \
		-set_serial "$(serial)" -extfile "$tmp/ca.ext" -out "$tmp/$1.pem" 2>/dev/null
}

# make_server NAME CA
make_server() {
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/$1-key.pem" 2>/dev/null
	openssl req -new -key "$tmp/$1-key.pem" -subj "/O=drone-deps tests/CN=localhost" -out "$tmp/$1.csr"
	openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.pem" -CAkey "$tmp/$2-key.pem" -sha256 -days 825 \
		-set_serial "$(serial)" -extfile "$tmp/server.ext" -out "$tmp/$1.pem" 2>/dev/null
}

make_ca ca "drone-deps test CA"
make_server server ca
make_ca other-ca "untrusted test CA"
make_server other-server other-ca

chmod 600 "$tmp/server-key.pem" "$tmp/other-server-key.pem"
for f in ca.pem server.pem server-key.pem other-ca.pem other-server.pem other-server-key.pem; do
	mv -f "$tmp/$f" "$dir/$f"
done
# The CA keys are not needed after signing; keep the directory minimal.
valid || { echo "make-certs.sh: generated certificates do not verify" >&2; exit 1; }
