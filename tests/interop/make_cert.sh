#!/usr/bin/env bash
# make_cert.sh OUTDIR
#
# Creates a throwaway self-signed certificate for "localhost" in OUTDIR:
#   OUTDIR/cert.pem  EC P-256 certificate, CN=localhost,
#                    subjectAltName DNS:localhost, IP:127.0.0.1,
#                    valid for 1 day, CA:TRUE (so it can be its own trust anchor)
#   OUTDIR/key.pem   the matching unencrypted private key
#
# Idempotent: if OUTDIR already holds a matching cert/key pair that is valid
# for at least another hour, it is left alone. Quiet on success; on failure it
# prints openssl's diagnostics to stderr and exits non-zero.
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

outdir=$1
command -v openssl >/dev/null 2>&1 || { echo "make_cert.sh: openssl not found" >&2; exit 1; }
mkdir -p -- "$outdir"

cert=$outdir/cert.pem
key=$outdir/key.pem

# Already there, still valid, and key matches certificate? Then nothing to do.
if [ -s "$cert" ] && [ -s "$key" ] &&
   openssl x509 -in "$cert" -noout -checkend 3600 >/dev/null 2>&1; then
    cert_pub=$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null || true)
    key_pub=$(openssl pkey -in "$key" -pubout 2>/dev/null || true)
    if [ -n "$cert_pub" ] && [ "$cert_pub" = "$key_pub" ]; then
        exit 0
    fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/make_cert.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# Self-contained config so the system openssl.cnf cannot add or clash with
# extensions. SKI/AKI are included so strict verifiers (X509_STRICT) accept it.
cat >"$work/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt             = no
x509_extensions    = v3_self

[dn]
CN = localhost

[v3_self]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, digitalSignature, keyCertSign
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF

if ! openssl req -x509 -new \
        -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -config "$work/openssl.cnf" -days 1 -sha256 \
        -keyout "$work/key.pem" -out "$work/cert.pem" >"$work/log" 2>&1; then
    echo "make_cert.sh: openssl req failed:" >&2
    cat "$work/log" >&2
    exit 1
fi

chmod 600 "$work/key.pem"
# Same filesystem as OUTDIR is not guaranteed, so copy then rename there.
cp -- "$work/key.pem" "$key.tmp.$$"
cp -- "$work/cert.pem" "$cert.tmp.$$"
mv -f -- "$key.tmp.$$" "$key"
mv -f -- "$cert.tmp.$$" "$cert"
