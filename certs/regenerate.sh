#!/bin/sh
# Regenerates the committed test PKI in certs/ with Passerelle's own development CA
# (`passerelle pki init` and `passerelle pki issue`), every certificate valid from
# 2025-01-01 to 2045-01-01. See certs/README.md for what each file is.
#
# Usage (from anywhere in the repository):  certs/regenerate.sh
set -eu
cd "$(dirname "$0")/.."

passerelle() {
    cargo run --quiet -- "$@"
}

dir=certs
window="--not-before 2025-01-01T00:00:00Z --not-after 2045-01-01T00:00:00Z"

# shellcheck disable=SC2086 # $window is two options on purpose
passerelle pki init --dir "$dir" --instance DEV --force $window

for server in health education; do
    # shellcheck disable=SC2086
    passerelle pki issue --dir "$dir" --kind auth --name "ss-$server" \
        --dns localhost --ip 127.0.0.1 --out "$dir/ss-$server" $window
done

for member in HEALTH EDUCATION; do
    prefix=$(echo "$member" | tr 'A-Z' 'a-z')
    # shellcheck disable=SC2086
    passerelle pki issue --dir "$dir" --kind sign --member "DEV/GOV/$member" \
        --out "$dir/sign-$prefix" $window
done

# Every certificate must verify with stock openssl at the tests' validation time (2026-06-01).
for certificate in "$dir"/*.cert.pem; do
    [ "$certificate" = "$dir/root.cert.pem" ] && continue
    openssl verify -attime 1780272000 -CAfile "$dir/root.cert.pem" \
        -untrusted "$dir/intermediate.cert.pem" "$certificate"
done
