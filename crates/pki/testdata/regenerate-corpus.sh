#!/bin/sh
# Regenerates crates/pki/testdata/corpus/, the committed inputs of the parser robustness test
# (tests/it/corpus.rs) and the keys of the signature benchmark (benches/signatures.rs).
# Needs openssl and the committed test PKI in certs/. Usage: crates/pki/testdata/regenerate-corpus.sh
#
# Naming: cert-* must parse as certificates, key-* must load as private keys, spki-* as public
# keys, sig-* are signatures over message.txt by the key of the same suffix, bad-* must be
# rejected by every parser.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
certs="$here/../../../certs"
out="$here/corpus"
rm -rf "$out"
mkdir -p "$out"
cd "$out"

# Certificates: PEM, DER, a chain, and one certificate of each non-P-256 key type.
cp "$certs/root.cert.pem" cert-root.pem
cp "$certs/ss-health.chain.pem" cert-ss-health-chain.pem
openssl x509 -in "$certs/sign-health.cert.pem" -outform DER -out cert-sign-health.der

# Keys as `openssl genpkey` makes them, and one PKCS#8 DER.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key-ec-p256.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key-ec-p384.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key-rsa2048.pem
openssl genpkey -algorithm ED25519 -out key-ed25519.pem
openssl pkcs8 -topk8 -nocrypt -in key-ec-p256.pem -outform DER -out key-ec-p256.der

for key in ec-p384 rsa2048 ed25519; do
    openssl req -new -x509 -key "key-$key.pem" -subj "/CN=corpus $key" -days 7300 \
        -set_serial 1 -out "cert-self-signed-$key.pem" -config /dev/null 2>/dev/null ||
    openssl req -new -x509 -key "key-$key.pem" -subj "/CN=corpus $key" -days 7300 \
        -set_serial 1 -out "cert-self-signed-$key.pem"
    openssl pkey -in "key-$key.pem" -pubout -outform DER -out "spki-$key.der"
done
openssl pkey -in key-ec-p256.pem -pubout -outform DER -out spki-ec-p256.der

# Signatures over message.txt.
printf 'GET /r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children/42\n' > message.txt
openssl dgst -sha256 -sign key-ec-p256.pem -out sig-ec-p256.der message.txt
openssl dgst -sha384 -sign key-ec-p384.pem -out sig-ec-p384.der message.txt
openssl dgst -sha256 -sign key-rsa2048.pem -out sig-rsa2048.bin message.txt
openssl pkeyutl -sign -rawin -inkey key-ed25519.pem -in message.txt -out sig-ed25519.bin

# Inputs every parser must reject.
: > bad-empty.bin
printf -- '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n' > bad-base64.pem
printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n' > bad-unterminated.pem
printf -- '-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n' > bad-empty-sequence-key.pem
printf '\060\204\177\377\377\377\002\001\000' > bad-huge-length.der
printf '\060\200\002\001\000\000\000' > bad-indefinite-length.der
{ cat cert-sign-health.der; printf 'trailing'; } > bad-trailing-bytes.der
head -c 200 cert-sign-health.der > bad-truncated.der
